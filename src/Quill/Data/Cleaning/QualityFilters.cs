// Document quality filters after Gopher (Rae et al. 2021, appendix A) and C4 (Raffel et al. 2020):
// length in words, mean word length, symbol-to-word ratio, bullet and ellipsis lines, words with letters, stop
// words, lines ending in punctuation, lorem ipsum, curly braces, and the repetition rules (duplicate lines and
// paragraphs by count and by characters, most frequent 2/3/4-gram, characters in duplicated 5..10-grams).
// Check returns the name of the first filter a document fails, or null. Words are whitespace-separated tokens.
// One instance per thread: it keeps scratch buffers between documents.
// Does not handle: language identification, perplexity or classifier-based filtering, bad-word lists.
namespace Quill.Data.Cleaning;

/// <summary>Gopher / C4 quality rules; Check gives the first failing filter's name or null.</summary>
public sealed class QualityFilters
{
    /// <summary>Every filter name this class can return, in the order they are checked.</summary>
    public static readonly IReadOnlyList<string> FilterNames =
    [
        "too_short", "too_long", "mean_word_length", "symbol_ratio", "bullet_lines", "ellipsis_lines", "alpha_words",
        "stop_words", "line_punctuation", "lorem_ipsum", "curly_brace", "duplicate_lines", "duplicate_paragraphs",
        "duplicate_line_chars", "duplicate_paragraph_chars", "top_ngram", "duplicate_ngram",
    ];

    private readonly QualityConfig cfg;
    private readonly HashSet<string> disabled;
    private readonly NgramTable table = new();
    private readonly HashSet<ulong> seenLines = [];
    private readonly List<(int Start, int Length, ulong Hash)> words = [];
    private byte[] dupMarks = new byte[256];
    private int[] charPrefix = new int[256];

    public QualityFilters(QualityConfig config)
    {
        cfg = config ?? throw new ArgumentNullException(nameof(config));
        disabled = new HashSet<string>(config.Disable, StringComparer.Ordinal);
    }

    private bool On(string name) => !disabled.Contains(name);

    /// <summary>The first filter <paramref name="text"/> fails, or null when it passes them all.</summary>
    public string? Check(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (!cfg.Enabled) return null;
        Tokenize(text);
        int n = words.Count;
        if (cfg.MinWords is int minW && On("too_short") && n < minW) return "too_short";
        if (cfg.MaxWords is int maxW && On("too_long") && n > maxW) return "too_long";
        if (n == 0) return null;

        long wordChars = 0;
        int alphaWords = 0, stopMask = 0, symbols = 0;
        foreach (var (start, length, _) in words)
        {
            wordChars += length;
            ReadOnlySpan<char> w = text.AsSpan(start, length);
            if (HasLetter(w)) alphaWords++;
            stopMask |= StopWordBit(w);
            symbols += w.Count('#') + w.Count('\u2026');
            symbols += CountEllipses(w);
        }
        double mean = (double)wordChars / n;
        if (On("mean_word_length") && ((cfg.MinMeanWordLength is double lo && mean < lo) || (cfg.MaxMeanWordLength is double hi && mean > hi)))
        {
            return "mean_word_length";
        }
        if (cfg.MaxSymbolWordRatio is double sym && On("symbol_ratio") && (double)symbols / n > sym) return "symbol_ratio";

        int lines = 0, bullets = 0, ellipsisLines = 0, punctLines = 0;
        foreach (Range r in text.AsSpan().Split('\n'))
        {
            ReadOnlySpan<char> line = text.AsSpan(r).Trim();
            if (line.IsEmpty) continue;
            lines++;
            if (IsBullet(line[0])) bullets++;
            if (line.EndsWith("...", StringComparison.Ordinal) || line[^1] == '\u2026') ellipsisLines++;
            if (IsTerminalPunctuation(line[^1])) punctLines++;
        }
        if (lines > 0)
        {
            if (cfg.MaxBulletLinesFraction is double b && On("bullet_lines") && (double)bullets / lines > b) return "bullet_lines";
            if (cfg.MaxEllipsisLinesFraction is double e && On("ellipsis_lines") && (double)ellipsisLines / lines > e) return "ellipsis_lines";
        }
        if (cfg.MinAlphaWordsFraction is double a && On("alpha_words") && (double)alphaWords / n < a) return "alpha_words";
        if (cfg.MinStopWords is int sw && On("stop_words") && System.Numerics.BitOperations.PopCount((uint)stopMask) < sw) return "stop_words";
        if (cfg.MinLinePunctuationFraction is double lp && On("line_punctuation") && lines > 0 && (double)punctLines / lines < lp) return "line_punctuation";
        if (cfg.LoremIpsum && On("lorem_ipsum") && text.Contains("lorem ipsum", StringComparison.OrdinalIgnoreCase)) return "lorem_ipsum";
        if (cfg.CurlyBrace && On("curly_brace") && text.Contains('{', StringComparison.Ordinal)) return "curly_brace";

        string? rep = CheckLineRepetition(text);
        if (rep != null) return rep;
        return CheckNgrams(text, wordChars);
    }

