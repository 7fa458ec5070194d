// Byte-level BPE (GPT-2, tiktoken r50k/p50k/cl100k/o200k, Llama 3, the GGUF "gpt2" family, and what BpeTrainer
// learns). Text is cut into chunks by a PreTokenizer, each chunk's UTF-8 bytes start as single-byte tokens and the
// adjacent pair with the lowest merge rank is merged until none is left (ties: leftmost). Two rank sources:
// an explicit merge list (pair -> rank, as in vocab.bpe / tokenizer.json) or tiktoken ranks (a pair merges when
// its concatenation is a token, rank = that token's id). With ignoreMerges a chunk that is itself a token is
// emitted directly (tiktoken and Llama 3 do this). Not handled here: SentencePiece-style BPE (see
// SentencePieceTokenizer) and normalizers.
using System.Buffers;
using System.Text;
using System.Text.Json.Nodes;

namespace Quill.Tokenization;

/// <summary>A byte-level BPE tokenizer.</summary>
public sealed class BpeTokenizer : TokenizerBase
{
    private readonly byte[]?[] tokens;          // id -> bytes (null for ids that are only special tokens or unused)
    private readonly Dictionary<byte[], int> idOfBytes;
    private readonly Dictionary<byte[], int>.AlternateLookup<ReadOnlySpan<byte>> lookup;
    private readonly int[] byteIds = new int[256];
    private readonly Dictionary<long, long> merges;  // (left << 32 | right) -> (rank << 32 | merged id); empty in tiktoken mode
    private readonly (int Left, int Right)[]? mergeList; // explicit merges in rank order (null in tiktoken mode)
    private readonly ThreadLocal<ChunkCache> caches = new(() => new ChunkCache());

    private BpeTokenizer(byte[]?[] tokens, (int, int)[]? mergeList, PreTokenizer preTokenizer, bool ignoreMerges,
                         IReadOnlyDictionary<string, int>? specials) : base(specials)
    {
        this.tokens = tokens;
        this.mergeList = mergeList;
        PreTokenizer = preTokenizer;
        IgnoreMerges = ignoreMerges;
        idOfBytes = new Dictionary<byte[], int>(tokens.Length, ByteArrayComparer.Instance);
        for (int id = 0; id < tokens.Length; id++)
        {
            byte[]? t = tokens[id];
            if (t == null || t.Length == 0 || IsSpecial(id)) continue;
            idOfBytes.TryAdd(t, id);
        }
        lookup = idOfBytes.GetAlternateLookup<ReadOnlySpan<byte>>();
        Span<byte> one = stackalloc byte[1];
        int missing = 0;
        for (int b = 0; b < 256; b++)
        {
            one[0] = (byte)b;
            if (!lookup.TryGetValue(one, out byteIds[b]))
            {
                byteIds[b] = -1; // HF drops such bytes (no unknown token in byte-level BPE); so do we
                missing++;
            }
        }
        if (missing > 128) throw new InvalidFileException($"byte-level BPE vocabulary lacks tokens for {missing} of the 256 bytes; is it byte-level?");
        merges = mergeList != null ? BuildPairMerges(mergeList) : [];
    }

    /// <summary>tiktoken semantics: token id = rank; two parts merge when their concatenation is a token.</summary>
    public static BpeTokenizer FromRanks(IReadOnlyList<byte[]?> tokensByRank, PreTokenizer preTokenizer, IReadOnlyDictionary<string, int>? specials)
    {
        ArgumentNullException.ThrowIfNull(tokensByRank);
        ArgumentNullException.ThrowIfNull(preTokenizer);
        return new BpeTokenizer(tokensByRank.ToArray(), null, preTokenizer, true, specials);
    }

    /// <summary>Merge-list semantics: tokens by id, merges as (left id, right id) in rank order.</summary>
    public static BpeTokenizer FromMerges(IReadOnlyList<byte[]?> tokensById, IReadOnlyList<(int Left, int Right)> merges,
                                         PreTokenizer preTokenizer, IReadOnlyDictionary<string, int>? specials, bool ignoreMerges = false)
    {
        ArgumentNullException.ThrowIfNull(tokensById);
        ArgumentNullException.ThrowIfNull(merges);
        ArgumentNullException.ThrowIfNull(preTokenizer);
        return new BpeTokenizer(tokensById.ToArray(), merges.ToArray(), preTokenizer, ignoreMerges, specials);
    }

