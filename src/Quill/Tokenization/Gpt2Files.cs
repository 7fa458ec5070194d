// GPT-2's original pair of files: encoder.json ({byte-level token text: id}) and vocab.bpe (optional "#version"
// line, then one merge "A B" per line in rank order, tokens in byte-level spelling). Also reads the same pair under
// HF's names vocab.json + merges.txt. Tokens whose text is not byte-level spelling (added specials such as
// <|endoftext|> are byte-level too) are kept as their UTF-8 text. Does not read tokenizer.json (HfTokenizerJson).
using System.Text;
using System.Text.Json;

namespace Quill.Tokenization;

/// <summary>Loads encoder.json + vocab.bpe (GPT-2 format).</summary>
public static class Gpt2Files
{
    /// <summary>Loads the pair; pattern (name or regex) defaults to GPT-2's.</summary>
    public static BpeTokenizer Load(string encoderPath, string mergesPath, string? pattern = null)
    {
        Dictionary<string, int>? encoder;
        try
        {
            encoder = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(encoderPath, Encoding.UTF8));
        }
        catch (JsonException ex)
        {
            throw new InvalidFileException($"{encoderPath}: expected a JSON object {{token: id}} (GPT-2 encoder.json).", ex);
        }
        if (encoder == null || encoder.Count == 0) throw new InvalidFileException($"{encoderPath}: empty encoder.");
        var tokens = TokensFromVocab(encoder, encoderPath);
        var merges = ReadMerges(mergesPath, encoder);
        var specials = new Dictionary<string, int>(StringComparer.Ordinal);
        if (encoder.TryGetValue("<|endoftext|>", out int eot)) specials["<|endoftext|>"] = eot;
        // Llama 3 (the one family that ships in this format with its own regex) also emits whole-word tokens directly.
        var pre = PreTokenizerPatterns.Create(pattern ?? "gpt2");
        var tok = BpeTokenizer.FromMerges(tokens, merges, pre, specials, ignoreMerges: pre.Name == "llama3");
        tok.EosId = specials.TryGetValue("<|endoftext|>", out int e) ? e : -1;
        return tok;
    }

    /// <summary>Token bytes by id from a {byte-level text: id} map.</summary>
    internal static byte[]?[] TokensFromVocab(IReadOnlyDictionary<string, int> vocab, string path)
    {
        int max = TokenizerErrors.MaxFileId(path, vocab.Values, vocab.Count);
        var tokens = new byte[]?[max + 1];
        foreach (var (text, id) in vocab)
        {
            if (id < 0) throw new InvalidFileException($"{path}: token \"{text}\" has a negative id.");
            tokens[id] = ByteLevel.TryDecode(text) ?? Encoding.UTF8.GetBytes(text);
        }
        return tokens;
    }

    /// <summary>Reads merges ("A B" per line) and resolves them to id pairs.</summary>
    internal static List<(int, int)> ReadMerges(string path, IReadOnlyDictionary<string, int> vocab)
    {
        var merges = new List<(int, int)>();
        int lineNo = 0;
        foreach (string line in File.ReadLines(path, Encoding.UTF8))
        {
            lineNo++;
            if (line.Length == 0 || (lineNo == 1 && line.StartsWith("#version", StringComparison.Ordinal))) continue;
            merges.Add(ResolveMerge(line, vocab, path, lineNo));
        }
        return merges;
    }

    internal static (int, int) ResolveMerge(string line, IReadOnlyDictionary<string, int> vocab, string path, int lineNo)
    {
        int sp = line.IndexOf(' ', StringComparison.Ordinal);
        if (sp <= 0 || sp == line.Length - 1 || line.IndexOf(' ', sp + 1) >= 0)
            throw new InvalidFileException($"{path}:{lineNo}: a merge line must be \"A B\".");
        string a = line[..sp], b = line[(sp + 1)..];
        if (!vocab.TryGetValue(a, out int ia) || !vocab.TryGetValue(b, out int ib))
            throw new InvalidFileException($"{path}:{lineNo}: merge \"{line}\" names a token missing from the vocabulary.");
        return (ia, ib);
    }
}
