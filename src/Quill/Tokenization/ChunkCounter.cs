// Counting step of BPE training: streams text, splits it on special tokens, pre-tokenizes each piece and counts
// each distinct chunk (as UTF-8 bytes) with its frequency. Text is cut into blocks only after a '\n' that is
// between two non-whitespace characters, a boundary no standard pattern's chunk crosses, so block-wise counting
// equals whole-text counting. Blocks are counted on several threads into private tables, then merged; memory
// holds the chunk table plus one block per thread, never the whole corpus.
using System.Text;

namespace Quill.Tokenization;

/// <summary>Counts pre-tokenized chunks of a text stream.</summary>
internal sealed class ChunkCounter
{
    private readonly PreTokenizer pre;
    private readonly string[] specials;
    private readonly int threads;
    private readonly int blockChars;
    private readonly Dictionary<string, long> total = new(StringComparer.Ordinal);

    public ChunkCounter(PreTokenizer pre, IReadOnlyList<string> specials, int threads, int blockChars)
    {
        this.pre = pre;
        this.specials = specials.OrderByDescending(s => s.Length).ToArray();
        this.threads = threads;
        this.blockChars = blockChars;
    }

    /// <summary>Distinct chunks and their counts so far.</summary>
    public Dictionary<string, long> Counts => total;

    /// <summary>Reads a whole stream, counting its chunks.</summary>
    public void Add(TextReader reader, CancellationToken cancel)
    {
        var pending = new StringBuilder();
        var buffer = new char[blockChars];
        var batch = new List<string>();
        bool eof = false;
        while (!eof)
        {
            cancel.ThrowIfCancellationRequested();
            int read = reader.ReadBlock(buffer, 0, buffer.Length);
            if (read == 0) eof = true;
            pending.Append(buffer, 0, read);
            while (pending.Length >= blockChars || (eof && pending.Length > 0))
            {
                int cut = eof && pending.Length < blockChars ? pending.Length : SafeCut(pending, blockChars);
                if (cut <= 0)
                {
                    if (!eof) break;
                    cut = pending.Length;
                }
                batch.Add(pending.ToString(0, cut));
                pending.Remove(0, cut);
                if (batch.Count >= threads)
                {
                    CountBatch(batch);
                    batch.Clear();
                }
            }
            if (!eof && pending.Length > 8 * blockChars)
            {
                // No safe boundary for a long stretch (e.g. one huge line): cut anyway.
                batch.Add(pending.ToString());
                pending.Clear();
            }
        }
        if (batch.Count > 0) CountBatch(batch);
    }

    /// <summary>Counts one in-memory text.</summary>
    public void Add(string text)
    {
        using var reader = new StringReader(text);
        Add(reader, CancellationToken.None);
    }

    private void CountBatch(List<string> blocks)
    {
        var tables = new Dictionary<string, long>[blocks.Count];
        Parallel.For(0, blocks.Count, new ParallelOptions { MaxDegreeOfParallelism = threads }, i =>
        {
            var table = new Dictionary<string, long>(StringComparer.Ordinal);
            CountBlock(blocks[i], table);
            tables[i] = table;
        });
        foreach (var t in tables)
        {
            foreach (var (k, v) in t) total[k] = total.GetValueOrDefault(k) + v;
        }
    }

    private void CountBlock(string block, Dictionary<string, long> table)
    {
        var chunks = new List<(int Start, int Length)>();
        var lookup = table.GetAlternateLookup<ReadOnlySpan<char>>();
        int pos = 0;
        while (pos <= block.Length)
        {
            int next = block.Length, len = 0;
            foreach (string s in specials)
            {
                int i = block.IndexOf(s, pos, StringComparison.Ordinal);
                if (i >= 0 && i < next)
                {
                    next = i;
                    len = s.Length;
                }
            }
            if (next > pos)
            {
                chunks.Clear();
                string piece = block.Substring(pos, next - pos);
                pre.Split(piece, chunks);
                foreach (var (s, l) in chunks)
                {
                    ReadOnlySpan<char> key = piece.AsSpan(s, l);
                    lookup[key] = lookup.TryGetValue(key, out long c) ? c + 1 : 1;
                }
            }
            if (len == 0) break;
            pos = next + len;
        }
    }

    /// <summary>
    /// A cut position just after a lone '\n' between non-whitespace characters: the largest one ≤ limit, else the
    /// smallest one above it, else -1.
    /// </summary>
    private static int SafeCut(StringBuilder sb, int limit)
    {
        for (int i = Math.Min(limit, sb.Length - 1); i > 1; i--)
        {
            if (IsSafe(sb, i)) return i;
        }
        for (int i = limit + 1; i < sb.Length; i++)
        {
            if (IsSafe(sb, i)) return i;
        }
        return -1;
    }

    private static bool IsSafe(StringBuilder sb, int i) =>
        sb[i - 1] == '\n' && !char.IsWhiteSpace(sb[i - 2]) && !char.IsWhiteSpace(sb[i]) && !char.IsLowSurrogate(sb[i]);
}
