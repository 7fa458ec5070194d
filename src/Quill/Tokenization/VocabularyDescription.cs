// A tokenizer described as plain data, the way model files keep one in their metadata (llama.cpp's GGUF
// tokenizer.ggml.* keys are the model for it), and Build, which turns the description into a tokenizer:
// - Gpt2Bpe: byte-level BPE; tokens in GPT-2 byte spelling, merges "A B", the pre-tokenizer by name (see
//   PreTokenizerPatterns.ForName; llama.cpp's "default" when none is given).
// - SentencePieceBpe: SentencePiece BPE by scores with byte fallback when all 256 byte pieces are present
//   (AddSpacePrefix as the file says, default true).
// - WordPiece: word-initial pieces carry a U+2581 prefix, continuation pieces carry none.
// Control tokens become special tokens (parsed only when allowed); user-defined tokens are always matched in text
// (as HF added tokens and llama.cpp do). Token types follow SentencePiece numbering (PieceType).
// Tokenization reads no container format: a reader of one (Inference.GgufVocab for GGUF) fills this in.
// Does not handle: reading files; unigram SentencePiece or tiktoken ranks (they have their own files and readers).
using System.Text;

namespace Quill.Tokenization;

/// <summary>Which tokenizer algorithm a <see cref="VocabularyDescription"/> describes.</summary>
public enum VocabularyKind
{
    /// <summary>Byte-level BPE with merges (GPT-2, Llama 3, ...; GGUF "gpt2").</summary>
    Gpt2Bpe,

    /// <summary>SentencePiece BPE by scores (Llama 1/2, Mistral, ...; GGUF "llama").</summary>
    SentencePieceBpe,

    /// <summary>WordPiece with U+2581 word starts (BERT-style embedding models; GGUF "bert").</summary>
    WordPiece,
}

/// <summary>A tokenizer's vocabulary and settings as plain data; <see cref="Build"/> makes the tokenizer.</summary>
public sealed record VocabularyDescription
{
    /// <summary>Where the description came from (a file path), for error messages.</summary>
    public required string Source { get; init; }

    /// <summary>The algorithm.</summary>
    public required VocabularyKind Kind { get; init; }

    /// <summary>Token id -> the token's text as stored (UTF-8 bytes; GPT-2 byte spelling for Gpt2Bpe).</summary>
    public required IReadOnlyList<byte[]> Tokens { get; init; }

    /// <summary>Token types by id (null: all Normal).</summary>
    public IReadOnlyList<PieceType>? TokenTypes { get; init; }

    /// <summary>SentencePiece scores by id (null: all zero).</summary>
    public IReadOnlyList<float>? Scores { get; init; }

    /// <summary>BPE merges, "A B" each, highest priority first (Gpt2Bpe only).</summary>
    public IReadOnlyList<string> Merges { get; init; } = [];

    /// <summary>Pre-tokenizer name (Gpt2Bpe only): gpt2, llama-bpe, falcon, ... or "default".</summary>
    public string PreTokenizer { get; init; } = "default";

    /// <summary>Beginning-of-sequence id, or -1.</summary>
    public int BosId { get; init; } = -1;

    /// <summary>End-of-sequence id, or -1.</summary>
    public int EosId { get; init; } = -1;

    /// <summary>Unknown-token id; null: the piece typed Unknown (SentencePiece) or "[UNK]" (WordPiece).</summary>
    public int? UnknownId { get; init; }

    /// <summary>SentencePiece: put a space before the text (add_space_prefix).</summary>
    public bool AddSpacePrefix { get; init; } = true;

    /// <summary>Builds the tokenizer; a description that cannot make one raises InvalidFileException naming Source.</summary>
    public ITokenizer Build()
    {
        int n = Tokens.Count;
        if (n == 0) throw new InvalidFileException($"{Source}: the tokenizer vocabulary is empty.");
        if (TokenTypes != null && TokenTypes.Count != n)
            throw new InvalidFileException($"{Source}: {TokenTypes.Count} token types for {n} tokens; the file is inconsistent.");
        var types = TokenTypes?.ToArray() ?? Enumerable.Repeat(PieceType.Normal, n).ToArray();
        ITokenizer tok = Kind switch
        {
            VocabularyKind.Gpt2Bpe => BuildBpe(types),
            VocabularyKind.SentencePieceBpe => BuildSentencePiece(types),
            VocabularyKind.WordPiece => BuildWordPiece(types),
            _ => throw new InvalidConfigException($"{Source}: vocabulary kind {Kind} is not one Quill builds (Gpt2Bpe, SentencePieceBpe, WordPiece)."),
        };
        if (tok is TokenizerBase tb)
        {
            tb.BosId = BosId < n ? BosId : -1;
            tb.EosId = EosId < n ? EosId : -1;
        }
        return tok;
    }

