// Elementwise helpers for residual adds and gradient plumbing: add, add in place, scale, row-broadcast bias add,
// the bias gradient (sum over rows) and the sum of squares for global gradient-norm clipping.
// Large inputs are split across threads in fixed blocks (elements, rows or column blocks) whose reduction order
// does not depend on the thread count, so every result is reproducible.
// Does not handle: broadcasting beyond "bias over rows", or types other than float.
// Glossary: L elements, N rows, C columns.
using System.Runtime.Intrinsics;

namespace Quill.Kernels;

/// <summary>Elementwise adds, scaling, bias broadcast and reductions on float spans.</summary>
public static unsafe class Elementwise
{
    /// <summary>Elements per partial sum in SumOfSquares (a multiple of every vector width).</summary>
    private const int SquaresBlock = 64 * 1024;

    /// <summary>y = a + b.</summary>
    public static void Add(
        ReadOnlySpan<float> a,  // [L]
        ReadOnlySpan<float> b,  // [L]
        Span<float> y)          // [L]
    {
        ElementwiseMath.RequireLength(b.Length, a.Length, nameof(b));
        ElementwiseMath.RequireLength(y.Length, a.Length, nameof(y));
        int len = a.Length;
        if (len == 0) return;
        fixed (float* pa0 = a, pb0 = b, py0 = y)
        {
            float* pa = pa0, pb = pb0, py = py0;
            int blocks = ElementwiseMath.Blocks(len);
            if (!ElementwiseMath.ShouldSplit(blocks, ElementwiseMath.Block)) AddRange(pa, pb, py, 0, len);
            else KernelThreads.ParallelFor(blocks, ElementwiseMath.MinChunk(ElementwiseMath.Block), (b0, b1) =>
                AddRange(pa, pb, py, b0 * ElementwiseMath.Block, Math.Min(len, b1 * ElementwiseMath.Block)));
        }
    }

    /// <summary>y += x.</summary>
    public static void AddInPlace(
        Span<float> y,          // [L]
        ReadOnlySpan<float> x)  // [L]
    {
        ElementwiseMath.RequireLength(y.Length, x.Length, nameof(y));
        int len = x.Length;
        if (len == 0) return;
        fixed (float* py0 = y, px0 = x)
        {
            float* py = py0, px = px0;
            int blocks = ElementwiseMath.Blocks(len);
            if (!ElementwiseMath.ShouldSplit(blocks, ElementwiseMath.Block)) ElementwiseMath.AddInto(py, px, len);
            else KernelThreads.ParallelFor(blocks, ElementwiseMath.MinChunk(ElementwiseMath.Block), (b0, b1) =>
            {
                int i0 = b0 * ElementwiseMath.Block;
                ElementwiseMath.AddInto(py + i0, px + i0, Math.Min(len, b1 * ElementwiseMath.Block) - i0);
            });
        }
    }

    /// <summary>y *= s.</summary>
    public static void Scale(
        Span<float> y,  // [L]
        float s)
    {
        int len = y.Length;
        if (len == 0) return;
        fixed (float* py0 = y)
        {
            float* py = py0;
            int blocks = ElementwiseMath.Blocks(len);
            if (!ElementwiseMath.ShouldSplit(blocks, ElementwiseMath.Block)) ElementwiseMath.ScaleInPlace(py, s, len);
            else KernelThreads.ParallelFor(blocks, ElementwiseMath.MinChunk(ElementwiseMath.Block), (b0, b1) =>
            {
                int i0 = b0 * ElementwiseMath.Block;
                ElementwiseMath.ScaleInPlace(py + i0, s, Math.Min(len, b1 * ElementwiseMath.Block) - i0);
            });
        }
    }

    /// <summary>y[r, :] += bias for every row r.</summary>
    public static void AddBiasRows(
        Span<float> y,             // [N, C]
        ReadOnlySpan<float> bias,  // [C]
        int n, int c)
    {
        ElementwiseMath.RequireNonNegative(n, nameof(n));
        ElementwiseMath.RequireNonNegative(c, nameof(c));
        ElementwiseMath.RequireLength(y.Length, (long)n * c, nameof(y));
        ElementwiseMath.RequireLength(bias.Length, c, nameof(bias));
        if (n == 0 || c == 0) return;
        fixed (float* py0 = y, pb0 = bias)
        {
            float* py = py0, pb = pb0;
            if (!ElementwiseMath.ShouldSplit(n, c)) BiasRows(py, pb, c, 0, n);
            else KernelThreads.ParallelFor(n, ElementwiseMath.MinChunk(c), (r0, r1) => BiasRows(py, pb, c, r0, r1));
        }
    }