    private string? CheckLineRepetition(string text)
    {
        // Lines.
        seenLines.Clear();
        int lines = 0, dupLines = 0;
        long dupLineChars = 0;
        foreach (Range r in text.AsSpan().Split('\n'))
        {
            ReadOnlySpan<char> line = text.AsSpan(r).Trim();
            if (line.IsEmpty) continue;
            lines++;
            if (!seenLines.Add(Hash(line)))
            {
                dupLines++;
                dupLineChars += line.Length;
            }
        }
        if (lines > 0)
        {
            if (cfg.MaxDuplicateLinesFraction is double f && On("duplicate_lines") && (double)dupLines / lines > f) return "duplicate_lines";
        }

        // Paragraphs: runs of non-blank lines separated by blank lines.
        seenLines.Clear();
        int paras = 0, dupParas = 0;
        long dupParaChars = 0;
        int pos = 0;
        while (pos < text.Length)
        {
            int end = text.IndexOf("\n\n", pos, StringComparison.Ordinal);
            if (end < 0) end = text.Length;
            ReadOnlySpan<char> para = text.AsSpan(pos, end - pos).Trim();
            if (!para.IsEmpty)
            {
                paras++;
                if (!seenLines.Add(Hash(para)))
                {
                    dupParas++;
                    dupParaChars += para.Length;
                }
            }
            pos = end + 2;
        }
        if (paras > 0 && cfg.MaxDuplicateParagraphsFraction is double pf && On("duplicate_paragraphs") && (double)dupParas / paras > pf)
        {
            return "duplicate_paragraphs";
        }
        double total = Math.Max(1, text.Length);
        if (cfg.MaxDuplicateLineCharsFraction is double lc && On("duplicate_line_chars") && dupLineChars / total > lc) return "duplicate_line_chars";
        if (cfg.MaxDuplicateParagraphCharsFraction is double pc && On("duplicate_paragraph_chars") && dupParaChars / total > pc) return "duplicate_paragraph_chars";
        return null;
    }

    private string? CheckNgrams(string text, long wordChars)
    {
        List<double>? top = On("top_ngram") ? cfg.MaxTopNgramCharsFraction : null;
        List<double>? dup = On("duplicate_ngram") ? cfg.MaxDuplicateNgramCharsFraction : null;
        int maxTop = top == null ? 0 : Math.Min(top.Count, 3) + 1;       // n = 2..maxTop
        int maxDup = dup == null ? 0 : Math.Min(dup.Count, 6) + 4;       // n = 5..maxDup
        int maxN = Math.Max(maxTop, maxDup);
        int n = words.Count;
        if (maxN < 2 || n < 2 || wordChars == 0) return null;

        if (charPrefix.Length < n + 1) charPrefix = new int[Math.Max(n + 1, charPrefix.Length * 2)];
        if (dupMarks.Length < n) dupMarks = new byte[Math.Max(n, dupMarks.Length * 2)];
        charPrefix[0] = 0;
        for (int i = 0; i < n; i++) charPrefix[i + 1] = charPrefix[i] + words[i].Length;
        Array.Clear(dupMarks, 0, n);
        table.Reset(n * (maxN - 1));

        Span<int> bestCount = stackalloc int[11];
        Span<int> bestChars = stackalloc int[11];
        bestCount.Clear();
        bestChars.Clear();
        for (int i = 0; i < n; i++)
        {
            ulong h = words[i].Hash;
            for (int len = 2; len <= maxN && i + len <= n; len++)
            {
                h = (h ^ words[i + len - 1].Hash) * 0x9E3779B97F4A7C15UL + (ulong)len;
                h ^= h >> 29;
                int count = table.Increment(h);
                if (len <= maxTop && count > bestCount[len])
                {
                    bestCount[len] = count;
                    bestChars[len] = charPrefix[i + len] - charPrefix[i];
                }
                if (len >= 5 && len <= maxDup && count >= 2)
                {
                    byte bit = (byte)(1 << (len - 5));
                    for (int k = i; k < i + len; k++) dupMarks[k] |= bit;
                }
            }
        }
        for (int len = 2; len <= maxTop; len++)
        {
            if (bestCount[len] >= 2 && (double)bestCount[len] * bestChars[len] / wordChars > top![len - 2]) return "top_ngram";
        }
        for (int len = 5; len <= maxDup; len++)
        {
            byte bit = (byte)(1 << (len - 5));
            long dupChars = 0;
            for (int k = 0; k < n; k++)
            {
                if ((dupMarks[k] & bit) != 0) dupChars += words[k].Length;
            }
            if ((double)dupChars / wordChars > dup![len - 5]) return "duplicate_ngram";
        }
        return null;
    }

