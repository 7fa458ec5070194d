// WordPiece (BERT) as HF's BertNormalizer + BertPreTokenizer + WordPiece model do it: drop control characters and
// U+0000/U+FFFD, turn whitespace into spaces, put spaces around CJK ideographs, lowercase, strip accents (NFD,
// drop Mn: table in UnicodeTables.g.cs, Hangul decomposed arithmetically), split on whitespace and on each
// punctuation character, then greedy longest-match per word with continuation pieces. Words over 100 characters
// or with no segmentation become [UNK]. Two vocabulary spellings: HF ("##" marks continuations) and GGUF/llama.cpp
// (U+2581 marks word starts). Cased BERT (no lowercasing) is selectable; nothing else of HF's options is.
using System.Buffers;
using System.Globalization;
using System.Text;

namespace Quill.Tokenization;

/// <summary>A BERT-style WordPiece tokenizer.</summary>
public sealed class WordPieceTokenizer : TokenizerBase
{
    private const int MaxWordChars = 100;
    private static readonly Dictionary<char, string> StripTable = BuildStripTable();
    private readonly string[] pieces;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> lookup;
    private readonly int maxPieceLength;

    /// <summary>How continuation / word-start pieces are spelled in the vocabulary.</summary>
    public enum Style
    {
        /// <summary>HF vocab.txt: continuation pieces start with "##".</summary>
        Hash,

        /// <summary>llama.cpp GGUF: word-initial pieces start with U+2581.</summary>
        Metaspace,
    }

