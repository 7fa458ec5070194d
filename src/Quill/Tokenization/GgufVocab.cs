// The tokenizer stored in a GGUF file's metadata (tokenizer.ggml.*), as llama.cpp reads it:
// - model "gpt2": byte-level BPE; tokens in GPT-2 byte spelling, merges "A B", the pre-tokenizer from
//   tokenizer.ggml.pre (see PreTokenizerPatterns.ForName; absent means llama.cpp's "default").
// - model "llama": SentencePiece BPE by scores with byte fallback (add_space_prefix from metadata, default true).
// - model "bert": WordPiece (word-initial pieces carry a U+2581 prefix, continuation pieces carry none).
// Control tokens become special tokens (parsed only when allowed); user-defined tokens are always matched in text
// (as HF added tokens and llama.cpp do). Token types follow SentencePiece numbering (PieceType).
using System.Text;
using Quill.Formats.Gguf;

namespace Quill.Tokenization;

/// <summary>Builds tokenizers from GGUF metadata.</summary>
public static class GgufVocab
{
    /// <summary>Opens a GGUF file and builds its tokenizer.</summary>
    public static ITokenizer Load(string path)
    {
        using var gguf = GgufFile.Open(path);
        return FromGguf(gguf);
    }

    /// <summary>Builds the tokenizer of an open GGUF file.</summary>
    public static ITokenizer FromGguf(GgufFile gguf)
    {
        ArgumentNullException.ThrowIfNull(gguf);
        string path = gguf.Path;
        if (!gguf.TryGetString("tokenizer.ggml.model", out string model))
            throw new InvalidFileException($"{path}: GGUF file has no tokenizer (tokenizer.ggml.model is missing).");
        if (!gguf.ContainsKey("tokenizer.ggml.tokens"))
            throw new InvalidFileException($"{path}: GGUF file has no tokenizer.ggml.tokens.");
        byte[][] tokenBytes = gguf.GetStringArrayBytes("tokenizer.ggml.tokens");
        int n = tokenBytes.Length;
        var types = new PieceType[n];
        if (gguf.TryGetInt32Array("tokenizer.ggml.token_type", out int[] tt) && tt.Length == n)
        {
            for (int i = 0; i < n; i++) types[i] = tt[i] is >= 1 and <= 6 ? (PieceType)tt[i] : PieceType.Normal;
        }
        else
        {
            Array.Fill(types, PieceType.Normal);
        }
        int bos = gguf.TryGetInt32("tokenizer.ggml.bos_token_id", out int b) ? b : -1;
        int eos = gguf.TryGetInt32("tokenizer.ggml.eos_token_id", out int e) ? e : -1;
        ITokenizer tok = model switch
        {
            "gpt2" => LoadBpe(gguf, tokenBytes, types, path),
            "llama" => LoadSpm(gguf, tokenBytes, types, path),
            "bert" => LoadWordPiece(gguf, tokenBytes, types, path),
            _ => throw new InvalidFileException($"{path}: tokenizer.ggml.model \"{model}\" is not supported (gpt2, llama and bert are)."),
        };
        if (tok is TokenizerBase tb)
        {
            tb.BosId = bos < n ? bos : -1;
            tb.EosId = eos < n ? eos : -1;
        }
        return tok;
    }

    private static BpeTokenizer LoadBpe(GgufFile gguf, byte[][] tokenBytes, PieceType[] types, string path)
    {
        int n = tokenBytes.Length;
        var tokens = new byte[]?[n];
        var vocab = new Dictionary<string, int>(n, StringComparer.Ordinal);
        var specials = new Dictionary<string, int>(StringComparer.Ordinal);
        var always = new List<(string, int)>();
        for (int i = 0; i < n; i++)
        {
            string text = Encoding.UTF8.GetString(tokenBytes[i]);
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
                tokens[i] = ByteLevel.TryDecode(text) ?? tokenBytes[i];
            }
        }
        var merges = new List<(int, int)>();
        if (gguf.TryGetStringArray("tokenizer.ggml.merges", out string[] mergeLines))
        {
            for (int i = 0; i < mergeLines.Length; i++) merges.Add(Gpt2Files.ResolveMerge(mergeLines[i], vocab, path, i + 1));
        }
        string pre = gguf.TryGetString("tokenizer.ggml.pre", out string p) ? p : "default";
        string[] patterns = PreTokenizerPatterns.ForName(pre)
            ?? throw new InvalidFileException($"{path}: tokenizer.ggml.pre \"{pre}\" is not a known pre-tokenizer; Quill knows gpt2, llama-bpe, falcon, starcoder, refact, deepseek-coder, deepseek-llm, mpt and default.");
        var preTok = new PreTokenizer(patterns, pre);
        bool ignoreMerges = PreTokenizerPatterns.ForName("llama3")![0] == patterns[0];
        var tok = BpeTokenizer.FromMerges(tokens, merges, preTok, specials, ignoreMerges);
        foreach (var (text, id) in always) tok.AddSpecialToken(text, id, alwaysMatch: true);
        return tok;
    }

    private static SentencePieceTokenizer LoadSpm(GgufFile gguf, byte[][] tokenBytes, PieceType[] types, string path)
    {
        int n = tokenBytes.Length;
        var pieces = tokenBytes.Select(t => Encoding.UTF8.GetString(t)).ToArray();
        float[] scores = gguf.TryGetFloatArray("tokenizer.ggml.scores", out float[] s) && s.Length == n ? s : new float[n];
        bool addPrefix = !gguf.TryGetBool("tokenizer.ggml.add_space_prefix", out bool ap) || ap;
        bool byteFallback = types.Count(t => t == PieceType.Byte) == 256;
        int unk = gguf.TryGetInt32("tokenizer.ggml.unknown_token_id", out int u) ? u : Array.IndexOf(types, PieceType.Unknown);
        var tok = new SentencePieceTokenizer(pieces, scores, types, SentencePieceModelKind.Bpe,
                                             new SentencePieceNormalizer(null, addPrefix, false, true), byteFallback, unk);
        if (tok.UnkId < 0 && !byteFallback) throw new InvalidFileException($"{path}: SentencePiece vocabulary has neither byte pieces nor an unknown token.");
        return tok;
    }

    private static WordPieceTokenizer LoadWordPiece(GgufFile gguf, byte[][] tokenBytes, PieceType[] types, string path)
    {
        var pieces = tokenBytes.Select(t => Encoding.UTF8.GetString(t)).ToArray();
        int unk = gguf.TryGetInt32("tokenizer.ggml.unknown_token_id", out int u) ? u : Array.IndexOf(pieces, "[UNK]");
        if (unk < 0) throw new InvalidFileException($"{path}: WordPiece vocabulary has no unknown token ([UNK]).");
        var specials = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < pieces.Length; i++)
        {
            if (types[i] is PieceType.Control or PieceType.Unknown) specials.TryAdd(pieces[i], i);
        }
        return new WordPieceTokenizer(pieces, unk, specials, WordPieceTokenizer.Style.Metaspace);
    }
}
