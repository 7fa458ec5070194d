// Hand-written splitters equivalent to the gpt2, cl100k (= llama3) and o200k regexes, on code points. They are the
// fast path of PreTokenizer; the regex path stays as their reference twin and the tests compare the two on
// random text. Per alternative, in regex order:
//   gpt2:   's|'t|'re|'ve|'m|'ll|'d | ' '?L+ | ' '?N+ | ' '?O+ | \s+(?!\S) | \s+
//   cl100k: '(?i:s|t|re|ve|m|ll|d) | [^\r\n L N]?L+ | N{1,3} | ' '?O+[\r\n]* | \s*[\r\n]+ | \s+(?!\S) | \s+
//   o200k:  P?U*W+C? | P?U+W*C? | N{1,3} | ' '?O+[\r\n/]* | \s*[\r\n]+ | \s+(?!\S) | \s+
// where L = letter, N = number, O = not whitespace/letter/number, P = [^\r\n L N], U = Lu|Lt|Lm|Lo|M,
// W = Ll|Lm|Lo|M, C = an optional case-insensitive contraction. Categories come from .NET's Unicode tables.
using System.Globalization;
using System.Text;

namespace Quill.Tokenization;

internal enum FastPattern
{
    Gpt2,
    Cl100k,
    O200k,
}

internal static class FastPreTokenizer
{
    private const byte Letter = 1, Number = 2, Space = 4, Upper = 8, Lower = 16, Newline = 32, Other = 64;
    private static readonly byte[] Bmp = BuildTable();

    public static void Split(FastPattern pattern, ReadOnlySpan<char> s, List<(int Start, int Length)> chunks)
    {
        int i = 0;
        while (i < s.Length)
        {
            int end = Next(pattern, s, i);
            chunks.Add((i, end - i));
            i = end;
        }
    }

    /// <summary>The end of the chunk that starts at i (i &lt; s.Length).</summary>
    public static int Next(FastPattern pattern, ReadOnlySpan<char> s, int i) => pattern switch
    {
        FastPattern.Gpt2 => NextGpt2(s, i),
        FastPattern.Cl100k => NextCl100k(s, i),
        _ => NextO200k(s, i),
    };

