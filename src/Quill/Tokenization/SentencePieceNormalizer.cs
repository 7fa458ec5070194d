// SentencePiece's text normalizer: the model's precompiled character map (a darts-clone double-array trie over
// UTF-8 whose leaves point into a pool of NUL-terminated replacement strings, e.g. NFKC), then the whitespace
// options: remove_extra_whitespaces (trim, collapse runs of ' '), add_dummy_prefix (a leading ' ') and
// escape_whitespaces (' ' -> U+2581). Custom rule TSVs are not applied here (models ship them compiled).
using System.Buffers.Binary;
using System.Text;

namespace Quill.Tokenization;

/// <summary>Normalization settings and the precompiled character map of a SentencePiece model.</summary>
public sealed class SentencePieceNormalizer
{
    /// <summary>The escaped space, U+2581 LOWER ONE EIGHTH BLOCK.</summary>
    public const char Space = '\u2581';

    private readonly uint[] trie;
    private readonly byte[] pool;

    public SentencePieceNormalizer(byte[]? precompiledCharsmap, bool addDummyPrefix, bool removeExtraWhitespaces, bool escapeWhitespaces)
    {
        AddDummyPrefix = addDummyPrefix;
        RemoveExtraWhitespaces = removeExtraWhitespaces;
        EscapeWhitespaces = escapeWhitespaces;
        Charsmap = precompiledCharsmap is { Length: > 0 } ? precompiledCharsmap : null;
        if (Charsmap == null)
        {
            trie = [];
            pool = [];
            return;
        }
        if (Charsmap.Length < 4) throw new InvalidFileException("SentencePiece precompiled_charsmap is truncated.");
        int trieBytes = (int)BinaryPrimitives.ReadUInt32LittleEndian(Charsmap);
        if (trieBytes < 0 || trieBytes % 4 != 0 || 4 + trieBytes > Charsmap.Length)
            throw new InvalidFileException("SentencePiece precompiled_charsmap has an invalid trie size.");
        trie = new uint[trieBytes / 4];
        for (int i = 0; i < trie.Length; i++) trie[i] = BinaryPrimitives.ReadUInt32LittleEndian(Charsmap.AsSpan(4 + 4 * i));
        pool = Charsmap.AsSpan(4 + trieBytes).ToArray();
    }

    public bool AddDummyPrefix { get; }

    public bool RemoveExtraWhitespaces { get; }

    public bool EscapeWhitespaces { get; }

    /// <summary>The raw precompiled map (null when the model has none).</summary>
    public byte[]? Charsmap { get; }

    /// <summary>Normalizes text. addPrefix: apply add_dummy_prefix (false for text that does not start the input).</summary>
    public string Normalize(string text, bool addPrefix = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        string mapped = trie.Length == 0 ? text : ApplyCharsmap(text);
        var sb = new StringBuilder(mapped.Length + 1);
        if (RemoveExtraWhitespaces)
        {
            bool pendingSpace = false;
            foreach (char c in mapped)
            {
                if (c == ' ')
                {
                    pendingSpace = sb.Length > 0;
                    continue;
                }
                if (pendingSpace) sb.Append(' ');
                pendingSpace = false;
                sb.Append(c);
            }
        }
        else
        {
            sb.Append(mapped);
        }
        if (sb.Length == 0) return "";
        if (AddDummyPrefix && addPrefix) sb.Insert(0, ' ');
        if (EscapeWhitespaces) sb.Replace(' ', Space);
        return sb.ToString();
    }

    private string ApplyCharsmap(string text)
    {
        byte[] input = Encoding.UTF8.GetBytes(text);
        var output = new List<byte>(input.Length + 8);
        int pos = 0;
        while (pos < input.Length)
        {
            int matchLen = LongestMatch(input.AsSpan(pos), out int value);
            if (matchLen > 0)
            {
                int end = value >= 0 && value < pool.Length ? Array.IndexOf(pool, (byte)0, value) : -1;
                if (end < 0) throw new InvalidFileException("SentencePiece precompiled_charsmap points outside its string pool (or to a string without its end); the model file is corrupt.");
                for (int i = value; i < end; i++) output.Add(pool[i]);
                pos += matchLen;
            }
            else
            {
                int len = Utf8Length(input[pos]);
                for (int i = 0; i < len && pos + i < input.Length; i++) output.Add(input[pos + i]);
                pos += len;
            }
        }
        return Encoding.UTF8.GetString(output.ToArray());
    }

    /// <summary>Longest prefix of key with a leaf in the double-array trie; returns its length (0: none) and value.</summary>
    private int LongestMatch(ReadOnlySpan<byte> key, out int value)
    {
        value = -1;
        int best = 0;
        uint nodePos = 0;
        uint unit = trie[0];
        nodePos ^= Offset(unit);
        for (int i = 0; i < key.Length; i++)
        {
            byte c = key[i];
            if (c == 0) break;
            nodePos ^= c;
            if (nodePos >= trie.Length) break;
            unit = trie[nodePos];
            if (Label(unit) != c) break;
            nodePos ^= Offset(unit);
            if (HasLeaf(unit))
            {
                if (nodePos >= trie.Length) break;
                value = (int)(trie[nodePos] & 0x7FFFFFFF);
                best = i + 1;
            }
        }
        return best;
    }

    private static bool HasLeaf(uint unit) => ((unit >> 8) & 1) == 1;

    private static uint Label(uint unit) => unit & (0x80000000U | 0xFF);

    private static uint Offset(uint unit) => (unit >> 10) << (int)((unit & (1U << 9)) >> 6);

    private static int Utf8Length(byte lead) => lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}
