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
    private ulong[] chain5 = new ulong[256];

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
        int alphaWords = 0, stopMask = 0;
        foreach (var (start, length, _) in words)
        {
            wordChars += length;
            ReadOnlySpan<char> w = text.AsSpan(start, length);
            if (HasLetter(w)) alphaWords++;
            if (length <= 7) stopMask |= StopWordBit(w);
        }
        int symbols = text.AsSpan().Count('#') + text.AsSpan().Count('\u2026') + CountEllipses(text);
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
        if (chain5.Length < n) chain5 = new ulong[Math.Max(n, chain5.Length * 2)];
        charPrefix[0] = 0;
        for (int i = 0; i < n; i++) charPrefix[i + 1] = charPrefix[i] + words[i].Length;
        Array.Clear(dupMarks, 0, n);
        table.Reset(n * 6);

        Span<int> bestCount = stackalloc int[11];
        Span<int> bestChars = stackalloc int[11];
        bestCount.Clear();
        bestChars.Clear();
        // Pass 1: every 2..5-gram (2..4 for the top n-gram rule, 5 to find where longer repeats can be).
        int firstLen = maxTop >= 2 ? 2 : 5;
        int pass1Max = Math.Max(maxTop, maxDup >= 5 ? 5 : 0);
        for (int i = 0; i < n; i++)
        {
            ulong h = words[i].Hash;
            for (int len = 2; len <= pass1Max && i + len <= n; len++)
            {
                h = NgramStep(h, words[i + len - 1].Hash, len);
                if (len < firstLen) continue;
                int count = table.Increment(h);
                if (len <= maxTop && count > bestCount[len])
                {
                    bestCount[len] = count;
                    bestChars[len] = charPrefix[i + len] - charPrefix[i];
                }
                if (len == 5)
                {
                    chain5[i] = h;
                    if (count >= 2) Mark(i, 5);
                }
            }
        }
        // Pass 2: a 6..10-gram can only repeat where its 5-gram repeats, so only those positions are hashed.
        if (maxDup >= 6)
        {
            for (int i = 0; i + 6 <= n; i++)
            {
                if (table.Get(chain5[i]) < 2) continue;
                ulong h = chain5[i];
                for (int len = 6; len <= maxDup && i + len <= n; len++)
                {
                    h = NgramStep(h, words[i + len - 1].Hash, len);
                    if (table.Increment(h) >= 2) Mark(i, len);
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

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static ulong NgramStep(ulong h, ulong word, int len)
    {
        h = (h ^ word) * 0x9E3779B97F4A7C15UL + (ulong)len;
        return h ^ (h >> 29);
    }

    private void Mark(int start, int len)
    {
        byte bit = (byte)(1 << (len - 5));
        for (int k = start; k < start + len; k++) dupMarks[k] |= bit;
    }

    private void Tokenize(string text)
    {
        words.Clear();
        int i = 0;
        while (i < text.Length)
        {
            while (i < text.Length && IsWhiteSpace(text[i])) i++;
            if (i >= text.Length) break;
            int start = i;
            while (i < text.Length && !IsWhiteSpace(text[i])) i++;
            words.Add((start, i - start, Hash(text.AsSpan(start, i - start))));
        }
    }

    /// <summary>char.IsWhiteSpace with an ASCII fast path.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    internal static bool IsWhiteSpace(char c) => c <= ' ' ? c == ' ' || (c >= '\t' && c <= '\r') : c > '\u007F' && char.IsWhiteSpace(c);

    /// <summary>A fast 64-bit hash of UTF-16 text, eight bytes per step (deterministic across runs and machines).</summary>
    internal static ulong Hash(ReadOnlySpan<char> s)
    {
        ReadOnlySpan<byte> bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(s);
        ulong h = 0x9E3779B97F4A7C15UL ^ (ulong)bytes.Length;
        int i = 0;
        for (; i + 8 <= bytes.Length; i += 8)
        {
            h = (h ^ System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(bytes[i..])) * 0xFF51AFD7ED558CCDUL;
            h ^= h >> 32;
        }
        ulong tail = 0;
        for (int k = 0; i < bytes.Length; i++, k += 8) tail |= (ulong)bytes[i] << k;
        h = (h ^ tail) * 0xC4CEB9FE1A85EC53UL;
        return h ^ (h >> 29);
    }

    private static bool HasLetter(ReadOnlySpan<char> w)
    {
        foreach (char c in w)
        {
            if (char.IsAsciiLetter(c) || (c > '\u007F' && char.IsLetter(c))) return true;
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

    // The Gopher stop words: the, be, to, of, and, that, have, with (one bit each), ignoring case and punctuation.
    private static int StopWordBit(ReadOnlySpan<char> w)
    {
        int a = 0, b = w.Length;
        while (a < b && IsPunct(w[a])) a++;
        while (b > a && IsPunct(w[b - 1])) b--;
        w = w[a..b];
        if (w.Length < 2 || w.Length > 4) return 0;
        return (w[0] | 0x20) switch
        {
            't' => w.Equals("the", StringComparison.OrdinalIgnoreCase) ? 1 : w.Equals("to", StringComparison.OrdinalIgnoreCase) ? 4
                : w.Equals("that", StringComparison.OrdinalIgnoreCase) ? 32 : 0,
            'b' => w.Equals("be", StringComparison.OrdinalIgnoreCase) ? 2 : 0,
            'o' => w.Equals("of", StringComparison.OrdinalIgnoreCase) ? 8 : 0,
            'a' => w.Equals("and", StringComparison.OrdinalIgnoreCase) ? 16 : 0,
            'h' => w.Equals("have", StringComparison.OrdinalIgnoreCase) ? 64 : 0,
            'w' => w.Equals("with", StringComparison.OrdinalIgnoreCase) ? 128 : 0,
            _ => 0,
        };
    }

    private static bool IsPunct(char c) => c is '.' or ',' or ';' or ':' or '!' or '?' or '"' or '\'' or '(' or ')' or '[' or ']' or '“' or '”' or '‘' or '’';

    private static bool IsBullet(char c) => c is '•' or '‣' or '⁃' or '◦' or '●' or '▪' or '-' or '*' or '–';

    private static bool IsTerminalPunctuation(char c) => c is '.' or '!' or '?' or '"' or '\'' or '”' or '’' or '…';

    // Counts of 64-bit keys in open addressing, cleared in O(1) by bumping a generation stamp. Key, count and stamp
    // share one 16-byte slot so a probe touches one cache line.
    private sealed class NgramTable
    {
        private struct Slot
        {
            public ulong Key;
            public int Count;
            public int Stamp;
        }

        private Slot[] slots = new Slot[1024];
        private int stamp;
        private int mask = 1023;

        public void Reset(int expected)
        {
            int cap = slots.Length;
            while (cap < expected * 2) cap *= 2;
            if (cap != slots.Length)
            {
                slots = new Slot[cap];
                stamp = 0;
                mask = cap - 1;
            }
            stamp++;
            if (stamp == int.MaxValue)
            {
                Array.Clear(slots);
                stamp = 1;
            }
        }

        public int Get(ulong key)
        {
            int i = (int)((key * 0x9E3779B97F4A7C15UL) >> 33) & mask;
            while (true)
            {
                ref Slot slot = ref slots[i];
                if (slot.Stamp != stamp) return 0;
                if (slot.Key == key) return slot.Count;
                i = (i + 1) & mask;
            }
        }

        public int Increment(ulong key)
        {
            int i = (int)((key * 0x9E3779B97F4A7C15UL) >> 33) & mask;
            while (true)
            {
                ref Slot slot = ref slots[i];
                if (slot.Stamp != stamp)
                {
                    slot.Stamp = stamp;
                    slot.Key = key;
                    slot.Count = 1;
                    return 1;
                }
                if (slot.Key == key) return ++slot.Count;
                i = (i + 1) & mask;
            }
        }
    }
}
