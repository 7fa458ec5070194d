// Character-level tokenizer: the vocabulary is the sorted set of distinct Unicode characters (scalar values, so a
// surrogate pair is one character) of the training text; id = position in that sorted list. Optionally one
// end-of-text special token (e.g. "<|endoftext|>") takes the id after the last character: it is the tokenizer's EOS,
// so prepared documents and fine-tuning replies can end with a stop token the model learns. Plain Encode never
// produces it (its text is encoded character by character, as any special-looking text); Encode with an allow-list
// naming it does. Files without the "end_of_text" field (written before it existed) load as before, without EOS.
// Does not handle: BOS, an unknown token (encoding a character outside the vocabulary is an error), more than one
// special token.
using System.Text;
using System.Text.Json.Nodes;

namespace Quill.Tokenization;

/// <summary>One id per distinct character of the training text (as in char-rnn / nanoGPT's shakespeare_char).</summary>
public sealed class CharTokenizer : ITokenizer
{
    private readonly int[] chars; // id -> Unicode scalar value, ascending
    private readonly Dictionary<int, int> idOf;
    private readonly Dictionary<string, int> specials = new(StringComparer.Ordinal);

    /// <summary>The usual end-of-text token text (GPT-2's).</summary>
    public const string DefaultEndOfText = "<|endoftext|>";

    /// <summary>
    /// Builds the tokenizer from an explicit character list (any order; duplicates are an error) and, when
    /// endOfText is given, an end-of-text special token with the id after the last character.
    /// </summary>
    public CharTokenizer(IEnumerable<int> scalarValues, string? endOfText = null)
    {
        ArgumentNullException.ThrowIfNull(scalarValues);
        if (endOfText is { Length: 0 }) throw new InvalidConfigException("char tokenizer: the end-of-text token text must not be empty.");
        chars = scalarValues.ToArray();
        Array.Sort(chars);
        idOf = new Dictionary<int, int>(chars.Length);
        for (int i = 0; i < chars.Length; i++)
        {
            if (!Rune.IsValid(chars[i])) throw new InvalidConfigException($"char tokenizer: U+{chars[i]:X4} is not a Unicode scalar value.");
            if (!idOf.TryAdd(chars[i], i)) throw new InvalidConfigException($"char tokenizer: character U+{chars[i]:X4} is listed twice.");
        }
        EndOfText = endOfText;
        if (endOfText != null) specials[endOfText] = chars.Length;
    }

    /// <summary>The vocabulary: sorted distinct characters of all texts, plus the end-of-text token when given.</summary>
    public static CharTokenizer Train(IEnumerable<string> texts, string? endOfText = null)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var set = new HashSet<int>();
        foreach (string t in texts)
        {
            foreach (Rune r in EnumerateStrict(t)) set.Add(r.Value);
        }
        if (set.Count == 0) throw new InvalidConfigException("char tokenizer: the training text is empty; pass some text.");
        return new CharTokenizer(set, endOfText);
    }

    /// <summary>This vocabulary with an end-of-text token (the same character ids; EOS after the last one).</summary>
    public CharTokenizer WithEndOfText(string endOfText = DefaultEndOfText) => new(chars, endOfText);

    public int VocabSize => chars.Length + specials.Count;

    public string Family => "char";

    public int BosId => -1;

    /// <summary>The end-of-text token's id (after the last character), or -1 when the tokenizer has none.</summary>
    public int EosId => EndOfText != null ? chars.Length : -1;

    /// <summary>The end-of-text token's text, or null.</summary>
    public string? EndOfText { get; }

    /// <summary>The end-of-text token, when the tokenizer has one.</summary>
    public IReadOnlyDictionary<string, int> SpecialTokens => specials;

    /// <summary>The character (as a string) of an id; the end-of-text token's text for EosId.</summary>
    public string this[int id] => EndOfText != null && id == chars.Length ? EndOfText : char.ConvertFromUtf32(chars[id]);

    /// <summary>Encodes text character by character; the end-of-text text is plain text here.</summary>
    public int[] Encode(string text) => Encode(text, null);

    /// <summary>Encodes text; the end-of-text text becomes EosId where allowedSpecial names it (or is SpecialTokenSet.All).</summary>
    public int[] Encode(string text, IReadOnlySet<string>? allowedSpecial)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length);
        bool eosAllowed = EndOfText != null && allowedSpecial != null && (ReferenceEquals(allowedSpecial, SpecialTokenSet.All) || allowedSpecial.Contains(EndOfText));
        int start = 0;
        while (eosAllowed)
        {
            int at = text.IndexOf(EndOfText!, start, StringComparison.Ordinal);
            if (at < 0) break;
            EncodeChars(text, start, at, ids);
            ids.Add(EosId);
            start = at + EndOfText!.Length;
        }
        EncodeChars(text, start, text.Length, ids);
        return ids.ToArray();
    }

    private void EncodeChars(string text, int start, int end, List<int> ids)
    {
        int index = start;
        foreach (Rune r in EnumerateStrict(text, start, end))
        {
            if (!idOf.TryGetValue(r.Value, out int id))
                throw new InvalidTokenInputException($"character '{r}' (U+{r.Value:X4}) at index {index} is not in the char tokenizer's vocabulary; retrain it on text that contains it.");
            ids.Add(id);
            index += r.Utf16SequenceLength;
        }
    }

    /// <summary>Decodes ids to text; the end-of-text token decodes to its text.</summary>
    public string Decode(ReadOnlySpan<int> ids)
    {
        var sb = new StringBuilder(ids.Length);
        int vocab = VocabSize;
        for (int i = 0; i < ids.Length; i++)
        {
            TokenizerErrors.CheckId(ids[i], vocab, i);
            sb.Append(ids[i] == chars.Length ? EndOfText : new Rune(chars[ids[i]]).ToString());
        }
        return sb.ToString();
    }

    public void Save(string path)
    {
        var obj = TokenizerFile.NewObject(Family);
        var arr = new JsonArray();
        foreach (int c in chars) arr.Add(char.ConvertFromUtf32(c));
        obj["chars"] = arr;
        if (EndOfText != null) obj["end_of_text"] = EndOfText;
        TokenizerFile.WriteAtomic(path, obj);
    }

    internal static CharTokenizer FromJson(string path, JsonObject obj)
    {
        string? endOfText = TokenizerFile.GetOptionalString(path, obj, "end_of_text");
        if (endOfText is { Length: 0 }) throw new InvalidFileException($"{path}: \"end_of_text\" must not be empty; remove the field or give the token's text.");
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
            return new CharTokenizer(list, endOfText);
        }
        catch (InvalidConfigException ex)
        {
            throw new InvalidFileException($"{path}: {ex.Message}", ex);
        }
    }

    private static IEnumerable<Rune> EnumerateStrict(string text) => EnumerateStrict(text, 0, text.Length);

    private static IEnumerable<Rune> EnumerateStrict(string text, int start, int end)
    {
        for (int i = start; i < end;)
        {
            if (Rune.DecodeFromUtf16(text.AsSpan(i, end - i), out Rune r, out int n) != System.Buffers.OperationStatus.Done)
                throw new InvalidTokenInputException($"input text holds a lone UTF-16 surrogate at index {i}; pass valid Unicode text.");
            yield return r;
            i += n;
        }
    }
}