    public override int VocabSize => Math.Max(tokens.Length, MaxSpecialId + 1);

    public override string Family => "bpe";

    /// <summary>The pre-tokenizer that cuts text into chunks.</summary>
    public PreTokenizer PreTokenizer { get; }

    /// <summary>A chunk that is itself a token is emitted without running the merges.</summary>
    public bool IgnoreMerges { get; }

    /// <summary>True when merges come from an explicit list (false: tiktoken rank semantics).</summary>
    public bool HasMergeList => mergeList != null;

    /// <summary>The explicit merges in rank order, or an empty list in tiktoken mode.</summary>
    public IReadOnlyList<(int Left, int Right)> Merges => mergeList ?? [];

    /// <summary>The bytes of a (non-special) token, or null when the id has none.</summary>
    public byte[]? TokenBytes(int id) => (uint)id < (uint)tokens.Length ? tokens[id] : null;

    /// <summary>The id of a token's bytes, or -1.</summary>
    public int IdOf(ReadOnlySpan<byte> bytes) => lookup.TryGetValue(bytes, out int id) ? id : -1;

    protected override void EncodeOrdinary(string text, int start, int length, List<int> ids, bool atTextStart)
    {
        if (length == 0) return;
        ReadOnlySpan<char> segment = text.AsSpan(start, length);
        List<(int Start, int Length)>? chunks = null;
        if (!PreTokenizer.HasFastPath)
        {
            // Regex path: the chunks of a (usually short) segment are listed first. The fast path streams them.
            chunks = [];
            PreTokenizer.Split(segment.ToString(), chunks);
        }
        var cache = caches.Value!;
        byte[] rented = ArrayPool<byte>.Shared.Rent(256);
        try
        {
            int next = 0, index = 0;
            while (chunks != null ? index < chunks.Count : next < segment.Length)
            {
                int s, l;
                if (chunks != null)
                {
                    (s, l) = chunks[index++];
                }
                else
                {
                    s = next;
                    next = PreTokenizer.NextChunkEnd(segment, s);
                    l = next - s;
                }
                if (rented.Length < l * 3)
                {
                    ArrayPool<byte>.Shared.Return(rented);
                    rented = ArrayPool<byte>.Shared.Rent(l * 3);
                }
                int n = ToUtf8(segment.Slice(s, l), rented);
                ReadOnlySpan<byte> chunk = rented.AsSpan(0, n);
                if (n == 1)
                {
                    if (byteIds[chunk[0]] >= 0) ids.Add(byteIds[chunk[0]]);
                    continue;
                }
                // The small per-thread cache first (it stays in the CPU cache), then the vocabulary, then the merges.
                int hash = ByteArrayComparer.Hash(chunk);
                if (cache.TryAppend(chunk, hash, ids)) continue;
                int before = ids.Count;
                if (IgnoreMerges && lookup.TryGetValue(chunk, out int whole)) ids.Add(whole);
                else MergeChunk(chunk, ids);
                cache.Add(chunk, hash, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(ids)[before..]);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>UTF-8 of a short chunk: a plain loop for ASCII (most chunks), the encoder otherwise.</summary>
    private static int ToUtf8(ReadOnlySpan<char> chars, byte[] output)
    {
        if (chars.Length <= 32)
        {
            int i = 0;
            for (; i < chars.Length; i++)
            {
                char c = chars[i];
                if (c >= 0x80) break;
                output[i] = (byte)c;
            }
            if (i == chars.Length) return i;
        }
        return Encoding.UTF8.GetBytes(chars, output);
    }

    /// <summary>
    /// Encodes text on several threads (special-looking text stays plain text, as in Encode(text)). The text is cut
    /// at lone newlines between non-whitespace characters, where the standard patterns never join two chunks, so
    /// the ids equal Encode(text); custom patterns, or short texts, are encoded on one thread.
    /// </summary>
    public int[] EncodeParallel(string text, int threads)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (threads < 1) throw new InvalidConfigException($"--threads must be at least 1 (got {threads}).");
        if (threads == 1 || !PreTokenizer.HasFastPath || text.Length < 1 << 16) return Encode(text);
        if (IndexOfInvalidUtf16(text) is int bad and >= 0)
            throw new InvalidTokenInputException($"input text holds a lone UTF-16 surrogate at index {bad}; pass valid Unicode text.");
        int pieces = threads * 4;
        var cuts = new List<int> { 0 };
        for (int p = 1; p < pieces; p++)
        {
            int target = (int)((long)text.Length * p / pieces);
            int cut = -1;
            for (int i = Math.Max(target, cuts[^1] + 2); i < text.Length && i < target + (1 << 16); i++)
            {
                if (text[i - 1] == '\n' && !char.IsWhiteSpace(text[i - 2]) && !char.IsWhiteSpace(text[i]) && !char.IsLowSurrogate(text[i]))
                {
                    cut = i;
                    break;
                }
            }
            if (cut > cuts[^1]) cuts.Add(cut);
        }
        cuts.Add(text.Length);
        var parts = new List<int>[cuts.Count - 1];
        Parallel.For(0, parts.Length, new ParallelOptions { MaxDegreeOfParallelism = threads }, i =>
        {
            var ids = new List<int>((cuts[i + 1] - cuts[i]) / 3 + 4);
            EncodeOrdinary(text, cuts[i], cuts[i + 1] - cuts[i], ids, i == 0);
            parts[i] = ids;
        });
        var result = new int[parts.Sum(p => p.Count)];
        int at = 0;
        foreach (var p in parts)
        {
            p.CopyTo(result, at);
            at += p.Count;
        }
        return result;
    }

    /// <summary>
    /// Encodes raw bytes that may end in invalid UTF-8 (as tiktoken's encode_bytes): the valid prefix is encoded as
    /// text, then the bytes of its last chunk and the invalid tail are merged together as one chunk.
    /// </summary>
    public int[] EncodeBytes(ReadOnlySpan<byte> bytes)
    {
        int valid = bytes.Length;
        if (!System.Text.Unicode.Utf8.IsValid(bytes))
        {
            System.Text.Unicode.Utf8.ToUtf16(bytes, new char[bytes.Length], out valid, out _, replaceInvalidSequences: false);
        }
        string text = Encoding.UTF8.GetString(bytes[..valid]);
        if (valid == bytes.Length) return Encode(text);
        var chunks = new List<(int Start, int Length)>();
        PreTokenizer.Split(text, chunks);
        var ids = new List<int>();
        int tailStart = 0;
        if (chunks.Count > 0)
        {
            var (s, _) = chunks[^1];
            EncodeOrdinary(text, 0, s, ids, true);
            tailStart = Encoding.UTF8.GetByteCount(text.AsSpan(0, s));
        }
        ReadOnlySpan<byte> tail = bytes[tailStart..];
        if (tail.Length == 1 && byteIds[tail[0]] >= 0) ids.Add(byteIds[tail[0]]);
        else if (tail.Length == 1) { }
        else if (lookup.TryGetValue(tail, out int whole)) ids.Add(whole);
        else MergeChunk(tail, ids);
        return ids.ToArray();
    }

    /// <summary>Runs the merges over one chunk's bytes and appends the resulting ids.</summary>
    internal void MergeChunk(ReadOnlySpan<byte> chunk, List<int> output)
    {
        int n = chunk.Length;
        int[]? rentedIds = null;
        long[]? rentedPairs = null;
        Span<int> parts = n <= 128 ? stackalloc int[n] : (rentedIds = ArrayPool<int>.Shared.Rent(n));
        Span<long> pairs = n <= 128 ? stackalloc long[n] : (rentedPairs = ArrayPool<long>.Shared.Rent(n)); // rank << 32 | merged id
        for (int i = 0; i < n; i++) parts[i] = byteIds[chunk[i]];
        for (int i = 0; i + 1 < n; i++) pairs[i] = PairValue(parts[i], parts[i + 1]);
        while (n > 1)
        {
            long best = long.MaxValue;
            int at = -1;
            for (int i = 0; i + 1 < n; i++)
            {
                if (pairs[i] < best)
                {
                    best = pairs[i];
                    at = i;
                }
            }
            if (at < 0) break;
            parts[at] = (int)(best & 0xFFFFFFFF);
            for (int i = at + 1; i + 1 < n; i++)
            {
                parts[i] = parts[i + 1];
                pairs[i] = pairs[i + 1];
            }
            n--;
            if (at > 0) pairs[at - 1] = PairValue(parts[at - 1], parts[at]);
            if (at + 1 < n) pairs[at] = PairValue(parts[at], parts[at + 1]);
        }
        for (int i = 0; i < n; i++)
        {
            if (parts[i] >= 0) output.Add(parts[i]);
        }
        if (rentedIds != null) ArrayPool<int>.Shared.Return(rentedIds);
        if (rentedPairs != null) ArrayPool<long>.Shared.Return(rentedPairs);
    }

    private long PairValue(int left, int right)
    {
        if ((left | right) < 0) return long.MaxValue;
        if (mergeList != null) return merges.TryGetValue(((long)left << 32) | (uint)right, out long v) ? v : long.MaxValue;
        // tiktoken mode: the pair merges when its concatenation is a token; rank = that token's id.
        byte[] a = tokens[left]!, b = tokens[right]!;
        int n = a.Length + b.Length;
        Span<byte> joined = n <= 256 ? stackalloc byte[n] : new byte[n];
        a.CopyTo(joined);
        b.CopyTo(joined[a.Length..]);
        return lookup.TryGetValue(joined, out int id) ? ((long)id << 32) | (uint)id : long.MaxValue;
    }

    protected override void AppendTokenBytes(int id, ArrayBufferWriter<byte> output, bool first)
    {
        byte[]? t = (uint)id < (uint)tokens.Length ? tokens[id] : null;
        if (t != null) output.Write(t);
    }

    private Dictionary<long, long> BuildPairMerges((int Left, int Right)[] list)
    {
        var d = new Dictionary<long, long>(list.Length);
        var buf = new List<byte>(64);
        for (int rank = 0; rank < list.Length; rank++)
        {
            var (l, r) = list[rank];
            byte[]? a = TokenBytes(l), b = TokenBytes(r);
            if (a == null || b == null)
                throw new InvalidFileException($"BPE merge #{rank} ({l}, {r}) names a token that does not exist.");
            byte[] joined = [.. a, .. b];
            if (!lookup.TryGetValue(joined, out int merged))
                throw new InvalidFileException($"BPE merge #{rank} joins two tokens into bytes that are not in the vocabulary.");
            d.TryAdd(((long)l << 32) | (uint)r, ((long)rank << 32) | (uint)merged);
        }
        return d;
    }

    public override void Save(string path)
    {
        var obj = TokenizerFile.NewObject(Family);
        var pattern = new JsonArray();
        foreach (string p in PreTokenizer.Patterns) pattern.Add(p);
        obj["pattern"] = pattern;
        if (PreTokenizer.Name != null) obj["pattern_name"] = PreTokenizer.Name;
        var toks = new JsonArray();
        foreach (byte[]? t in tokens) toks.Add(t == null ? null : Convert.ToBase64String(t));
        obj["tokens"] = toks;
        if (mergeList != null)
        {
            var m = new JsonArray();
            foreach (var (l, r) in mergeList) m.Add(new JsonArray(l, r));
            obj["merges"] = m;
        }
        obj["ignore_merges"] = IgnoreMerges;
        obj["special_tokens"] = TokenizerFile.SpecialsToJson(SpecialTokens);
        obj["bos"] = BosId;
        obj["eos"] = EosId;
        TokenizerFile.WriteAtomic(path, obj);
    }

    internal static BpeTokenizer FromJson(string path, JsonObject obj)
    {
        var patterns = TokenizerFile.GetArray(path, obj, "pattern").Select(n => n?.GetValue<string>() ?? throw new InvalidFileException($"{path}: \"pattern\" entries must be strings.")).ToArray();
        string? name = TokenizerFile.GetOptionalString(path, obj, "pattern_name");
        var toks = TokenizerFile.GetArray(path, obj, "tokens").Select(n => n == null ? null : Convert.FromBase64String(n.GetValue<string>())).ToArray();
        var specials = TokenizerFile.GetSpecials(path, obj);
        var pre = new PreTokenizer(patterns, name);
        bool ignore = obj["ignore_merges"]?.GetValue<bool>() ?? false;
        BpeTokenizer tok;
        if (obj["merges"] is JsonArray m)
        {
            var list = m.Select(p => p is JsonArray a && a.Count == 2 ? (a[0]!.GetValue<int>(), a[1]!.GetValue<int>()) : throw new InvalidFileException($"{path}: each merge must be a pair [left, right].")).ToArray();
            tok = FromMerges(toks, list, pre, specials, ignore);
        }
        else
        {
            tok = FromRanks(toks, pre, specials);
        }
        tok.BosId = TokenizerFile.GetOptionalInt(path, obj, "bos", -1);
        tok.EosId = TokenizerFile.GetOptionalInt(path, obj, "eos", -1);
        return tok;
    }
}