    /// <summary>dbias[j] += sum over rows of dy[r, j] (the bias gradient), summed in row order.</summary>
    public static void SumRows(
        ReadOnlySpan<float> dy,  // [N, C]
        Span<float> dbias,       // [C] +=
        int n, int c)
    {
        ElementwiseMath.RequireNonNegative(n, nameof(n));
        ElementwiseMath.RequireNonNegative(c, nameof(c));
        ElementwiseMath.RequireLength(dy.Length, (long)n * c, nameof(dy));
        ElementwiseMath.RequireLength(dbias.Length, c, nameof(dbias));
        if (n == 0 || c == 0) return;
        fixed (float* pdy0 = dy, pdb0 = dbias)
        {
            float* pdy = pdy0, pdb = pdb0;
            int blocks = (c + LayerNorm.ColumnBlock - 1) / LayerNorm.ColumnBlock;
            long perBlock = (long)n * LayerNorm.ColumnBlock;
            if (!ElementwiseMath.ShouldSplit(blocks, perBlock)) SumColumns(pdy, pdb, n, c, 0, blocks);
            else KernelThreads.ParallelFor(blocks, ElementwiseMath.MinChunk(perBlock), (b0, b1) => SumColumns(pdy, pdb, n, c, b0, b1));
        }
    }

    /// <summary>Sum of x[i]^2 accumulated in double, in fixed blocks combined in order (reproducible for any thread count).</summary>
    public static double SumOfSquares(ReadOnlySpan<float> x)  // [L]
    {
        int len = x.Length;
        if (len == 0) return 0;
        int blocks = (len + SquaresBlock - 1) / SquaresBlock;
        fixed (float* px0 = x)
        {
            float* px = px0;
            if (blocks == 1 || !ElementwiseMath.ShouldSplit(blocks, SquaresBlock))
            {
                double total = 0;
                for (int b = 0; b < blocks; b++) total += SquaresRange(px, b * SquaresBlock, Math.Min(len, (b + 1) * SquaresBlock));
                return total;
            }
            double[] partials = System.Buffers.ArrayPool<double>.Shared.Rent(blocks);
            try
            {
                KernelThreads.ParallelFor(blocks, 1, (b0, b1) =>
                {
                    for (int b = b0; b < b1; b++) partials[b] = SquaresRange(px, b * SquaresBlock, Math.Min(len, (b + 1) * SquaresBlock));
                });
                double total = 0;
                for (int b = 0; b < blocks; b++) total += partials[b];
                return total;
            }
            finally
            {
                System.Buffers.ArrayPool<double>.Shared.Return(partials);
            }
        }
    }

    private static void AddRange(float* a, float* b, float* y, int i0, int i1)
    {
        int i = i0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= i1 - 16; i += 16) (Vector512.Load(a + i) + Vector512.Load(b + i)).Store(y + i);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= i1 - 8; i += 8) (Vector256.Load(a + i) + Vector256.Load(b + i)).Store(y + i);
        }
        for (; i < i1; i++) y[i] = a[i] + b[i];
    }

    private static void BiasRows(float* y, float* bias, int c, int r0, int r1)
    {
        for (int r = r0; r < r1; r++) ElementwiseMath.AddInto(y + (long)r * c, bias, c);
    }

    private static void SumColumns(float* dy, float* dbias, int n, int c, int b0, int b1)
    {
        float* acc = stackalloc float[LayerNorm.ColumnBlock];
        for (int blk = b0; blk < b1; blk++)
        {
            int j0 = blk * LayerNorm.ColumnBlock;
            int w = Math.Min(LayerNorm.ColumnBlock, c - j0);
            new Span<float>(acc, w).Clear();
            for (int r = 0; r < n; r++) ElementwiseMath.AddInto(acc, dy + (long)r * c + j0, w);
            ElementwiseMath.AddInto(dbias + j0, acc, w);
        }
    }

    private static double SquaresRange(float* x, int i0, int i1)
    {
        int i = i0;
        double s = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var a0 = Vector512<double>.Zero;
            var a1 = Vector512<double>.Zero;
            for (; i <= i1 - 16; i += 16)
            {
                var (lo, hi) = Vector512.Widen(Vector512.Load(x + i));
                a0 = Vector512.FusedMultiplyAdd(lo, lo, a0);
                a1 = Vector512.FusedMultiplyAdd(hi, hi, a1);
            }
            s = Vector512.Sum(a0 + a1);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var a0 = Vector256<double>.Zero;
            var a1 = Vector256<double>.Zero;
            for (; i <= i1 - 8; i += 8)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Load(x + i));
                a0 = Vector256.FusedMultiplyAdd(lo, lo, a0);
                a1 = Vector256.FusedMultiplyAdd(hi, hi, a1);
            }
            s = Vector256.Sum(a0 + a1);
        }
        for (; i < i1; i++) s += (double)x[i] * x[i];
        return s;
    }
}
