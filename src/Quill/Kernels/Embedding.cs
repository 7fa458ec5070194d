// Token embedding lookup, forward and backward side by side: y[i, :] = table[tokens[i], :];
// dtable[tokens[i], :] += dy[i, :]. The backward splits the columns (not the tokens) across threads and adds the
// rows in token order, so repeated tokens never race and the result does not depend on the thread count.
// Does not handle: padding_idx, max_norm, or sparse gradients.
// Glossary: N tokens, V vocabulary size, C embedding width.
namespace Quill.Kernels;

/// <summary>Embedding lookup (gather) and its gradient (deterministic scatter-add).</summary>
public static unsafe class Embedding
{
    /// <summary>Columns per block in the backward's scatter-add.</summary>
    private const int ColumnBlock = 256;

    /// <summary>Copies row tokens[i] of the table into row i of y.</summary>
    public static void Forward(
        ReadOnlySpan<int> tokens,   // [N]
        ReadOnlySpan<float> table,  // [V, C]
        Span<float> y,              // [N, C]
        int c)
    {
        int n = tokens.Length;
        CheckShapes(tokens, table.Length, c);
        ElementwiseMath.RequireLength(y.Length, (long)n * c, nameof(y));
        if (n == 0 || c == 0) return;
        fixed (int* pt0 = tokens)
        fixed (float* pe0 = table, py0 = y)
        {
            int* pt = pt0;
            float* pe = pe0, py = py0;
            if (!ElementwiseMath.ShouldSplit(n, c)) GatherRows(pt, pe, py, c, 0, n);
            else KernelThreads.ParallelFor(n, ElementwiseMath.MinChunk(c), (r0, r1) => GatherRows(pt, pe, py, c, r0, r1));
        }
    }

    /// <summary>Adds row i of dy into row tokens[i] of dtable, in token order.</summary>
    public static void Backward(
        ReadOnlySpan<int> tokens,  // [N]
        ReadOnlySpan<float> dy,    // [N, C]
        Span<float> dtable,        // [V, C] +=
        int c)
    {
        int n = tokens.Length;
        CheckShapes(tokens, dtable.Length, c);
        ElementwiseMath.RequireLength(dy.Length, (long)n * c, nameof(dy));
        if (n == 0 || c == 0) return;
        fixed (int* pt0 = tokens)
        fixed (float* pdy0 = dy, pd0 = dtable)
        {
            int* pt = pt0;
            float* pdy = pdy0, pd = pd0;
            int blocks = (c + ColumnBlock - 1) / ColumnBlock;
            long perBlock = (long)n * ColumnBlock;
            if (!ElementwiseMath.ShouldSplit(blocks, perBlock)) ScatterColumns(pt, pdy, pd, n, c, 0, blocks);
            else KernelThreads.ParallelFor(blocks, ElementwiseMath.MinChunk(perBlock), (b0, b1) => ScatterColumns(pt, pdy, pd, n, c, b0, b1));
        }
    }

    /// <summary>Validates the ids against the vocabulary (table rows) and returns V.</summary>
    internal static int CheckShapes(ReadOnlySpan<int> tokens, int tableLength, int c)
    {
        if (c <= 0) throw new ArgumentOutOfRangeException(nameof(c), c, "The embedding width must be positive.");
        int v = tableLength / c;
        for (int i = 0; i < tokens.Length; i++)
        {
            int id = tokens[i];
            if ((uint)id >= (uint)v)
            {
                throw new QuillException(
                    $"Token id {id} at position {i} is outside the embedding table of {v} tokens; " +
                    "the input was tokenized with a different vocabulary than the model's vocab_size (retokenize or use the matching tokenizer).");
            }
        }
        return v;
    }

    private static void GatherRows(int* tokens, float* table, float* y, int c, int r0, int r1)
    {
        for (int r = r0; r < r1; r++)
            new ReadOnlySpan<float>(table + (long)tokens[r] * c, c).CopyTo(new Span<float>(y + (long)r * c, c));
    }

    private static void ScatterColumns(int* tokens, float* dy, float* dtable, int n, int c, int b0, int b1)
    {
        int j0 = b0 * ColumnBlock;
        int w = Math.Min(b1 * ColumnBlock, c) - j0;
        for (int i = 0; i < n; i++)
            ElementwiseMath.AddInto(KernelWidth.Auto, dtable + (long)tokens[i] * c + j0, dy + (long)i * c + j0, w);
    }
}
