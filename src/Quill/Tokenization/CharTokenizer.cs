// Character-level tokenizer: the vocabulary is the sorted set of distinct Unicode characters (scalar values, so a
// surrogate pair is one character) of the training text; id = position in that sorted list. It has no BOS/EOS and
// no unknown token: encoding a character outside the vocabulary is an error.
using System.Text;
using System.Text.Json.Nodes;

namespace Quill.Tokenization;

/// <summary>One id per distinct character of the training text (as in char-rnn / nanoGPT's shakespeare_char).</summary>
public sealed class CharTokenizer : ITokenizer
{
    private readonly int[] chars; // id -> Unicode scalar value, ascending
    private readonly Dictionary<int, int> idOf;

    /// <summary>Builds the tokenizer from an explicit character list (any order; duplicates are an error).</summary>
    public CharTokenizer(IEnumerable<int> scalarValues)
    {
        ArgumentNullException.ThrowIfNull(scalarValues);
        chars = scalarValues.ToArray();
        Array.Sort(chars);
        idOf = new Dictionary<int, int>(chars.Length);
        for (int i = 0; i < chars.Length; i++)
        {
            if (!Rune.IsValid(chars[i])) throw new InvalidConfigException($"char tokenizer: U+{chars[i]:X4} is not a Unicode scalar value.");
            if (!idOf.TryAdd(chars[i], i)) throw new InvalidConfigException($"char tokenizer: character U+{chars[i]:X4} is listed twice.");
        }
    }

    /// <summary>The vocabulary: sorted distinct characters of all texts.</summary>
    public static CharTokenizer Train(IEnumerable<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var set = new HashSet<int>();
        foreach (string t in texts)
        {
            foreach (Rune r in EnumerateStrict(t)) set.Add(r.Value);
        }
        if (set.Count == 0) throw new InvalidConfigException("char tokenizer: the training text is empty; pass some text.");
        return new CharTokenizer(set);
    }

    public int VocabSize => chars.Length;

    public string Family => "char";

    public int BosId => -1;

    public int EosId => -1;

    /// <summary>The character (as a string) of an id.</summary>
    public string this[int id] => char.ConvertFromUtf32(chars[id]);

    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length);
        int index = 0;
        foreach (Rune r in EnumerateStrict(text))
        {
            if (!idOf.TryGetValue(r.Value, out int id))
                throw new InvalidTokenInputException($"character '{r}' (U+{r.Value:X4}) at index {index} is not in the char tokenizer's vocabulary; retrain it on text that contains it.");
            ids.Add(id);
            index += r.Utf16SequenceLength;
        }
        return ids.ToArray();
    }

    public string Decode(ReadOnlySpan<int> ids)
    {
        var sb = new StringBuilder(ids.Length);
        for (int i = 0; i < ids.Length; i++)
        {
            TokenizerErrors.CheckId(ids[i], chars.Length, i);
            sb.Append(new Rune(chars[ids[i]]).ToString());
        }
        return sb.ToString();
    }

    public void Save(string path)
    {
        var obj = TokenizerFile.NewObject(Family);
        var arr = new JsonArray();
        foreach (int c in chars) arr.Add(char.ConvertFromUtf32(c));
        obj["chars"] = arr;
        TokenizerFile.WriteAtomic(path, obj);
    }

    internal static CharTokenizer FromJson(string path, JsonObject obj)
    {
        var list = new List<int>();
        foreach (var node in TokenizerFile.GetArray(path, obj, "chars"))
        {
            string? s = node is JsonValue v && v.TryGetValue(out string? x) ? x : null;
            if (s is null || !Rune.TryGetRuneAt(s, 0, out Rune r) || r.Utf16SequenceLength != s.Length)
                throw new InvalidFileException($"{path}: every entry of \"chars\" must be a one-character string.");
            list.Add(r.Value);
        }
        try
        {
            return new CharTokenizer(list);
        }
        catch (InvalidConfigException ex)
        {
            throw new InvalidFileException($"{path}: {ex.Message}", ex);
        }
    }

    private static IEnumerable<Rune> EnumerateStrict(string text)
    {
        for (int i = 0; i < text.Length;)
        {
            if (Rune.DecodeFromUtf16(text.AsSpan(i), out Rune r, out int n) != System.Buffers.OperationStatus.Done)
                throw new InvalidTokenInputException($"input text holds a lone UTF-16 surrogate at index {i}; pass valid Unicode text.");
            yield return r;
            i += n;
        }
    }
}
