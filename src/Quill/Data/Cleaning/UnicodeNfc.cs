// Unicode NFC (canonical composition) written against tables generated from the Unicode database
// (UnicodeNfcTables.g.cs). Quill runs with InvariantGlobalization, where string.Normalize leaves text as it is,
// so the cleaner carries its own. Handles: full canonical decomposition, canonical ordering by combining class,
// canonical composition with the blocking rule, and Hangul syllables algorithmically.
// Does not handle: compatibility forms (NFKC/NFKD) or case folding.
using System.Text;

namespace Quill.Data.Cleaning;

/// <summary>Unicode Normalization Form C, independent of the ICU/globalization mode.</summary>
public static class UnicodeNfc
{
    private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
    private const int LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

    // BMP code units that may change under NFC or affect a neighbour: decomposable, combining, or a composition's
    // second half. A string with none of them (and no surrogate pair flagged likewise) is already NFC.
    private static readonly ulong[] BmpFlags = BuildFlags(out supplementaryFlagged);
    private static readonly HashSet<int> supplementaryFlagged;
    private static readonly Dictionary<long, int> Pairs = BuildPairs();

    /// <summary>The Unicode version the tables were generated from.</summary>
    public static string UnicodeVersion => UnicodeNfcTables.UnicodeVersion;

    /// <summary>True when <paramref name="text"/> certainly is NFC already (fast scan; false means "maybe not").</summary>
    public static bool IsQuickNfc(ReadOnlySpan<char> text)
    {
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c < 0x300) continue;
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                if (supplementaryFlagged.Contains(char.ConvertToUtf32(c, text[i + 1]))) return false;
                i++;
                continue;
            }
            if ((BmpFlags[c >> 6] & (1UL << (c & 63))) != 0) return false;
        }
        return true;
    }

    /// <summary>Returns the NFC form of <paramref name="text"/> (the same instance when nothing changes).</summary>
    public static string Normalize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (IsQuickNfc(text)) return text;

        // Decompose into code points.
        var cps = new List<int>(text.Length + 8);
        for (int i = 0; i < text.Length; i++)
        {
            int cp = text[i];
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                cp = char.ConvertToUtf32(text[i], text[i + 1]);
                i++;
            }
            Decompose(cp, cps);
        }
        CanonicalOrder(cps);
        Compose(cps);

        var sb = new StringBuilder(cps.Count + 4);
        foreach (int cp in cps)
        {
            if (cp < 0x10000) sb.Append((char)cp);
            else sb.Append(char.ConvertFromUtf32(cp));
        }
        string result = sb.ToString();
        return result == text ? text : result;
    }

    /// <summary>Canonical combining class of a code point (0 for starters).</summary>
    public static int CombiningClass(int cp)
    {
        int idx = Array.BinarySearch(UnicodeNfcTables.CccKeys, cp);
        return idx >= 0 ? UnicodeNfcTables.CccValues[idx] : 0;
    }

    private static void Decompose(int cp, List<int> output)
    {
        int s = cp - SBase;
        if (s >= 0 && s < SCount)
        {
            output.Add(LBase + s / NCount);
            output.Add(VBase + s % NCount / TCount);
            int t = s % TCount;
            if (t != 0) output.Add(TBase + t);
            return;
        }
        if (cp < 0xC0)
        {
            output.Add(cp);
            return;
        }
        int idx = Array.BinarySearch(UnicodeNfcTables.DecompKeys, cp);
        if (idx < 0)
        {
            output.Add(cp);
            return;
        }
        for (int k = UnicodeNfcTables.DecompOffsets[idx]; k < UnicodeNfcTables.DecompOffsets[idx + 1]; k++)
        {
            output.Add(UnicodeNfcTables.DecompData[k]);
        }
    }

    // Stable sort of each run of non-starters by combining class (runs are short: insertion sort).
    private static void CanonicalOrder(List<int> cps)
    {
        for (int i = 1; i < cps.Count; i++)
        {
            int c = CombiningClass(cps[i]);
            if (c == 0) continue;
            int j = i;
            while (j > 0)
            {
                int prev = CombiningClass(cps[j - 1]);
                if (prev <= c) break;
                (cps[j - 1], cps[j]) = (cps[j], cps[j - 1]);
                j--;
            }
        }
    }

    private static void Compose(List<int> cps)
    {
        if (cps.Count == 0) return;
        int starterPos = CombiningClass(cps[0]) == 0 ? 0 : -1;
        int lastClass = starterPos == 0 ? 0 : 256;
        int write = 1;
        for (int read = 1; read < cps.Count; read++)
        {
            int cp = cps[read];
            int cls = CombiningClass(cp);
            if (starterPos >= 0)
            {
                bool blocked = lastClass != 0 && lastClass >= cls;
                // A starter can only combine with the starter directly before it (lastClass == 0 and adjacent).
                if (!blocked && (cls != 0 || write == starterPos + 1) && TryCompose(cps[starterPos], cp, out int composite))
                {
                    cps[starterPos] = composite;
                    continue;
                }
            }
            if (cls == 0)
            {
                starterPos = write;
                lastClass = 0;
            }
            else
            {
                lastClass = cls;
            }
            cps[write++] = cp;
        }
        cps.RemoveRange(write, cps.Count - write);
    }

    private static bool TryCompose(int first, int second, out int composite)
    {
        int l = first - LBase, v = second - VBase;
        if (l >= 0 && l < LCount && v >= 0 && v < VCount)
        {
            composite = SBase + (l * VCount + v) * TCount;
            return true;
        }
        int s = first - SBase, t = second - TBase;
        if (s >= 0 && s < SCount && s % TCount == 0 && t > 0 && t < TCount)
        {
            composite = first + t;
            return true;
        }
        return Pairs.TryGetValue(((long)first << 21) | (uint)second, out composite);
    }

    private static Dictionary<long, int> BuildPairs()
    {
        var d = new Dictionary<long, int>(UnicodeNfcTables.PairKeys.Length);
        for (int i = 0; i < UnicodeNfcTables.PairKeys.Length; i++) d[UnicodeNfcTables.PairKeys[i]] = UnicodeNfcTables.PairValues[i];
        return d;
    }

    private static ulong[] BuildFlags(out HashSet<int> supplementary)
    {
        var flags = new ulong[1024];
        var supp = new HashSet<int>();
        void Flag(int cp)
        {
            if (cp < 0x10000) flags[cp >> 6] |= 1UL << (cp & 63);
            else supp.Add(cp);
        }
        foreach (int cp in UnicodeNfcTables.DecompKeys) Flag(cp);
        foreach (int cp in UnicodeNfcTables.CccKeys) Flag(cp);
        foreach (long key in UnicodeNfcTables.PairKeys) Flag((int)(key & 0x1FFFFF));
        // Hangul: a leading jamo or LV syllable only changes when a vowel or trailing jamo follows it.
        for (int cp = VBase; cp < VBase + VCount; cp++) Flag(cp);
        for (int cp = TBase + 1; cp < TBase + TCount; cp++) Flag(cp);
        supplementary = supp;
        return flags;
    }
}
