// SentencePiece tokenizers (Llama 2, Mistral, Phi-3, Gemma-style vocabularies; .model files, GGUF "llama" vocabs,
// llama2.c tokenizer.bin, HF tokenizer.json with a Metaspace/byte-fallback BPE). Two models:
// - BPE: start from the characters of the normalized text and repeatedly merge the adjacent pair whose
//   concatenation is a piece with the highest score (ties: leftmost), as sentencepiece's bpe_model and llama.cpp.
// - Unigram: Viterbi over all segmentations into pieces maximizing the summed piece scores; a character with no
//   piece becomes <unk> (score = lowest score - 10), consecutive unknowns merge into one.
// Characters left without a piece fall back to their UTF-8 bytes (<0xXX> pieces) when the model has byte fallback.
// Control pieces (<s>, </s>) are special tokens: parsed only when allowed, skipped when decoding.
// Not handled: sentencepiece's sampling/nbest, user-defined pieces are not pre-matched as whole words.
using System.Buffers;
using System.Globalization;
using System.Text;

namespace Quill.Tokenization;

/// <summary>SentencePiece piece types (same numbering as sentencepiece and GGUF token_type).</summary>
public enum PieceType
{
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

/// <summary>Which SentencePiece algorithm segments the text.</summary>
public enum SentencePieceModelKind
{
    Unigram = 1,
    Bpe = 2,
}

/// <summary>A SentencePiece tokenizer (BPE or unigram) with byte fallback.</summary>
public sealed partial class SentencePieceTokenizer : TokenizerBase
{
    private const float UnkPenalty = 10f;
    private readonly string[] pieces;
    private readonly float[] scores;
    private readonly PieceType[] types;
    private readonly Dictionary<string, int> idOfPiece;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> pieceLookup;
    private readonly int[] byteIds = new int[256];
    private readonly int maxPieceChars;
    private readonly float minScore;
    private readonly float maxScore;