    private BpeTokenizer BuildBpe(PieceType[] types)
    {
        int n = Tokens.Count;
        var tokens = new byte[]?[n];
        var vocab = new Dictionary<string, int>(n, StringComparer.Ordinal);
        var specials = new Dictionary<string, int>(StringComparer.Ordinal);
        var always = new List<(string, int)>();
        for (int i = 0; i < n; i++)
        {
            string text = Encoding.UTF8.GetString(Tokens[i]);
            vocab.TryAdd(text, i);
            if (types[i] is PieceType.Control or PieceType.UserDefined or PieceType.Unknown)
            {
                tokens[i] = Encoding.UTF8.GetBytes(text);
                if (text.Length == 0) continue;
                if (types[i] == PieceType.UserDefined) always.Add((text, i));
                else specials.TryAdd(text, i);
            }
            else
            {
                tokens[i] = ByteLevel.TryDecode(text) ?? Tokens[i];
            }
        }
        var merges = new List<(int, int)>(Merges.Count);
        for (int i = 0; i < Merges.Count; i++) merges.Add(Gpt2Files.ResolveMerge(Merges[i], vocab, Source, i + 1));
        string[] patterns = PreTokenizerPatterns.ForName(PreTokenizer)
            ?? throw new InvalidFileException($"{Source}: pre-tokenizer \"{PreTokenizer}\" is not a known pre-tokenizer; Quill knows gpt2, llama-bpe, falcon, starcoder, refact, deepseek-coder, deepseek-llm, mpt and default.");
        var preTok = new PreTokenizer(patterns, PreTokenizer);
        bool ignoreMerges = PreTokenizerPatterns.ForName("llama3")![0] == patterns[0];
        var tok = BpeTokenizer.FromMerges(tokens, merges, preTok, specials, ignoreMerges);
        foreach (var (text, id) in always) tok.AddSpecialToken(text, id, alwaysMatch: true);
        return tok;
    }

    private SentencePieceTokenizer BuildSentencePiece(PieceType[] types)
    {
        int n = Tokens.Count;
        var pieces = Tokens.Select(t => Encoding.UTF8.GetString(t)).ToArray();
        if (Scores != null && Scores.Count != n)
            throw new InvalidFileException($"{Source}: {Scores.Count} scores for {n} tokens; the file is inconsistent.");
        float[] scores = Scores?.ToArray() ?? new float[n];
        bool byteFallback = types.Count(t => t == PieceType.Byte) == 256;
        int unk = UnknownId ?? Array.IndexOf(types, PieceType.Unknown);
        var tok = new SentencePieceTokenizer(pieces, scores, types, SentencePieceModelKind.Bpe,
                                             new SentencePieceNormalizer(null, AddSpacePrefix, false, true), byteFallback, unk);
        if (tok.UnkId < 0 && !byteFallback) throw new InvalidFileException($"{Source}: SentencePiece vocabulary has neither byte pieces nor an unknown token.");
        return tok;
    }

    private WordPieceTokenizer BuildWordPiece(PieceType[] types)
    {
        var pieces = Tokens.Select(t => Encoding.UTF8.GetString(t)).ToArray();
        int unk = UnknownId ?? Array.IndexOf(pieces, "[UNK]");
        if (unk < 0) throw new InvalidFileException($"{Source}: WordPiece vocabulary has no unknown token ([UNK]).");
        var specials = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < pieces.Length; i++)
        {
            if (types[i] is PieceType.Control or PieceType.Unknown) specials.TryAdd(pieces[i], i);
        }
        return new WordPieceTokenizer(pieces, unk, specials, WordPieceTokenizer.Style.Metaspace);
    }
}
