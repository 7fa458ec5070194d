// Layer normalization over the last axis, forward and backward side by side (as torch.nn.functional.layer_norm):
// y = (x - mean) * rstd * gamma + beta with rstd = 1 / sqrt(var + eps), var the biased (divide by C) variance.
// Rows are independent and split across threads; the gamma/beta gradients are reduced over rows column block by
// column block, in row order, so the result is the same for any thread count.
// Does not handle: normalizing over more than the last axis, or bf16/half inputs.
// Glossary: N rows, C columns (channels).
using System.Runtime.Intrinsics;

namespace Quill.Kernels;

/// <summary>Layer normalization over rows of C floats, with an optional bias.</summary>
public static unsafe class LayerNorm
{
    /// <summary>Columns per block in the gamma/beta gradient reduction.</summary>
    internal const int ColumnBlock = 128;

    /// <summary>Normalizes each row of x; writes y and the per-row mean and rstd the backward needs. beta may be empty (no bias).</summary>
    public static void Forward(
        ReadOnlySpan<float> x,      // [N, C]
        ReadOnlySpan<float> gamma,  // [C]
        ReadOnlySpan<float> beta,   // [C] or empty
        Span<float> y,              // [N, C]
        Span<float> mean,           // [N]
        Span<float> rstd,           // [N]
        int n, int c, float eps)
        => Forward(x, gamma, beta, y, mean, rstd, n, c, eps, KernelWidth.Auto);

