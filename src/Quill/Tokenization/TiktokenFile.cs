// tiktoken rank files: one line per token, "base64(bytes) rank", ranks ascending (r50k/p50k/cl100k/o200k and
// Llama 3's original tokenizer.model). The file holds neither the split regex nor the special tokens, so they are
// taken from the known encoding the file matches (by file name, else by rank count); an unknown file gets the
// cl100k regex and no specials unless a pattern is given. Also writes such files.
using System.Globalization;
using System.Text;

namespace Quill.Tokenization;

/// <summary>Reads and writes tiktoken rank files.</summary>
public static class TiktokenFile
{
    private sealed record Known(string Name, int RankCount, string Pattern, (string Text, int Id)[] Specials, int Bos, int Eos);

    private static readonly Known[] KnownEncodings =
    [
        new("r50k_base", 50256, "gpt2", [("<|endoftext|>", 50256)], -1, 50256),
        new("p50k_base", 50280, "gpt2", [("<|endoftext|>", 50256)], -1, 50256),
        new("cl100k_base", 100256, "cl100k", [("<|endoftext|>", 100257), ("<|fim_prefix|>", 100258), ("<|fim_middle|>", 100259), ("<|fim_suffix|>", 100260), ("<|endofprompt|>", 100276)], -1, 100257),
        new("o200k_base", 199998, "o200k", [("<|endoftext|>", 199999), ("<|endofprompt|>", 200018)], -1, 199999),
        new("llama3", 128000, "llama3", Llama3Specials(), 128000, 128001),
    ];

    /// <summary>True when a line has the "base64 rank" shape.</summary>
    public static bool LooksLikeTiktoken(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        int sp = line.IndexOf(' ', StringComparison.Ordinal);
        return sp > 0 && sp == line.LastIndexOf(' ') && int.TryParse(line.AsSpan(sp + 1), NumberStyles.None, CultureInfo.InvariantCulture, out _)
               && line.AsSpan(0, sp).IndexOfAnyExcept("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") < 0;
    }

    /// <summary>Loads a rank file; pattern (a name or a regex) overrides the detected regex.</summary>
    public static BpeTokenizer Load(string path, string? pattern = null)
    {
        var tokens = new List<byte[]?>();
        int lineNo = 0;
        long holes = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNo++;
            if (line.Length == 0) continue;
            int sp = line.IndexOf(' ', StringComparison.Ordinal);
            if (sp <= 0 || !int.TryParse(line.AsSpan(sp + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int rank))
                throw new InvalidFileException($"{path}:{lineNo}: expected \"base64 rank\" (a tiktoken rank file).");
            byte[] bytes;
            try
            {
                bytes = Convert.FromBase64String(line[..sp]);
            }
            catch (FormatException ex)
            {
                throw new InvalidFileException($"{path}:{lineNo}: token is not valid base64.", ex);
            }
            if (rank < tokens.Count) throw new InvalidFileException($"{path}:{lineNo}: ranks must ascend (rank {rank} after {tokens.Count - 1}).");
            holes += rank - tokens.Count;
            if (holes > TokenizerErrors.MaxIdHoles)
                throw new InvalidFileException($"{path}:{lineNo}: rank {rank} after {tokens.Count - 1} leaves more than {TokenizerErrors.MaxIdHoles} unused ranks in the file; ranks must be (nearly) consecutive.");
            while (tokens.Count < rank) tokens.Add(null);
            tokens.Add(bytes);
        }
        if (tokens.Count < 256) throw new InvalidFileException($"{path}: only {tokens.Count} ranks; a byte-level rank file needs at least the 256 bytes.");
        string fileName = Path.GetFileName(path).ToLowerInvariant();
        Known? known = KnownEncodings.FirstOrDefault(k => fileName.StartsWith(k.Name, StringComparison.Ordinal))
                       ?? KnownEncodings.FirstOrDefault(k => k.RankCount == tokens.Count);
        var specials = new Dictionary<string, int>(StringComparer.Ordinal);
        if (known != null)
        {
            foreach (var (t, id) in known.Specials) specials[t] = id;
        }
        var pre = PreTokenizerPatterns.Create(pattern ?? known?.Pattern ?? "cl100k");
        var tok = BpeTokenizer.FromRanks(tokens, pre, specials);
        tok.BosId = known?.Bos ?? -1;
        tok.EosId = known?.Eos ?? -1;
        return tok;
    }

    /// <summary>Writes token bytes by rank (ids must equal ranks: a tokenizer from BpeTrainer or a rank file).</summary>
    public static void Save(BpeTokenizer tokenizer, string path)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var sb = new StringBuilder();
        for (int id = 0; id < tokenizer.VocabSize; id++)
        {
            if (tokenizer.IsSpecial(id)) continue;
            byte[]? t = tokenizer.TokenBytes(id);
            if (t == null) continue;
            sb.Append(Convert.ToBase64String(t)).Append(' ').Append(id.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }
        TokenizerFile.WriteAtomic(path, Encoding.UTF8.GetBytes(sb.ToString()));
    }

    private static (string, int)[] Llama3Specials()
    {
        var list = new List<(string, int)>
        {
            ("<|begin_of_text|>", 128000), ("<|end_of_text|>", 128001), ("<|start_header_id|>", 128006),
            ("<|end_header_id|>", 128007), ("<|eot_id|>", 128009), ("<|eom_id|>", 128008), ("<|python_tag|>", 128010),
            ("<|finetune_right_pad_id|>", 128004), ("<|step_id|>", 128005),
        };
        var used = list.Select(p => p.Item2).ToHashSet();
        int reserved = 0;
        for (int id = 128002; id < 128256; id++)
        {
            if (used.Contains(id)) continue;
            list.Add(($"<|reserved_special_token_{reserved++}|>", id));
        }
        return list.ToArray();
    }
}
