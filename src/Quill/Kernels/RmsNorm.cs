// RMS normalization over the last axis (Llama), forward and backward side by side:
// y = x * rstd * gamma with rstd = 1 / sqrt(mean(x^2) + eps).
// Rows are split across threads; the gamma gradient is reduced over rows column block by column block, in row
// order, so the result is the same for any thread count.
// Does not handle: an additive bias, the "(1 + gamma)" variant (Gemma), or bf16/half inputs.
// Glossary: N rows, C columns (channels).
using System.Runtime.Intrinsics;

namespace Quill.Kernels;

/// <summary>RMS normalization over rows of C floats.</summary>
public static unsafe class RmsNorm
{
    /// <summary>Normalizes each row of x by its root mean square; writes y and the per-row rstd the backward needs.</summary>
    public static void Forward(
        ReadOnlySpan<float> x,      // [N, C]
        ReadOnlySpan<float> gamma,  // [C]
        Span<float> y,              // [N, C]
        Span<float> rstd,           // [N]
        int n, int c, float eps)
        => Forward(x, gamma, y, rstd, n, c, eps, KernelWidth.Auto);

    /// <summary><see cref="Forward(ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, Span{float}, int, int, float)"/> at a chosen vector width (tests pin each one).</summary>
    internal static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, Span<float> y, Span<float> rstd, int n, int c, float eps, KernelWidth width)
    {
        CheckShapes(x.Length, gamma.Length, rstd.Length, n, c);
        ElementwiseMath.RequireLength(y.Length, (long)n * c, nameof(y));
        if (n == 0 || c == 0) return;
        var w = KernelWidths.Resolve(width);
        fixed (float* px0 = x, pg0 = gamma, py0 = y, pr0 = rstd)
        {
            float* px = px0, pg = pg0, py = py0, pr = pr0;
            if (!ElementwiseMath.ShouldSplit(n, c)) ForwardRows(w, px, pg, py, pr, c, eps, 0, n);
            else KernelThreads.ParallelFor(n, ElementwiseMath.MinChunk(c), (r0, r1) => ForwardRows(w, px, pg, py, pr, c, eps, r0, r1));
        }
    }

    /// <summary>Accumulates dx and dgamma from dy and the saved rstd.</summary>
    public static void Backward(
        ReadOnlySpan<float> dy,     // [N, C]
        ReadOnlySpan<float> x,      // [N, C]
        ReadOnlySpan<float> gamma,  // [C]
        ReadOnlySpan<float> rstd,   // [N]
        Span<float> dx,             // [N, C] +=
        Span<float> dgamma,         // [C] +=
        int n, int c)
        => Backward(dy, x, gamma, rstd, dx, dgamma, n, c, KernelWidth.Auto);

    /// <summary>Backward at a chosen vector width (tests pin each one).</summary>
    internal static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> rstd,
        Span<float> dx, Span<float> dgamma, int n, int c, KernelWidth width)
    {
        CheckShapes(x.Length, gamma.Length, rstd.Length, n, c);
        ElementwiseMath.RequireLength(dy.Length, (long)n * c, nameof(dy));
        ElementwiseMath.RequireLength(dx.Length, (long)n * c, nameof(dx));
        ElementwiseMath.RequireLength(dgamma.Length, c, nameof(dgamma));
        if (n == 0 || c == 0) return;
        var w = KernelWidths.Resolve(width);
        fixed (float* pdy0 = dy, px0 = x, pg0 = gamma, pr0 = rstd, pdx0 = dx, pdg0 = dgamma)
        {
            float* pdy = pdy0, px = px0, pg = pg0, pr = pr0, pdx = pdx0, pdg = pdg0;
            if (!ElementwiseMath.ShouldSplit(n, c)) BackwardRows(w, pdy, px, pg, pr, pdx, c, 0, n);
            else KernelThreads.ParallelFor(n, ElementwiseMath.MinChunk(c), (r0, r1) => BackwardRows(w, pdy, px, pg, pr, pdx, c, r0, r1));

            int blocks = (c + LayerNorm.ColumnBlock - 1) / LayerNorm.ColumnBlock;
            long perBlock = (long)n * LayerNorm.ColumnBlock;
            if (!ElementwiseMath.ShouldSplit(blocks, perBlock)) GammaColumns(w, pdy, px, pr, pdg, n, c, 0, blocks);
            else KernelThreads.ParallelFor(blocks, ElementwiseMath.MinChunk(perBlock), (b0, b1) => GammaColumns(w, pdy, px, pr, pdg, n, c, b0, b1));
        }
    }

    private static void CheckShapes(int xLength, int gammaLength, int rstdLength, int n, int c)
    {
        ElementwiseMath.RequireNonNegative(n, nameof(n));
        ElementwiseMath.RequireNonNegative(c, nameof(c));
        ElementwiseMath.RequireLength(xLength, (long)n * c, "x");
        ElementwiseMath.RequireLength(gammaLength, c, "gamma");
        ElementwiseMath.RequireLength(rstdLength, n, "rstd");
    }

    private static void ForwardRows(KernelWidth w, float* x, float* gamma, float* y, float* rstd, int c, float eps, int r0, int r1)
    {
        switch (w)
        {
            case KernelWidth.Vector512: ForwardRows<Vec512, Vector512<float>>(x, gamma, y, rstd, c, eps, r0, r1); break;
            case KernelWidth.Vector256: ForwardRows<Vec256, Vector256<float>>(x, gamma, y, rstd, c, eps, r0, r1); break;
            case KernelWidth.Vector128: ForwardRows<Vec128, Vector128<float>>(x, gamma, y, rstd, c, eps, r0, r1); break;
            default: ForwardRows<VecScalar, float>(x, gamma, y, rstd, c, eps, r0, r1); break;
        }
    }

    private static void ForwardRows<TOps, TV>(float* x, float* gamma, float* y, float* rstd, int c, float eps, int r0, int r1)
        where TOps : IKernelVector<TV> where TV : struct
    {
        int l = TOps.Lanes;
        for (int r = r0; r < r1; r++)
        {
            float* xr = x + (long)r * c;  // [C]
            float* yr = y + (long)r * c;  // [C]
            float rs = 1f / MathF.Sqrt(ElementwiseMath.SumSquaredDiff<TOps, TV>(xr, 0f, c) / c + eps);
            rstd[r] = rs;
            var vr = TOps.Broadcast(rs);
            int j = 0;
            for (; j <= c - l; j += l) TOps.Store(yr + j, TOps.Mul(TOps.Mul(TOps.Load(xr + j), vr), TOps.Load(gamma + j)));
            for (; j < c; j++) yr[j] = xr[j] * rs * gamma[j];
        }
    }

    private static void BackwardRows(KernelWidth w, float* dy, float* x, float* gamma, float* rstd, float* dx, int c, int r0, int r1)
    {
        switch (w)
        {
            case KernelWidth.Vector512: BackwardRows<Vec512, Vector512<float>>(dy, x, gamma, rstd, dx, c, r0, r1); break;
            case KernelWidth.Vector256: BackwardRows<Vec256, Vector256<float>>(dy, x, gamma, rstd, dx, c, r0, r1); break;
            case KernelWidth.Vector128: BackwardRows<Vec128, Vector128<float>>(dy, x, gamma, rstd, dx, c, r0, r1); break;
            default: BackwardRows<VecScalar, float>(dy, x, gamma, rstd, dx, c, r0, r1); break;
        }
    }

    // dx = rstd * dy * gamma - x * rstd^3 * sum(dy * gamma * x) / C.
    private static void BackwardRows<TOps, TV>(float* dy, float* x, float* gamma, float* rstd, float* dx, int c, int r0, int r1)
        where TOps : IKernelVector<TV> where TV : struct
    {
        int l = TOps.Lanes;
        for (int r = r0; r < r1; r++)
        {
            float* dyr = dy + (long)r * c;  // [C]
            float* xr = x + (long)r * c;    // [C]
            float* dxr = dx + (long)r * c;  // [C]
            float rs = rstd[r];
            int j = 0;
            var a = TOps.Zero;
            for (; j <= c - l; j += l) a = TOps.Fma(TOps.Mul(TOps.Load(dyr + j), TOps.Load(gamma + j)), TOps.Load(xr + j), a);
            float dot = TOps.SumAcross(a);
            for (; j < c; j++) dot += dyr[j] * gamma[j] * xr[j];
            float k = rs * rs * rs * dot / c;
            var vr = TOps.Broadcast(rs);
            var vk = TOps.Broadcast(k);
            for (j = 0; j <= c - l; j += l)
            {
                var d = TOps.Sub(TOps.Mul(TOps.Mul(TOps.Load(dyr + j), TOps.Load(gamma + j)), vr), TOps.Mul(TOps.Load(xr + j), vk));
                TOps.Store(dxr + j, TOps.Add(TOps.Load(dxr + j), d));
            }
            for (; j < c; j++) dxr[j] += dyr[j] * gamma[j] * rs - xr[j] * k;
        }
    }

    private static void GammaColumns(KernelWidth w, float* dy, float* x, float* rstd, float* dgamma, int n, int c, int b0, int b1)
    {
        switch (w)
        {
            case KernelWidth.Vector512: GammaColumns<Vec512, Vector512<float>>(dy, x, rstd, dgamma, n, c, b0, b1); break;
            case KernelWidth.Vector256: GammaColumns<Vec256, Vector256<float>>(dy, x, rstd, dgamma, n, c, b0, b1); break;
            case KernelWidth.Vector128: GammaColumns<Vec128, Vector128<float>>(dy, x, rstd, dgamma, n, c, b0, b1); break;
            default: GammaColumns<VecScalar, float>(dy, x, rstd, dgamma, n, c, b0, b1); break;
        }
    }

    // dgamma[j] += sum_r dy[r, j] * x[r, j] * rstd[r], one block of columns at a time.
    private static void GammaColumns<TOps, TV>(float* dy, float* x, float* rstd, float* dgamma, int n, int c, int b0, int b1)
        where TOps : IKernelVector<TV> where TV : struct
    {
        int l = TOps.Lanes;
        float* acc = stackalloc float[LayerNorm.ColumnBlock];
        for (int blk = b0; blk < b1; blk++)
        {
            int j0 = blk * LayerNorm.ColumnBlock;
            int w = Math.Min(LayerNorm.ColumnBlock, c - j0);
            new Span<float>(acc, w).Clear();
            for (int r = 0; r < n; r++)
            {
                float* dyr = dy + (long)r * c + j0;
                float* xr = x + (long)r * c + j0;
                float rs = rstd[r];
                var vr = TOps.Broadcast(rs);
                int j = 0;
                for (; j <= w - l; j += l) TOps.Store(acc + j, TOps.Fma(TOps.Load(dyr + j), TOps.Mul(TOps.Load(xr + j), vr), TOps.Load(acc + j)));
                for (; j < w; j++) acc[j] = MathF.FusedMultiplyAdd(dyr[j], xr[j] * rs, acc[j]);
            }
            for (int j = 0; j < w; j++) dgamma[j0 + j] += acc[j];
        }
    }
}
