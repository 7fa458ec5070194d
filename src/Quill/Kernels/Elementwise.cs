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
        => Add(a, b, y, KernelWidth.Auto);

    /// <summary>Add at a chosen vector width (tests pin each one).</summary>
    internal static void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y, KernelWidth width)
    {
        var w = KernelWidths.Resolve(width);
        ElementwiseMath.RequireLength(b.Length, a.Length, nameof(b));
        ElementwiseMath.RequireLength(y.Length, a.Length, nameof(y));
        int len = a.Length;
        if (len == 0) return;
        fixed (float* pa0 = a, pb0 = b, py0 = y)
        {
            float* pa = pa0, pb = pb0, py = py0;
            int blocks = ElementwiseMath.Blocks(len);
            if (!ElementwiseMath.ShouldSplit(blocks, ElementwiseMath.Block)) AddRange(w, pa, pb, py, 0, len);
            else KernelThreads.ParallelFor(blocks, ElementwiseMath.MinChunk(ElementwiseMath.Block), (b0, b1) =>
                AddRange(w, pa, pb, py, b0 * ElementwiseMath.Block, Math.Min(len, b1 * ElementwiseMath.Block)));
        }
    }

    /// <summary>y += x.</summary>
    public static void AddInPlace(
        Span<float> y,          // [L]
        ReadOnlySpan<float> x)  // [L]
        => AddInPlace(y, x, KernelWidth.Auto);

    /// <summary>AddInPlace at a chosen vector width (tests pin each one).</summary>
    internal static void AddInPlace(Span<float> y, ReadOnlySpan<float> x, KernelWidth width)
    {
        var w = KernelWidths.Resolve(width);
        ElementwiseMath.RequireLength(y.Length, x.Length, nameof(y));
        int len = x.Length;
        if (len == 0) return;
        fixed (float* py0 = y, px0 = x)
        {
            float* py = py0, px = px0;
            int blocks = ElementwiseMath.Blocks(len);
            if (!ElementwiseMath.ShouldSplit(blocks, ElementwiseMath.Block)) ElementwiseMath.AddInto(w, py, px, len);
            else KernelThreads.ParallelFor(blocks, ElementwiseMath.MinChunk(ElementwiseMath.Block), (b0, b1) =>
            {
                int i0 = b0 * ElementwiseMath.Block;
                ElementwiseMath.AddInto(w, py + i0, px + i0, Math.Min(len, b1 * ElementwiseMath.Block) - i0);
            });
        }
    }

    /// <summary>y *= s.</summary>
    public static void Scale(
        Span<float> y,  // [L]
        float s)
        => Scale(y, s, KernelWidth.Auto);

    /// <summary>Scale at a chosen vector width (tests pin each one).</summary>
    internal static void Scale(Span<float> y, float s, KernelWidth width)
    {
        var w = KernelWidths.Resolve(width);
        int len = y.Length;
        if (len == 0) return;
        fixed (float* py0 = y)
        {
            float* py = py0;
            int blocks = ElementwiseMath.Blocks(len);
            if (!ElementwiseMath.ShouldSplit(blocks, ElementwiseMath.Block)) ScaleInPlace(w, py, s, len);
            else KernelThreads.ParallelFor(blocks, ElementwiseMath.MinChunk(ElementwiseMath.Block), (b0, b1) =>
            {
                int i0 = b0 * ElementwiseMath.Block;
                ScaleInPlace(w, py + i0, s, Math.Min(len, b1 * ElementwiseMath.Block) - i0);
            });
        }
    }

    /// <summary>y[r, :] += bias for every row r.</summary>
    public static void AddBiasRows(
        Span<float> y,             // [N, C]
        ReadOnlySpan<float> bias,  // [C]
        int n, int c)
        => AddBiasRows(y, bias, n, c, KernelWidth.Auto);

    /// <summary>AddBiasRows at a chosen vector width (tests pin each one).</summary>
    internal static void AddBiasRows(Span<float> y, ReadOnlySpan<float> bias, int n, int c, KernelWidth width)
    {
        var w = KernelWidths.Resolve(width);
        ElementwiseMath.RequireNonNegative(n, nameof(n));
        ElementwiseMath.RequireNonNegative(c, nameof(c));
        ElementwiseMath.RequireLength(y.Length, (long)n * c, nameof(y));
        ElementwiseMath.RequireLength(bias.Length, c, nameof(bias));
        if (n == 0 || c == 0) return;
        fixed (float* py0 = y, pb0 = bias)
        {
            float* py = py0, pb = pb0;
            if (!ElementwiseMath.ShouldSplit(n, c)) BiasRows(w, py, pb, c, 0, n);
            else KernelThreads.ParallelFor(n, ElementwiseMath.MinChunk(c), (r0, r1) => BiasRows(w, py, pb, c, r0, r1));
        }
    }

    /// <summary>dbias[j] += sum over rows of dy[r, j] (the bias gradient), summed in row order.</summary>
    public static void SumRows(
        ReadOnlySpan<float> dy,  // [N, C]
        Span<float> dbias,       // [C] +=
        int n, int c)
        => SumRows(dy, dbias, n, c, KernelWidth.Auto);

    /// <summary>SumRows at a chosen vector width (tests pin each one).</summary>
    internal static void SumRows(ReadOnlySpan<float> dy, Span<float> dbias, int n, int c, KernelWidth width)
    {
        var w = KernelWidths.Resolve(width);
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
            if (!ElementwiseMath.ShouldSplit(blocks, perBlock)) SumColumns(w, pdy, pdb, n, c, 0, blocks);
            else KernelThreads.ParallelFor(blocks, ElementwiseMath.MinChunk(perBlock), (b0, b1) => SumColumns(w, pdy, pdb, n, c, b0, b1));
        }
    }

    /// <summary>Sum of x[i]^2 accumulated in double, in fixed blocks combined in order (reproducible for any thread count).</summary>
    public static double SumOfSquares(ReadOnlySpan<float> x)  // [L]
        => SumOfSquares(x, KernelWidth.Auto);

    /// <summary>SumOfSquares at a chosen vector width (tests pin each one).</summary>
    internal static double SumOfSquares(ReadOnlySpan<float> x, KernelWidth width)
    {
        var w = KernelWidths.Resolve(width);
        int len = x.Length;
        if (len == 0) return 0;
        int blocks = (len + SquaresBlock - 1) / SquaresBlock;
        fixed (float* px0 = x)
        {
            float* px = px0;
            if (blocks == 1 || !ElementwiseMath.ShouldSplit(blocks, SquaresBlock))
            {
                double total = 0;
                for (int b = 0; b < blocks; b++) total += SquaresRange(w, px, b * SquaresBlock, Math.Min(len, (b + 1) * SquaresBlock));
                return total;
            }
            double[] partials = System.Buffers.ArrayPool<double>.Shared.Rent(blocks);
            try
            {
                KernelThreads.ParallelFor(blocks, 1, (b0, b1) =>
                {
                    for (int b = b0; b < b1; b++) partials[b] = SquaresRange(w, px, b * SquaresBlock, Math.Min(len, (b + 1) * SquaresBlock));
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

    private static void AddRange(KernelWidth w, float* a, float* b, float* y, int i0, int i1)
    {
        switch (w)
        {
            case KernelWidth.Vector512: AddRange<Vec512, Vector512<float>>(a, b, y, i0, i1); break;
            case KernelWidth.Vector256: AddRange<Vec256, Vector256<float>>(a, b, y, i0, i1); break;
            case KernelWidth.Vector128: AddRange<Vec128, Vector128<float>>(a, b, y, i0, i1); break;
            default: AddRange<VecScalar, float>(a, b, y, i0, i1); break;
        }
    }

    private static void AddRange<TOps, TV>(float* a, float* b, float* y, int i0, int i1) where TOps : IKernelVector<TV> where TV : struct
    {
        int i = i0, l = TOps.Lanes;
        for (; i <= i1 - l; i += l) TOps.Store(y + i, TOps.Add(TOps.Load(a + i), TOps.Load(b + i)));
        for (; i < i1; i++) y[i] = a[i] + b[i];
    }

    private static void ScaleInPlace(KernelWidth w, float* y, float s, int n)
    {
        switch (w)
        {
            case KernelWidth.Vector512: ElementwiseMath.ScaleInPlace<Vec512, Vector512<float>>(y, s, n); break;
            case KernelWidth.Vector256: ElementwiseMath.ScaleInPlace<Vec256, Vector256<float>>(y, s, n); break;
            case KernelWidth.Vector128: ElementwiseMath.ScaleInPlace<Vec128, Vector128<float>>(y, s, n); break;
            default: ElementwiseMath.ScaleInPlace<VecScalar, float>(y, s, n); break;
        }
    }

    private static void BiasRows(KernelWidth w, float* y, float* bias, int c, int r0, int r1)
    {
        for (int r = r0; r < r1; r++) ElementwiseMath.AddInto(w, y + (long)r * c, bias, c);
    }

    private static void SumColumns(KernelWidth w, float* dy, float* dbias, int n, int c, int b0, int b1)
    {
        float* acc = stackalloc float[LayerNorm.ColumnBlock];
        for (int blk = b0; blk < b1; blk++)
        {
            int j0 = blk * LayerNorm.ColumnBlock;
            int cw = Math.Min(LayerNorm.ColumnBlock, c - j0);
            new Span<float>(acc, cw).Clear();
            for (int r = 0; r < n; r++) ElementwiseMath.AddInto(w, acc, dy + (long)r * c + j0, cw);
            ElementwiseMath.AddInto(w, dbias + j0, acc, cw);
        }
    }

    // Each float widened to double (exact), squared and summed in double; two accumulators per width.
    private static double SquaresRange(KernelWidth w, float* x, int i0, int i1)
    {
        int i = i0;
        double s = 0;
        if (w == KernelWidth.Vector512)
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
        else if (w == KernelWidth.Vector256)
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
        else if (w == KernelWidth.Vector128)
        {
            var a0 = Vector128<double>.Zero;
            var a1 = Vector128<double>.Zero;
            for (; i <= i1 - 4; i += 4)
            {
                var (lo, hi) = Vector128.Widen(Vector128.Load(x + i));
                a0 = Vector128.FusedMultiplyAdd(lo, lo, a0);
                a1 = Vector128.FusedMultiplyAdd(hi, hi, a1);
            }
            s = Vector128.Sum(a0 + a1);
        }
        for (; i < i1; i++) s += (double)x[i] * x[i];
        return s;
    }
}
