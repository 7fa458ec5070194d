// Byte-level BPE training. Distinct pre-token chunks are counted once (ChunkCounter, on all threads), then merges
// are learned over the chunk table: pair counts are kept incrementally (only the chunks holding the merged pair
// are revisited, found through a pair -> chunks index that is pruned lazily, and only the pairs touching a merge
// site change) and the next pair comes from a priority queue with lazy deletion (stale entries are skipped when
// popped). Ties between equal counts go to the lexicographically greatest pair of byte strings (left first), as in
// CS336's reference. Pairs never cross chunk edges. Ids: 0..255 bytes, then merges in order, then the special
// tokens. Not handled: merges across whitespace, dropout, a pre-existing vocabulary.
using System.Text;

namespace Quill.Tokenization;

/// <summary>Trains byte-level BPE tokenizers.</summary>
public static class BpeTrainer
{
    /// <summary>Trains on text files (streamed, never loaded whole).</summary>
    public static BpeTokenizer TrainFiles(IEnumerable<string> paths, BpeTrainerOptions options, IProgress<string>? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(paths);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var pre = PreTokenizerPatterns.Create(options.Pattern);
        var counter = new ChunkCounter(pre, options.SpecialTokens, options.Threads, options.BlockChars);
        foreach (string path in paths)
        {
            if (!File.Exists(path)) throw new InvalidFileException($"{path}: training file not found.");
            progress?.Report($"counting {path}");
            using var reader = new StreamReader(path, new UTF8Encoding(false, throwOnInvalidBytes: true), detectEncodingFromByteOrderMarks: true);
            try
            {
                counter.Add(reader, cancel);
            }
            catch (DecoderFallbackException ex)
            {
                throw new InvalidTokenInputException($"{path}: invalid UTF-8 in the training text (near byte {ex.Index}); convert it to UTF-8.", ex);
            }
        }
        return Learn(counter.Counts, pre, options, progress, cancel);
    }

    /// <summary>Trains on in-memory texts.</summary>
    public static BpeTokenizer Train(IEnumerable<string> texts, BpeTrainerOptions options, IProgress<string>? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var pre = PreTokenizerPatterns.Create(options.Pattern);
        var counter = new ChunkCounter(pre, options.SpecialTokens, options.Threads, options.BlockChars);
        foreach (string t in texts)
        {
            if (TokenizerBase.IndexOfInvalidUtf16(t) is int bad and >= 0)
                throw new InvalidTokenInputException($"training text holds a lone UTF-16 surrogate at index {bad}; pass valid Unicode text.");
            counter.Add(t);
        }
        return Learn(counter.Counts, pre, options, progress, cancel);
    }

    private static BpeTokenizer Learn(Dictionary<string, long> chunkCounts, PreTokenizer pre, BpeTrainerOptions options,
                                      IProgress<string>? progress, CancellationToken cancel)
    {
        int targetMerges = options.VocabSize - 256 - options.SpecialTokens.Count;
        var tokens = new List<byte[]>(options.VocabSize);
        for (int b = 0; b < 256; b++) tokens.Add([(byte)b]);

        // Chunks as symbol sequences, sorted for a deterministic layout.
        var keys = chunkCounts.Keys.ToArray();
        Array.Sort(keys, StringComparer.Ordinal);
        var words = new int[keys.Length][];
        var freq = new long[keys.Length];
        for (int w = 0; w < keys.Length; w++)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(keys[w]);
            words[w] = Array.ConvertAll(bytes, x => (int)x);
            freq[w] = chunkCounts[keys[w]];
        }
        progress?.Report($"{keys.Length} distinct chunks; learning {targetMerges} merges");

        var pairCount = new Dictionary<long, long>();
        var where = new Dictionary<long, HashSet<int>>();
        for (int w = 0; w < words.Length; w++)
        {
            int[] s = words[w];
            for (int i = 0; i + 1 < s.Length; i++)
            {
                long k = Key(s[i], s[i + 1]);
                pairCount[k] = pairCount.GetValueOrDefault(k) + freq[w];
                if (!where.TryGetValue(k, out var set)) where[k] = set = [];
                set.Add(w);
            }
        }
        var comparer = new PairOrder(tokens);
        var heap = new PriorityQueue<long, (long Count, long Pair)>(comparer);
        foreach (var (k, c) in pairCount) heap.Enqueue(k, (c, k));