    /// <summary>Forward at a chosen vector width (tests pin each one).</summary>
    internal static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, Span<float> y,
        Span<float> mean, Span<float> rstd, int n, int c, float eps, KernelWidth width)
    {
        CheckShapes(x.Length, gamma.Length, beta.Length, mean.Length, rstd.Length, n, c);
        ElementwiseMath.RequireLength(y.Length, (long)n * c, nameof(y));
        if (n == 0 || c == 0) return;
        var w = KernelWidths.Resolve(width);
        fixed (float* px0 = x, pg0 = gamma, pb0 = beta, py0 = y, pm0 = mean, pr0 = rstd)
        {
            float* px = px0, pg = pg0, pb = pb0, py = py0, pm = pm0, pr = pr0;
            if (!ElementwiseMath.ShouldSplit(n, c)) ForwardRows(w, px, pg, pb, py, pm, pr, c, eps, 0, n);
            else KernelThreads.ParallelFor(n, ElementwiseMath.MinChunk(c), (r0, r1) => ForwardRows(w, px, pg, pb, py, pm, pr, c, eps, r0, r1));
        }
    }

    /// <summary>Accumulates dx, dgamma and (when not empty) dbeta from dy and the saved mean and rstd.</summary>
    public static void Backward(
        ReadOnlySpan<float> dy,     // [N, C]
        ReadOnlySpan<float> x,      // [N, C]
        ReadOnlySpan<float> gamma,  // [C]
        ReadOnlySpan<float> mean,   // [N]
        ReadOnlySpan<float> rstd,   // [N]
        Span<float> dx,             // [N, C] +=
        Span<float> dgamma,         // [C] +=
        Span<float> dbeta,          // [C] += or empty
        int n, int c)
        => Backward(dy, x, gamma, mean, rstd, dx, dgamma, dbeta, n, c, KernelWidth.Auto);

    /// <summary>Backward at a chosen vector width (tests pin each one).</summary>
    internal static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> mean,
        ReadOnlySpan<float> rstd, Span<float> dx, Span<float> dgamma, Span<float> dbeta, int n, int c, KernelWidth width)
    {
        CheckShapes(x.Length, gamma.Length, dbeta.Length, mean.Length, rstd.Length, n, c);
        ElementwiseMath.RequireLength(dy.Length, (long)n * c, nameof(dy));
        ElementwiseMath.RequireLength(dx.Length, (long)n * c, nameof(dx));
        ElementwiseMath.RequireLength(dgamma.Length, c, nameof(dgamma));
        if (n == 0 || c == 0) return;
        var w = KernelWidths.Resolve(width);
        fixed (float* pdy0 = dy, px0 = x, pg0 = gamma, pm0 = mean, pr0 = rstd, pdx0 = dx, pdg0 = dgamma, pdb0 = dbeta)
        {
            float* pdy = pdy0, px = px0, pg = pg0, pm = pm0, pr = pr0, pdx = pdx0, pdg = pdg0, pdb = pdb0;
            if (!ElementwiseMath.ShouldSplit(n, c)) BackwardRows(w, pdy, px, pg, pm, pr, pdx, c, 0, n);
            else KernelThreads.ParallelFor(n, ElementwiseMath.MinChunk(c), (r0, r1) => BackwardRows(w, pdy, px, pg, pm, pr, pdx, c, r0, r1));

            int blocks = (c + ColumnBlock - 1) / ColumnBlock;
            long perBlock = (long)n * ColumnBlock;
            if (!ElementwiseMath.ShouldSplit(blocks, perBlock)) ParamColumns(w, pdy, px, pm, pr, pdg, pdb, n, c, 0, blocks);
            else KernelThreads.ParallelFor(blocks, ElementwiseMath.MinChunk(perBlock), (b0, b1) => ParamColumns(w, pdy, px, pm, pr, pdg, pdb, n, c, b0, b1));
        }
    }

    internal static void CheckShapes(int xLength, int gammaLength, int betaLength, int meanLength, int rstdLength, int n, int c)
    {
        ElementwiseMath.RequireNonNegative(n, nameof(n));
        ElementwiseMath.RequireNonNegative(c, nameof(c));
        ElementwiseMath.RequireLength(xLength, (long)n * c, "x");
        ElementwiseMath.RequireLength(gammaLength, c, "gamma");
        if (betaLength != 0) ElementwiseMath.RequireLength(betaLength, c, "beta");
        ElementwiseMath.RequireLength(meanLength, n, "mean");
        ElementwiseMath.RequireLength(rstdLength, n, "rstd");
    }

    private static void ForwardRows(KernelWidth w, float* x, float* gamma, float* beta, float* y, float* mean, float* rstd, int c, float eps, int r0, int r1)
    {
        switch (w)
        {
            case KernelWidth.Vector512: ForwardRows<Vec512, Vector512<float>>(x, gamma, beta, y, mean, rstd, c, eps, r0, r1); break;
            case KernelWidth.Vector256: ForwardRows<Vec256, Vector256<float>>(x, gamma, beta, y, mean, rstd, c, eps, r0, r1); break;
            case KernelWidth.Vector128: ForwardRows<Vec128, Vector128<float>>(x, gamma, beta, y, mean, rstd, c, eps, r0, r1); break;
            default: ForwardRows<VecScalar, float>(x, gamma, beta, y, mean, rstd, c, eps, r0, r1); break;
        }
    }

    private static void ForwardRows<TOps, TV>(float* x, float* gamma, float* beta, float* y, float* mean, float* rstd, int c, float eps, int r0, int r1)
        where TOps : IKernelVector<TV> where TV : struct
    {
        int l = TOps.Lanes;
        for (int r = r0; r < r1; r++)
        {
            float* xr = x + (long)r * c;  // [C]
            float* yr = y + (long)r * c;  // [C]
            float m = ElementwiseMath.Sum<TOps, TV>(xr, c) / c;
            float variance = ElementwiseMath.SumSquaredDiff<TOps, TV>(xr, m, c) / c;
            float rs = 1f / MathF.Sqrt(variance + eps);
            mean[r] = m;
            rstd[r] = rs;
            var vm = TOps.Broadcast(m);
            var vr = TOps.Broadcast(rs);
            int j = 0;
            for (; j <= c - l; j += l)
            {
                var h = TOps.Mul(TOps.Sub(TOps.Load(xr + j), vm), vr);
                var b = beta == null ? TOps.Zero : TOps.Load(beta + j);
                TOps.Store(yr + j, TOps.Fma(h, TOps.Load(gamma + j), b));
            }
            for (; j < c; j++)
            {
                float h = (xr[j] - m) * rs;
                yr[j] = MathF.FusedMultiplyAdd(h, gamma[j], beta == null ? 0f : beta[j]);
            }
        }
    }

    private static void BackwardRows(KernelWidth w, float* dy, float* x, float* gamma, float* mean, float* rstd, float* dx, int c, int r0, int r1)
    {
        switch (w)
        {
            case KernelWidth.Vector512: BackwardRows<Vec512, Vector512<float>>(dy, x, gamma, mean, rstd, dx, c, r0, r1); break;
            case KernelWidth.Vector256: BackwardRows<Vec256, Vector256<float>>(dy, x, gamma, mean, rstd, dx, c, r0, r1); break;
            case KernelWidth.Vector128: BackwardRows<Vec128, Vector128<float>>(dy, x, gamma, mean, rstd, dx, c, r0, r1); break;
            default: BackwardRows<VecScalar, float>(dy, x, gamma, mean, rstd, dx, c, r0, r1); break;
        }
    }

    // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * gamma and xhat = (x - mean) * rstd.
    private static void BackwardRows<TOps, TV>(float* dy, float* x, float* gamma, float* mean, float* rstd, float* dx, int c, int r0, int r1)
        where TOps : IKernelVector<TV> where TV : struct
    {
        int l = TOps.Lanes;
        for (int r = r0; r < r1; r++)
        {
            float* dyr = dy + (long)r * c;  // [C]
            float* xr = x + (long)r * c;    // [C]
            float* dxr = dx + (long)r * c;  // [C]
            float m = mean[r], rs = rstd[r];
            var vm = TOps.Broadcast(m);
            var a = TOps.Zero;
            var b = TOps.Zero;
            int j = 0;
            for (; j <= c - l; j += l)
            {
                var g = TOps.Mul(TOps.Load(dyr + j), TOps.Load(gamma + j));
                a = TOps.Add(a, g);
                b = TOps.Fma(g, TOps.Sub(TOps.Load(xr + j), vm), b);
            }
            float sumG = TOps.SumAcross(a), sumGx = TOps.SumAcross(b);  // sum(g), sum(g * (x - mean))
            for (; j < c; j++)
            {
                float g = dyr[j] * gamma[j];
                sumG += g;
                sumGx += g * (xr[j] - m);
            }
            float meanG = sumG / c;
            float meanGxhat = sumGx * rs / c;
            var vr = TOps.Broadcast(rs);
            var vmg = TOps.Broadcast(meanG);
            var vmgx = TOps.Broadcast(meanGxhat);
            for (j = 0; j <= c - l; j += l)
            {
                var g = TOps.Mul(TOps.Load(dyr + j), TOps.Load(gamma + j));
                var h = TOps.Mul(TOps.Sub(TOps.Load(xr + j), vm), vr);
                var d = TOps.Mul(TOps.Sub(TOps.Sub(g, vmg), TOps.Mul(h, vmgx)), vr);
                TOps.Store(dxr + j, TOps.Add(TOps.Load(dxr + j), d));
            }
            for (; j < c; j++)
            {
                float g = dyr[j] * gamma[j];
                float h = (xr[j] - m) * rs;
                dxr[j] += (g - meanG - h * meanGxhat) * rs;
            }
        }
    }

    private static void ParamColumns(KernelWidth w, float* dy, float* x, float* mean, float* rstd, float* dgamma, float* dbeta, int n, int c, int b0, int b1)
    {
        switch (w)
        {
            case KernelWidth.Vector512: ParamColumns<Vec512, Vector512<float>>(dy, x, mean, rstd, dgamma, dbeta, n, c, b0, b1); break;
            case KernelWidth.Vector256: ParamColumns<Vec256, Vector256<float>>(dy, x, mean, rstd, dgamma, dbeta, n, c, b0, b1); break;
            case KernelWidth.Vector128: ParamColumns<Vec128, Vector128<float>>(dy, x, mean, rstd, dgamma, dbeta, n, c, b0, b1); break;
            default: ParamColumns<VecScalar, float>(dy, x, mean, rstd, dgamma, dbeta, n, c, b0, b1); break;
        }
    }

    // dgamma[j] += sum_r dy[r, j] * xhat[r, j]; dbeta[j] += sum_r dy[r, j], one block of columns at a time.
    private static void ParamColumns<TOps, TV>(float* dy, float* x, float* mean, float* rstd, float* dgamma, float* dbeta, int n, int c, int b0, int b1)
        where TOps : IKernelVector<TV> where TV : struct
    {
        int l = TOps.Lanes;
        float* accG = stackalloc float[ColumnBlock];
        float* accB = stackalloc float[ColumnBlock];
        for (int blk = b0; blk < b1; blk++)
        {
            int j0 = blk * ColumnBlock;
            int w = Math.Min(ColumnBlock, c - j0);
            new Span<float>(accG, w).Clear();
            new Span<float>(accB, w).Clear();
            for (int r = 0; r < n; r++)
            {
                float* dyr = dy + (long)r * c + j0;
                float* xr = x + (long)r * c + j0;
                float m = mean[r], rs = rstd[r];
                var vm = TOps.Broadcast(m);
                var vr = TOps.Broadcast(rs);
                int j = 0;
                for (; j <= w - l; j += l)
                {
                    var d = TOps.Load(dyr + j);
                    var h = TOps.Mul(TOps.Sub(TOps.Load(xr + j), vm), vr);
                    TOps.Store(accG + j, TOps.Fma(d, h, TOps.Load(accG + j)));
                    TOps.Store(accB + j, TOps.Add(TOps.Load(accB + j), d));
                }
                for (; j < w; j++)
                {
                    float d = dyr[j];
                    accG[j] = MathF.FusedMultiplyAdd(d, (xr[j] - m) * rs, accG[j]);
                    accB[j] += d;
                }
            }
            for (int j = 0; j < w; j++)
            {
                dgamma[j0 + j] += accG[j];
                if (dbeta != null) dbeta[j0 + j] += accB[j];
            }
        }
    }
}