    public WordPieceTokenizer(IReadOnlyList<string> pieces, int unkId, IReadOnlyDictionary<string, int>? specials, Style style, bool lowercase = true)
        : base(specials)
    {
        ArgumentNullException.ThrowIfNull(pieces);
        this.pieces = pieces.ToArray();
        UnkId = unkId;
        VocabStyle = style;
        Lowercase = lowercase;
        var d = new Dictionary<string, int>(pieces.Count, StringComparer.Ordinal);
        for (int i = 0; i < pieces.Count; i++)
        {
            d.TryAdd(pieces[i], i);
            maxPieceLength = Math.Max(maxPieceLength, pieces[i].Length);
        }
        lookup = d.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    public override int VocabSize => pieces.Length;

    public override string Family => "wordpiece";

    public int UnkId { get; }

    public Style VocabStyle { get; }

    public bool Lowercase { get; }

    protected override void EncodeOrdinary(string text, int start, int length, List<int> ids, bool atTextStart)
    {
        var word = new StringBuilder();
        foreach (Rune r in text.AsSpan(start, length).EnumerateRunes())
        {
            int cp = r.Value;
            if (cp == 0 || cp == 0xFFFD || IsControl(r)) continue;
            if (IsWhitespace(r))
            {
                Flush(word, ids);
                continue;
            }
            if (IsChinese(cp) || IsPunctuation(r))
            {
                Flush(word, ids);
                AppendNormalized(r, word);
                Flush(word, ids);
                continue;
            }
            AppendNormalized(r, word);
        }
        Flush(word, ids);
    }

    private void AppendNormalized(Rune r, StringBuilder word)
    {
        if (!Lowercase)
        {
            word.Append(r.ToString());
            return;
        }
        string lower = Rune.ToLowerInvariant(r).ToString();
        foreach (char c in lower)
        {
            if (c is >= '\uAC00' and <= '\uD7A3')
            {
                int s = c - 0xAC00;
                word.Append((char)(0x1100 + s / 588)).Append((char)(0x1161 + s % 588 / 28));
                if (s % 28 != 0) word.Append((char)(0x11A7 + s % 28));
            }
            else if (StripTable.TryGetValue(c, out string? stripped)) word.Append(stripped);
            else if (CharUnicodeInfo.GetUnicodeCategory(c) != UnicodeCategory.NonSpacingMark) word.Append(c);
        }
    }

    private void Flush(StringBuilder word, List<int> ids)
    {
        if (word.Length == 0) return;
        string w = word.ToString();
        word.Clear();
        if (w.EnumerateRunes().Count() > MaxWordChars)
        {
            ids.Add(UnkId);
            return;
        }
        string key = VocabStyle == Style.Metaspace ? "\u2581" + w : w;
        int before = ids.Count;
        int pos = 0;
        var buf = new StringBuilder();
        while (pos < key.Length)
        {
            int found = -1, foundLen = 0;
            for (int end = Math.Min(key.Length, pos + maxPieceLength); end > pos; end--)
            {
                if (end < key.Length && char.IsLowSurrogate(key[end])) continue;
                ReadOnlySpan<char> sub = key.AsSpan(pos, end - pos);
                if (VocabStyle == Style.Hash && pos > 0)
                {
                    buf.Clear().Append("##").Append(sub);
                    if (lookup.TryGetValue(buf.ToString(), out int h))
                    {
                        found = h;
                        foundLen = end - pos;
                        break;
                    }
                    continue;
                }
                if (lookup.TryGetValue(sub, out int id))
                {
                    found = id;
                    foundLen = end - pos;
                    break;
                }
            }
            if (found < 0)
            {
                ids.RemoveRange(before, ids.Count - before);
                ids.Add(UnkId);
                return;
            }
            ids.Add(found);
            pos += foundLen;
        }
    }

    protected override void AppendTokenBytes(int id, ArrayBufferWriter<byte> output, bool first)
    {
        string p = pieces[id];
        string text;
        if (VocabStyle == Style.Metaspace)
        {
            text = p.StartsWith('\u2581') ? (first ? p[1..] : " " + p[1..]) : p;
        }
        else
        {
            text = p.StartsWith("##", StringComparison.Ordinal) ? p[2..] : first ? p : " " + p;
        }
        output.Write(Encoding.UTF8.GetBytes(text));
    }

    public override void Save(string path)
    {
        var obj = TokenizerFile.NewObject(Family);
        obj["pieces"] = new System.Text.Json.Nodes.JsonArray(pieces.Select(p => (System.Text.Json.Nodes.JsonNode?)p).ToArray());
        obj["unk"] = UnkId;
        obj["style"] = VocabStyle == Style.Hash ? "hash" : "metaspace";
        obj["lowercase"] = Lowercase;
        obj["special_tokens"] = TokenizerFile.SpecialsToJson(SpecialTokens);
        obj["bos"] = BosId;
        obj["eos"] = EosId;
        TokenizerFile.WriteAtomic(path, obj);
    }

    internal static WordPieceTokenizer FromJson(string path, System.Text.Json.Nodes.JsonObject obj)
    {
        var p = TokenizerFile.GetArray(path, obj, "pieces").Select(n => n!.GetValue<string>()).ToArray();
        var style = TokenizerFile.GetOptionalString(path, obj, "style") == "hash" ? Style.Hash : Style.Metaspace;
        return new WordPieceTokenizer(p, TokenizerFile.GetInt(path, obj, "unk"), TokenizerFile.GetSpecials(path, obj), style,
                                      obj["lowercase"]?.GetValue<bool>() ?? true)
        {
            BosId = TokenizerFile.GetOptionalInt(path, obj, "bos", -1),
            EosId = TokenizerFile.GetOptionalInt(path, obj, "eos", -1),
        };
    }

    private static bool IsWhitespace(Rune r) => r.Value is ' ' or '\t' or '\n' or '\r' || Rune.GetUnicodeCategory(r) == UnicodeCategory.SpaceSeparator;

    private static bool IsControl(Rune r)
    {
        if (r.Value is '\t' or '\n' or '\r') return false;
        var c = Rune.GetUnicodeCategory(r);
        return c is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.PrivateUse or UnicodeCategory.Surrogate
            or UnicodeCategory.OtherNotAssigned;
    }

    private static bool IsPunctuation(Rune r)
    {
        int cp = r.Value;
        if (cp is >= 33 and <= 47 or >= 58 and <= 64 or >= 91 and <= 96 or >= 123 and <= 126) return true;
        return Rune.GetUnicodeCategory(r) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;
    }

    private static bool IsChinese(int cp) =>
        cp is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0x20000 and <= 0x2A6DF or >= 0x2A700 and <= 0x2B73F
            or >= 0x2B740 and <= 0x2B81F or >= 0x2B820 and <= 0x2CEAF or >= 0xF900 and <= 0xFAFF or >= 0x2F800 and <= 0x2FA1F;

    private static Dictionary<char, string> BuildStripTable()
    {
        var d = new Dictionary<char, string>(UnicodeTables.StripAccentKeys.Length);
        string[] values = UnicodeTables.StripAccentValues.Split('\0');
        for (int i = 0; i < UnicodeTables.StripAccentKeys.Length; i++) d[UnicodeTables.StripAccentKeys[i]] = values[i];
        return d;
    }
}