    private void Tokenize(string text)
    {
        words.Clear();
        int i = 0;
        while (i < text.Length)
        {
            while (i < text.Length && char.IsWhiteSpace(text[i])) i++;
            if (i >= text.Length) break;
            int start = i;
            ulong h = 0xCBF29CE484222325UL;
            while (i < text.Length && !char.IsWhiteSpace(text[i]))
            {
                h = (h ^ text[i]) * 0x100000001B3UL;
                i++;
            }
            words.Add((start, i - start, h));
        }
    }

    /// <summary>FNV-1a over UTF-16 code units.</summary>
    internal static ulong Hash(ReadOnlySpan<char> s)
    {
        ulong h = 0xCBF29CE484222325UL;
        foreach (char c in s) h = (h ^ c) * 0x100000001B3UL;
        return h;
    }

    private static bool HasLetter(ReadOnlySpan<char> w)
    {
        foreach (char c in w)
        {
            if (char.IsLetter(c)) return true;
        }
        return false;
    }

    private static int CountEllipses(ReadOnlySpan<char> w)
    {
        int count = 0;
        for (int k = w.IndexOf("..."); k >= 0; k = w.IndexOf("..."))
        {
            count++;
            w = w[(k + 3)..];
        }
        return count;
    }

    // The Gopher stop words: the, be, to, of, and, that, have, with (one bit each).
    private static int StopWordBit(ReadOnlySpan<char> w)
    {
        w = w.Trim(".,;:!?\"'()[]“”‘’");
        if (w.Length < 2 || w.Length > 4) return 0;
        if (w.Equals("the", StringComparison.OrdinalIgnoreCase)) return 1;
        if (w.Equals("be", StringComparison.OrdinalIgnoreCase)) return 2;
        if (w.Equals("to", StringComparison.OrdinalIgnoreCase)) return 4;
        if (w.Equals("of", StringComparison.OrdinalIgnoreCase)) return 8;
        if (w.Equals("and", StringComparison.OrdinalIgnoreCase)) return 16;
        if (w.Equals("that", StringComparison.OrdinalIgnoreCase)) return 32;
        if (w.Equals("have", StringComparison.OrdinalIgnoreCase)) return 64;
        if (w.Equals("with", StringComparison.OrdinalIgnoreCase)) return 128;
        return 0;
    }

    private static bool IsBullet(char c) => c is '•' or '‣' or '⁃' or '◦' or '●' or '▪' or '-' or '*' or '–';

    private static bool IsTerminalPunctuation(char c) => c is '.' or '!' or '?' or '"' or '\'' or '”' or '’' or '…';

    // Counts of 64-bit keys in open addressing, cleared in O(1) by bumping a generation stamp.
    private sealed class NgramTable
    {
        private ulong[] keys = new ulong[1024];
        private int[] counts = new int[1024];
        private int[] stamps = new int[1024];
        private int stamp;
        private int mask = 1023;

        public void Reset(int expected)
        {
            int cap = keys.Length;
            while (cap < expected * 2) cap *= 2;
            if (cap != keys.Length)
            {
                keys = new ulong[cap];
                counts = new int[cap];
                stamps = new int[cap];
                stamp = 0;
                mask = cap - 1;
            }
            stamp++;
            if (stamp == int.MaxValue)
            {
                Array.Clear(stamps);
                stamp = 1;
            }
        }

        public int Increment(ulong key)
        {
            int slot = (int)((key * 0x9E3779B97F4A7C15UL) >> 33) & mask;
            while (true)
            {
                if (stamps[slot] != stamp)
                {
                    stamps[slot] = stamp;
                    keys[slot] = key;
                    counts[slot] = 1;
                    return 1;
                }
                if (keys[slot] == key) return ++counts[slot];
                slot = (slot + 1) & mask;
            }
        }
    }
}
