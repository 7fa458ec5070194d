// An importance matrix (llama.cpp's imatrix): for every matrix of a model (by its GGUF tensor name, e.g.
// blk.0.attn_q.weight), the sum over the tokens of a text of the squared input of each column and how many tokens
// were summed. Mean(name)[j] = sum_j / count is the mean squared activation that meets column j, the weight the
// importance-weighted quantizers (WeightedQuant) give column j's error. Reading and writing the files is
// Formats.ImatrixFile; collecting it from a model is Evaluation.ImatrixCollector.
// Does not handle: MoE expert tensors (one count per expert in llama.cpp; Quill runs no MoE models).
namespace Quill.Quantization;

/// <summary>Sums of squared activations per input column of each matrix, and token counts.</summary>
public sealed class ImportanceMatrix
{
    private readonly SortedDictionary<string, Entry> entries = new(StringComparer.Ordinal);

    /// <summary>One matrix's sums and count.</summary>
    /// <param name="Sums">Sum over tokens of x_j^2, one per input column.</param>
    /// <param name="Count">Tokens summed.</param>
    public sealed record Entry(float[] Sums, long Count);

    /// <summary>The texts it was computed on (imatrix.datasets).</summary>
    public List<string> Datasets { get; } = [];

    /// <summary>Chunks of text run (imatrix.chunk_count).</summary>
    public int ChunkCount { get; set; }

    /// <summary>Tokens per chunk (imatrix.chunk_size; 0 when unknown, as in a legacy .dat file).</summary>
    public int ChunkSize { get; set; }

    /// <summary>Entries by tensor name, in ordinal order.</summary>
    public IReadOnlyDictionary<string, Entry> Entries => entries;

    /// <summary>Sets the entry of <paramref name="name"/>.</summary>
    public void Set(string name, float[] sums, long count) => entries[name] = new Entry(sums, count);

    /// <summary>Adds <paramref name="count"/> rows of <paramref name="width"/> inputs to <paramref name="name"/>'s sums.</summary>
    public void Accumulate(string name, ReadOnlySpan<float> rows, int count, int width)
    {
        if (!entries.TryGetValue(name, out var e))
        {
            e = new Entry(new float[width], 0);
            entries[name] = e;
        }
        if (e.Sums.Length != width)
            throw new ArgumentException($"{name}: {width} inputs per row, the entry has {e.Sums.Length}.", nameof(width));
        var s = e.Sums;
        for (int r = 0; r < count; r++)
        {
            var x = rows.Slice(r * width, width);
            for (int j = 0; j < width; j++) s[j] += x[j] * x[j];
        }
        entries[name] = e with { Count = e.Count + count };
    }

    /// <summary>The mean squared activation per column of <paramref name="name"/>, or null when it has no entry or no tokens.</summary>
    public float[]? Mean(string name)
    {
        if (!entries.TryGetValue(name, out var e) || e.Count <= 0) return null;
        var m = new float[e.Sums.Length];
        for (int j = 0; j < m.Length; j++) m[j] = e.Sums[j] / e.Count;
        return m;
    }
}
