// Common plumbing for the vocabulary-based tokenizers (BPE, SentencePiece, WordPiece): the special-token table and
// the allow-list split (special tokens are found first, the text between them goes to the family's ordinary
// encoder), id checks, and Decode built on the family's per-token bytes. Families implement EncodeOrdinary and
// AppendTokenBytes. It does not add BOS/EOS; callers do that explicitly.
using System.Buffers;
using System.Text;

namespace Quill.Tokenization;

/// <summary>Base class for tokenizers with a vocabulary and special tokens.</summary>
public abstract class TokenizerBase : ITokenizer
{
    private readonly Dictionary<string, int> specials;
    private readonly Dictionary<int, string> specialText;
    private readonly HashSet<string> alwaysMatched = new(StringComparer.Ordinal);
    private SearchValues<char> specialFirstChars;

    protected TokenizerBase(IReadOnlyDictionary<string, int>? specialTokens)
    {
        specials = new Dictionary<string, int>(StringComparer.Ordinal);
        specialText = [];
        if (specialTokens != null)
        {
            foreach (var (k, v) in specialTokens) AddSpecialCore(k, v);
        }
        specialFirstChars = SearchValues.Create(specials.Keys.Select(k => k[0]).Distinct().ToArray());
    }

    public abstract int VocabSize { get; }

    public abstract string Family { get; }

    public int BosId { get; set; } = -1;

    public int EosId { get; set; } = -1;

    /// <summary>Special tokens by text.</summary>
    public IReadOnlyDictionary<string, int> SpecialTokens => specials;

    /// <summary>The largest special-token id, or -1.</summary>
    protected int MaxSpecialId { get; private set; } = -1;

    /// <summary>True when id is a special token.</summary>
    public bool IsSpecial(int id) => specialText.ContainsKey(id);

    /// <summary>Encodes text without any special token (special-looking text is plain text).</summary>
    public int[] Encode(string text) => Encode(text, null);

    /// <summary>Encodes text; the allowed special tokens (SpecialTokenSet.All for all) become their ids.</summary>
    public int[] Encode(string text, IReadOnlySet<string>? allowedSpecial)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 4);
        EncodeInto(text, allowedSpecial, ids);
        return ids.ToArray();
    }

    /// <summary>Appends the ids of text to ids (see Encode).</summary>
    public void EncodeInto(string text, IReadOnlySet<string>? allowedSpecial, List<int> ids)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(ids);
        CheckUtf16(text);
        allowedSpecial ??= SpecialTokenSet.None;
        if (allowedSpecial.Count == 0 && !ReferenceEquals(allowedSpecial, SpecialTokenSet.All) && alwaysMatched.Count == 0 || specials.Count == 0)
        {
            EncodeOrdinary(text, 0, text.Length, ids, true);
            return;
        }
        bool all = ReferenceEquals(allowedSpecial, SpecialTokenSet.All);
        int pos = 0, segmentStart = 0;
        bool atStart = true;
        while (pos < text.Length)
        {
            int k = text.AsSpan(pos).IndexOfAny(specialFirstChars);
            if (k < 0) break;
            pos += k;
            string? best = null;
            foreach (string s in specials.Keys)
            {
                if ((best == null || s.Length > best.Length) && (all || allowedSpecial.Contains(s) || alwaysMatched.Contains(s)) && text.AsSpan(pos).StartsWith(s, StringComparison.Ordinal))
                    best = s;
            }
            if (best == null)
            {
                pos++;
                continue;
            }
            if (pos > segmentStart) EncodeOrdinary(text, segmentStart, pos - segmentStart, ids, atStart);
            ids.Add(specials[best]);
            atStart = true;
            pos += best.Length;
            segmentStart = pos;
        }
        if (segmentStart < text.Length) EncodeOrdinary(text, segmentStart, text.Length - segmentStart, ids, atStart);
    }

    /// <summary>
    /// Encodes text[start, start+length) that holds no special token. atTextStart: the segment begins the input or
    /// follows a special token (SentencePiece adds its dummy-prefix space there, as llama.cpp does).
    /// </summary>
    protected abstract void EncodeOrdinary(string text, int start, int length, List<int> ids, bool atTextStart);

    /// <summary>Appends the bytes of one non-special token. first: it is the first token decoded.</summary>
    protected abstract void AppendTokenBytes(int id, ArrayBufferWriter<byte> output, bool first);

    /// <summary>Decodes ids to raw bytes; special tokens decode to their text.</summary>
    public byte[] DecodeBytes(ReadOnlySpan<int> ids)
    {
        var output = new ArrayBufferWriter<byte>(ids.Length * 4 + 16);
        bool first = true;
        int vocabSize = VocabSize;
        for (int i = 0; i < ids.Length; i++)
        {
            TokenizerErrors.CheckId(ids[i], vocabSize, i);
            if (specialText.TryGetValue(ids[i], out string? s))
            {
                if (DecodeSpecialsAsText) output.Write(Encoding.UTF8.GetBytes(s));
            }
            else
            {
                AppendTokenBytes(ids[i], output, first);
                first = false;
            }
        }
        return output.WrittenSpan.ToArray();
    }

    /// <summary>Whether Decode writes special tokens as their text (SentencePiece skips control pieces).</summary>
    protected virtual bool DecodeSpecialsAsText => true;

    /// <summary>Decodes ids to text; invalid UTF-8 (a character cut by the id list's ends) becomes U+FFFD.</summary>
    public virtual string Decode(ReadOnlySpan<int> ids) => Encoding.UTF8.GetString(DecodeBytes(ids));

    public abstract void Save(string path);

    /// <summary>
    /// Adds (or re-points) a special token. alwaysMatch: the token is found in any text whatever the allow-list says
    /// (HF "added tokens" that are not special, GGUF user-defined tokens).
    /// </summary>
    public void AddSpecialToken(string text, int id, bool alwaysMatch = false)
    {
        AddSpecialCore(text, id);
        if (alwaysMatch) alwaysMatched.Add(text);
        specialFirstChars = SearchValues.Create(specials.Keys.Select(k => k[0]).Distinct().ToArray());
    }

    private void AddSpecialCore(string text, int id)
    {
        if (string.IsNullOrEmpty(text)) throw new InvalidConfigException("special token text must not be empty.");
        if (id < 0) throw new InvalidConfigException($"special token \"{text}\" has a negative id {id}.");
        if (specials.TryGetValue(text, out int old)) specialText.Remove(old);
        specials[text] = id;
        specialText[id] = text;
        MaxSpecialId = specialText.Keys.Max();
    }

    private static void CheckUtf16(string text)
    {
        int bad = IndexOfInvalidUtf16(text);
        if (bad >= 0) throw new InvalidTokenInputException($"input text holds a lone UTF-16 surrogate at index {bad}; pass valid Unicode text.");
    }

    internal static int IndexOfInvalidUtf16(ReadOnlySpan<char> text)
    {
        int i = text.IndexOfAnyInRange('\uD800', '\uDFFF');
        while (i >= 0 && i < text.Length)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) i += 2;
            else if (char.IsSurrogate(text[i])) return i;
            else i++;
            int next = text[i..].IndexOfAnyInRange('\uD800', '\uDFFF');
            if (next < 0) return -1;
            i += next;
        }
        return -1;
    }
}