    private static byte Class(ReadOnlySpan<char> s, int i, out int len)
    {
        char c = s[i];
        if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
        {
            len = 2;
            return ClassOf(CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(c, s[i + 1])), false);
        }
        len = 1;
        return Bmp[c];
    }

    private static byte ClassAt(ReadOnlySpan<char> s, int i) => i < s.Length ? Class(s, i, out _) : (byte)0;

    private static int RunOf(ReadOnlySpan<char> s, int i, byte mask)
    {
        while (i < s.Length)
        {
            byte k = Class(s, i, out int len);
            if ((k & mask) == 0) break;
            i += len;
        }
        return i;
    }

    private static int Contraction(ReadOnlySpan<char> s, int i, bool ignoreCase)
    {
        if (i + 1 >= s.Length || s[i] != '\'') return 0;
        char a = ignoreCase ? char.ToLowerInvariant(s[i + 1]) : s[i + 1];
        if (a is 's' or 't' or 'm' or 'd') return 2;
        if (i + 2 < s.Length)
        {
            char b = ignoreCase ? char.ToLowerInvariant(s[i + 2]) : s[i + 2];
            if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
        }
        return 0;
    }

    /// <summary>End of the whitespace rules at i (s[i] is whitespace): \s*[\r\n]+ (when withNewline), \s+(?!\S), \s+.</summary>
    private static int Whitespace(ReadOnlySpan<char> s, int i, bool withNewline)
    {
        int k = RunOf(s, i, Space);
        if (withNewline)
        {
            int lastNl = -1;
            for (int j = i; j < k; j++)
            {
                if (s[j] is '\r' or '\n') lastNl = j;
            }
            if (lastNl >= 0) return lastNl + 1;
        }
        if (k == s.Length) return k;
        int lastStart = k - 1;
        if (char.IsLowSurrogate(s[lastStart]) && lastStart > i) lastStart--;
        return lastStart > i ? lastStart : k;
    }

    private static int NextGpt2(ReadOnlySpan<char> s, int i)
    {
        int c = Contraction(s, i, false);
        if (c > 0) return i + c;
        int j = s[i] == ' ' && i + 1 < s.Length ? i + 1 : i;
        byte k = Class(s, j, out _);
        if ((k & Letter) != 0) return RunOf(s, j, Letter);
        if ((k & Number) != 0) return RunOf(s, j, Number);
        if ((k & Other) != 0) return RunOf(s, j, Other);
        return Whitespace(s, i, false);
    }

    private static int NextCl100k(ReadOnlySpan<char> s, int i)
    {
        int c = Contraction(s, i, true);
        if (c > 0) return i + c;
        byte k = Class(s, i, out int len);
        if ((k & Letter) != 0) return RunOf(s, i, Letter);
        if ((k & (Number | Newline)) == 0 && (ClassAt(s, i + len) & Letter) != 0) return RunOf(s, i + len, Letter);
        if ((k & Number) != 0)
        {
            int j = i;
            for (int n = 0; n < 3 && j < s.Length; n++)
            {
                if ((Class(s, j, out int l) & Number) == 0) break;
                j += l;
            }
            return j;
        }
        int o = s[i] == ' ' && (ClassAt(s, i + 1) & Other) != 0 ? i + 1 : i;
        if ((ClassAt(s, o) & Other) != 0)
        {
            int e = RunOf(s, o, Other);
            while (e < s.Length && s[e] is '\r' or '\n') e++;
            return e;
        }
        return Whitespace(s, i, true);
    }

    private static int NextO200k(ReadOnlySpan<char> s, int i)
    {
        byte k = Class(s, i, out int len);
        bool isP = (k & (Letter | Number | Newline)) == 0;
        // Alternatives in regex order: P?U*W+ (with P, then without), then P?U+W* (with P, then without).
        int end = -1;
        if (isP) end = Alt1(s, i + len);
        if (end < 0 && (k & (Upper | Lower)) != 0) end = Alt1(s, i);
        if (end < 0 && isP) end = Alt2(s, i + len);
        if (end < 0) end = Alt2(s, i);
        if (end > i) return end + Contraction(s, end, true);
        if ((k & Number) != 0)
        {
            int j = i;
            for (int n = 0; n < 3 && j < s.Length; n++)
            {
                if ((Class(s, j, out int l) & Number) == 0) break;
                j += l;
            }
            return j;
        }
        int o = s[i] == ' ' && (ClassAt(s, i + 1) & Other) != 0 ? i + 1 : i;
        if ((ClassAt(s, o) & Other) != 0)
        {
            int e = RunOf(s, o, Other);
            while (e < s.Length && s[e] is '\r' or '\n' or '/') e++;
            return e;
        }
        return Whitespace(s, i, true);
    }

    /// <summary>U*W+ from p: the end, or -1.</summary>
    private static int Alt1(ReadOnlySpan<char> s, int p)
    {
        int e = p, lastLowerEnd = -1;
        while (e < s.Length)
        {
            byte k = Class(s, e, out int l);
            if ((k & Upper) == 0) break;
            e += l;
            if ((k & Lower) != 0) lastLowerEnd = e;
        }
        if ((ClassAt(s, e) & Lower) != 0) return RunOf(s, e, Lower);
        return lastLowerEnd;
    }

    /// <summary>U+W* from p: the end, or -1.</summary>
    private static int Alt2(ReadOnlySpan<char> s, int p)
    {
        int e = RunOf(s, p, Upper);
        return e > p ? RunOf(s, e, Lower) : -1;
    }

    private static byte ClassOf(UnicodeCategory cat, bool newline)
    {
        byte k = cat switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.TitlecaseLetter => Letter | Upper,
            UnicodeCategory.LowercaseLetter => Letter | Lower,
            UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => Letter | Upper | Lower,
            UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark => Upper | Lower | Other,
            UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => Number,
            UnicodeCategory.SpaceSeparator or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator => Space,
            _ => Other,
        };
        if (newline) k |= Newline;
        return k;
    }

    private static byte[] BuildTable()
    {
        var t = new byte[65536];
        for (int c = 0; c < 65536; c++)
        {
            t[c] = c is >= 0xD800 and <= 0xDFFF ? Other : ClassOf(CharUnicodeInfo.GetUnicodeCategory((char)c), c is '\r' or '\n');
        }
        foreach (char w in "\t\n\v\f\r\u0085") t[w] = (byte)(Space | (w is '\r' or '\n' ? Newline : 0));
        return t;
    }
}