        var merges = new List<(int, int)>(targetMerges);
        var touched = new Dictionary<long, long>();
        var mergedAt = new List<int>();
        while (merges.Count < targetMerges && heap.TryDequeue(out long best, out var pri))
        {
            cancel.ThrowIfCancellationRequested();
            if (!pairCount.TryGetValue(best, out long current) || current != pri.Count || current <= 0) continue; // stale
            if (current < options.MinFrequency) break;
            int a = (int)(best >> 32), b = (int)(best & 0xFFFFFFFF);
            int id = tokens.Count;
            tokens.Add([.. tokens[a], .. tokens[b]]);
            merges.Add((a, b));
            touched.Clear();
            foreach (int w in where[best])
            {
                int[] old = words[w];
                int[]? merged = MergeWord(old, a, b, id, mergedAt);
                if (merged == null) continue; // the word lost this pair to an earlier merge (index entries are lazy)
                long f = freq[w];
                // Only pairs that touch a merge site change: old pairs overlapping (i, i+1), new pairs touching id.
                int last = -1;
                foreach (int i in mergedAt)
                {
                    for (int j = Math.Max(i - 1, last + 1); j <= i + 1 && j + 1 < old.Length; j++)
                    {
                        Bump(Key(old[j], old[j + 1]), -f, w, touched, pairCount, where);
                        last = j;
                    }
                }
                for (int k = 0; k + 1 < merged.Length; k++)
                {
                    if (merged[k] == id || merged[k + 1] == id) Bump(Key(merged[k], merged[k + 1]), f, w, touched, pairCount, where);
                }
                words[w] = merged;
            }
            pairCount.Remove(best);
            where.Remove(best);
            foreach (var (k, _) in touched)
            {
                if (pairCount.TryGetValue(k, out long c) && c > 0) heap.Enqueue(k, (c, k));
                else pairCount.Remove(k);
            }
            if (progress != null && merges.Count % 1000 == 0) progress.Report($"{merges.Count}/{targetMerges} merges");
        }

        var specials = new Dictionary<string, int>(StringComparer.Ordinal);
        var allTokens = new List<byte[]?>(tokens);
        foreach (string s in options.SpecialTokens)
        {
            specials[s] = allTokens.Count;
            allTokens.Add(Encoding.UTF8.GetBytes(s));
        }
        var tok = BpeTokenizer.FromMerges(allTokens, merges, pre, specials);
        if (options.SpecialTokens.Count > 0) tok.EosId = specials[options.SpecialTokens[0]];
        return tok;
    }

    private static void Bump(long k, long delta, int w, Dictionary<long, long> touched, Dictionary<long, long> pairCount,
                             Dictionary<long, HashSet<int>> where)
    {
        pairCount[k] = pairCount.GetValueOrDefault(k) + delta;
        touched[k] = 0;
        if (delta > 0)
        {
            if (!where.TryGetValue(k, out var set)) where[k] = set = [];
            set.Add(w);
        }
    }

    /// <summary>The word with every (a, b) replaced by id, left to right; null when it holds no (a, b). at: old positions merged.</summary>
    private static int[]? MergeWord(int[] s, int a, int b, int id, List<int> at)
    {
        at.Clear();
        for (int i = 0; i + 1 < s.Length; i++)
        {
            if (s[i] == a && s[i + 1] == b)
            {
                at.Add(i);
                i++;
            }
        }
        if (at.Count == 0) return null;
        var r = new int[s.Length - at.Count];
        int o = 0, next = 0;
        for (int i = 0; i < s.Length; i++)
        {
            if (next < at.Count && at[next] == i)
            {
                r[o++] = id;
                i++;
                next++;
            }
            else
            {
                r[o++] = s[i];
            }
        }
        return r;
    }

    private static long Key(int a, int b) => ((long)a << 32) | (uint)b;

    /// <summary>Higher count first; on equal counts the lexicographically greater (left bytes, right bytes) first.</summary>
    private sealed class PairOrder(List<byte[]> tokens) : IComparer<(long Count, long Pair)>
    {
        public int Compare((long Count, long Pair) x, (long Count, long Pair) y)
        {
            if (x.Count != y.Count) return y.Count.CompareTo(x.Count);
            if (x.Pair == y.Pair) return 0;
            int c = tokens[(int)(y.Pair >> 32)].AsSpan().SequenceCompareTo(tokens[(int)(x.Pair >> 32)]);
            if (c != 0) return c;
            return tokens[(int)(y.Pair & 0xFFFFFFFF)].AsSpan().SequenceCompareTo(tokens[(int)(x.Pair & 0xFFFFFFFF)]);
        }
    }
}