    public SentencePieceTokenizer(IReadOnlyList<string> pieces, IReadOnlyList<float> scores, IReadOnlyList<PieceType> types,
                                  SentencePieceModelKind kind, SentencePieceNormalizer normalizer, bool byteFallback, int unkId)
        : base(ControlPieces(pieces, types))
    {
        ArgumentNullException.ThrowIfNull(pieces);
        ArgumentNullException.ThrowIfNull(scores);
        ArgumentNullException.ThrowIfNull(types);
        if (pieces.Count != scores.Count || pieces.Count != types.Count)
            throw new InvalidFileException($"SentencePiece vocabulary has {pieces.Count} pieces but {scores.Count} scores and {types.Count} types.");
        this.pieces = pieces.ToArray();
        this.scores = scores.ToArray();
        this.types = types.ToArray();
        Kind = kind;
        Normalizer = normalizer;
        ByteFallback = byteFallback;
        UnkId = unkId;
        idOfPiece = new Dictionary<string, int>(pieces.Count, StringComparer.Ordinal);
        Array.Fill(byteIds, -1);
        minScore = float.MaxValue;
        maxScore = float.MinValue;
        for (int i = 0; i < this.pieces.Length; i++)
        {
            var t = this.types[i];
            if (t is PieceType.Normal or PieceType.UserDefined or PieceType.Unused)
            {
                idOfPiece.TryAdd(this.pieces[i], i);
                maxPieceChars = Math.Max(maxPieceChars, this.pieces[i].Length);
                if (t == PieceType.Normal)
                {
                    minScore = Math.Min(minScore, this.scores[i]);
                    maxScore = Math.Max(maxScore, this.scores[i]);
                }
            }
            else if (t == PieceType.Byte && TryParseBytePiece(this.pieces[i], out byte b))
            {
                byteIds[b] = i;
            }
        }
        if (minScore == float.MaxValue) minScore = maxScore = 0;
        if (byteFallback && Array.IndexOf(byteIds, -1) >= 0)
            throw new InvalidFileException("SentencePiece model has byte_fallback but lacks some <0xXX> byte pieces.");
        pieceLookup = idOfPiece.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    public override int VocabSize => pieces.Length;

    public override string Family => "sentencepiece";

    /// <summary>BPE or unigram.</summary>
    public SentencePieceModelKind Kind { get; }

    /// <summary>The text normalizer (character map and whitespace options).</summary>
    public SentencePieceNormalizer Normalizer { get; }

    /// <summary>Unknown characters become their UTF-8 byte pieces instead of unk.</summary>
    public bool ByteFallback { get; }

    /// <summary>The unknown piece's id (-1 when none).</summary>
    public int UnkId { get; }

    /// <summary>The piece text of an id (with U+2581 for spaces).</summary>
    public string Piece(int id) => pieces[id];

    /// <summary>The score of an id.</summary>
    public float Score(int id) => scores[id];

    /// <summary>The type of an id.</summary>
    public PieceType Type(int id) => types[id];

    /// <summary>Encodes text into piece strings (for tests and inspection).</summary>
    public string[] EncodeAsPieces(string text) => Encode(text).Select(i => pieces[i]).ToArray();

    protected override void EncodeOrdinary(string text, int start, int length, List<int> ids, bool atTextStart)
    {
        string normalized = Normalizer.Normalize(text.Substring(start, length), atTextStart);
        if (normalized.Length == 0) return;
        if (Kind == SentencePieceModelKind.Bpe) EncodeBpe(normalized, ids);
        else EncodeUnigram(normalized, ids);
    }

    private void EncodeBpe(string s, List<int> ids)
    {
        // Symbols are the code points of s, kept in a doubly linked list of (start, length) spans.
        int n = 0;
        var starts = new int[s.Length];
        var lens = new int[s.Length];
        for (int i = 0; i < s.Length;)
        {
            int l = char.IsHighSurrogate(s[i]) && i + 1 < s.Length ? 2 : 1;
            starts[n] = i;
            lens[n] = l;
            n++;
            i += l;
        }
        var prev = new int[n];
        var next = new int[n];
        for (int i = 0; i < n; i++)
        {
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        var queue = new PriorityQueue<(int Left, int Right, int Len), (float NegScore, int Left)>();
        void TryAdd(int left, int right)
        {
            if (left < 0 || right < 0) return;
            int len = lens[left] + lens[right];
            if (pieceLookup.TryGetValue(s.AsSpan(starts[left], len), out int id))
                queue.Enqueue((left, right, len), (-scores[id], left));
        }
        for (int i = 0; i + 1 < n; i++) TryAdd(i, i + 1);
        while (queue.TryDequeue(out var bigram, out _))
        {
            var (left, right, len) = bigram;
            if (lens[left] == 0 || lens[right] == 0 || next[left] != right || lens[left] + lens[right] != len) continue;
            lens[left] = len;
            lens[right] = 0;
            next[left] = next[right];
            if (next[right] >= 0) prev[next[right]] = left;
            TryAdd(prev[left], left);
            TryAdd(left, next[left]);
        }
        for (int i = 0; i >= 0 && n > 0; i = next[i])
        {
            AppendPiece(s.AsSpan(starts[i], lens[i]), ids);
        }
    }

    private void EncodeUnigram(string s, List<int> ids)
    {
        // best[e]: best segmentation of s[0, e): score, last piece id and its start. Positions are UTF-16 indexes
        // on code-point boundaries.
        int n = s.Length;
        var bestScore = new float[n + 1];
        var bestId = new int[n + 1];
        var bestStart = new int[n + 1];
        Array.Fill(bestStart, -1);
        bestStart[0] = 0;
        float unkScore = minScore - UnkPenalty;
        for (int pos = 0; pos < n;)
        {
            int charLen = char.IsHighSurrogate(s[pos]) && pos + 1 < n ? 2 : 1;
            if (bestStart[pos] < 0 && pos > 0)
            {
                pos += charLen;
                continue;
            }
            bool singleCharFound = false;
            int maxLen = Math.Min(maxPieceChars, n - pos);
            for (int len = 1; len <= maxLen; len++)
            {
                if (len < maxLen && char.IsHighSurrogate(s[pos + len - 1])) continue;
                if (!pieceLookup.TryGetValue(s.AsSpan(pos, len), out int id)) continue;
                if (types[id] == PieceType.Unused) continue;
                if (len == charLen) singleCharFound = true;
                // As sentencepiece: the candidate is summed in double (its score expression is double), compared
                // with the stored float path score, then stored as float. Ties keep the earlier start.
                double candidate = (types[id] == PieceType.UserDefined ? len * maxScore - 0.1 : scores[id]) + (double)bestScore[pos];
                int end = pos + len;
                if (bestStart[end] < 0 || candidate > bestScore[end])
                {
                    bestScore[end] = (float)candidate;
                    bestId[end] = id;
                    bestStart[end] = pos;
                }
            }
            if (!singleCharFound)
            {
                int end = pos + charLen;
                float score = bestScore[pos] + unkScore;
                if (bestStart[end] < 0 || score > bestScore[end])
                {
                    bestScore[end] = score;
                    bestId[end] = -1;
                    bestStart[end] = pos;
                }
            }
            pos += charLen;
        }
        var path = new List<(int Start, int End, int Id)>();
        for (int e = n; e > 0; e = bestStart[e]) path.Add((bestStart[e], e, bestId[e]));
        path.Reverse();
        for (int i = 0; i < path.Count; i++)
        {
            var (st, en, id) = path[i];
            if (id >= 0)
            {
                ids.Add(id);
                continue;
            }
            int j = i;
            while (j + 1 < path.Count && path[j + 1].Id < 0) j++;
            if (ByteFallback)
            {
                AppendBytes(s.AsSpan(st, path[j].End - st), ids);
            }
            else
            {
                ids.Add(UnkId);
            }
            i = j;
        }
    }

    private void AppendPiece(ReadOnlySpan<char> piece, List<int> ids)
    {
        if (pieceLookup.TryGetValue(piece, out int id) && types[id] != PieceType.Unused)
        {
            ids.Add(id);
            return;
        }
        if (ByteFallback) AppendBytes(piece, ids);
        else if (UnkId >= 0) ids.Add(UnkId);
        else throw new InvalidTokenInputException($"text \"{piece.ToString()}\" has no piece and the model has neither byte fallback nor an unknown piece.");
    }

    private void AppendBytes(ReadOnlySpan<char> text, List<int> ids)
    {
        Span<byte> buf = text.Length <= 64 ? stackalloc byte[text.Length * 3] : new byte[text.Length * 3];
        int len = Encoding.UTF8.GetBytes(text, buf);
        for (int i = 0; i < len; i++) ids.Add(byteIds[buf[i]]);
    }

    protected override bool DecodeSpecialsAsText => false;

    protected override void AppendTokenBytes(int id, ArrayBufferWriter<byte> output, bool first)
    {
        switch (types[id])
        {
            case PieceType.Control:
            case PieceType.Unused:
                return;
            case PieceType.Byte when TryParseBytePiece(pieces[id], out byte b):
                output.Write([b]);
                return;
            case PieceType.Unknown:
                output.Write(Encoding.UTF8.GetBytes(" \u2047 "));
                return;
        }
        string text = pieces[id];
        if (Normalizer.EscapeWhitespaces) text = text.Replace(SentencePieceNormalizer.Space, ' ');
        if (first && Normalizer.AddDummyPrefix && text.StartsWith(' ')) text = text[1..];
        output.Write(Encoding.UTF8.GetBytes(text));
    }

    internal static bool TryParseBytePiece(string piece, out byte b)
    {
        b = 0;
        return piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>'
               && byte.TryParse(piece.AsSpan(3, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out b);
    }

    private static Dictionary<string, int> ControlPieces(IReadOnlyList<string> pieces, IReadOnlyList<PieceType> types)
    {
        var d = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < Math.Min(pieces.Count, types.Count); i++)
        {
            if (types[i] == PieceType.Control && pieces[i].Length > 0) d.TryAdd(pieces[i], i);
        }
        return d;
    }
}
