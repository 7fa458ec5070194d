// Layer normalization over the last axis, forward and backward side by side (as torch.nn.functional.layer_norm):
// y = (x - mean) * rstd * gamma + beta with rstd = 1 / sqrt(var + eps), var the biased (divide by C) variance.
// Rows are independent and split across threads. The backward takes rows in fixed chunks of RowChunk: each chunk
// writes its rows' dx and folds its own gamma/beta gradient partials (in row order) while the rows are in L1, and
// the partials are added in chunk order, so the result is the same for any thread count.
// Does not handle: normalizing over more than the last axis, or bf16/half inputs.
// Glossary: N rows, C columns (channels).
using System.Buffers;
using System.Runtime.Intrinsics;

namespace Quill.Kernels;

/// <summary>Layer normalization over rows of C floats, with an optional bias.</summary>
public static unsafe class LayerNorm
{
    /// <summary>Columns per block in the column reductions of RMSNorm's gamma gradient and the elementwise kernels.</summary>
    internal const int ColumnBlock = 128;

    /// <summary>
    /// Rows per chunk of the backward, each with its own gamma/beta partial sums (a separate pass over dy and x for
    /// them, column block by column block, took half of shakespeare-char's LayerNorm backward).
    /// </summary>
    internal const int RowChunk = 64;

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
        int chunks = (n + RowChunk - 1) / RowChunk;
        float[] partials = ArrayPool<float>.Shared.Rent(checked(chunks * 2 * c)); // [chunks, 2, C]: gamma's, then beta's
        try
        {
            fixed (float* pdy0 = dy, px0 = x, pg0 = gamma, pm0 = mean, pr0 = rstd, pdx0 = dx, pdg0 = dgamma, pdb0 = dbeta, pp0 = partials)
            {
                float* pdy = pdy0, px = px0, pg = pg0, pm = pm0, pr = pr0, pdx = pdx0, pp = pp0;
                long perChunk = (long)RowChunk * c;
                if (!ElementwiseMath.ShouldSplit(chunks, perChunk)) BackwardChunks(w, pdy, px, pg, pm, pr, pdx, pp, n, c, 0, chunks);
                else KernelThreads.ParallelFor(chunks, ElementwiseMath.MinChunk(perChunk), (k0, k1) => BackwardChunks(w, pdy, px, pg, pm, pr, pdx, pp, n, c, k0, k1));
                for (int k = 0; k < chunks; k++)
                {
                    ElementwiseMath.AddInto(w, pdg0, pp + (long)k * 2 * c, c);
                    if (pdb0 != null) ElementwiseMath.AddInto(w, pdb0, pp + ((long)k * 2 + 1) * c, c);
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(partials);
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

    private static void BackwardChunks(KernelWidth w, float* dy, float* x, float* gamma, float* mean, float* rstd, float* dx, float* partials, int n, int c, int k0, int k1)
    {
        switch (w)
        {
            case KernelWidth.Vector512: BackwardChunks<Vec512, Vector512<float>>(dy, x, gamma, mean, rstd, dx, partials, n, c, k0, k1); break;
            case KernelWidth.Vector256: BackwardChunks<Vec256, Vector256<float>>(dy, x, gamma, mean, rstd, dx, partials, n, c, k0, k1); break;
            case KernelWidth.Vector128: BackwardChunks<Vec128, Vector128<float>>(dy, x, gamma, mean, rstd, dx, partials, n, c, k0, k1); break;
            default: BackwardChunks<VecScalar, float>(dy, x, gamma, mean, rstd, dx, partials, n, c, k0, k1); break;
        }
    }

    // Chunks [k0, k1): for each row, dx += rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * gamma and
    // xhat = (x - mean) * rstd; the chunk's partials[k, 0] = sum over its rows of dy * xhat (gamma's gradient) and
    // partials[k, 1] = sum of dy (beta's), each in row order.
    private static void BackwardChunks<TOps, TV>(float* dy, float* x, float* gamma, float* mean, float* rstd, float* dx, float* partials, int n, int c, int k0, int k1)
        where TOps : IKernelVector<TV> where TV : struct
    {
        int l = TOps.Lanes;
        for (int k = k0; k < k1; k++)
        {
            float* accG = partials + (long)k * 2 * c, accB = accG + c;
            new Span<float>(accG, 2 * c).Clear();
            for (int r = k * RowChunk, end = Math.Min(n, r + RowChunk); r < end; r++)
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
                    var d = TOps.Load(dyr + j);
                    var g = TOps.Mul(d, TOps.Load(gamma + j));
                    var h = TOps.Mul(TOps.Sub(TOps.Load(xr + j), vm), vr);
                    TOps.Store(dxr + j, TOps.Add(TOps.Load(dxr + j), TOps.Mul(TOps.Sub(TOps.Sub(g, vmg), TOps.Mul(h, vmgx)), vr)));
                    TOps.Store(accG + j, TOps.Fma(d, h, TOps.Load(accG + j)));
                    TOps.Store(accB + j, TOps.Add(TOps.Load(accB + j), d));
                }
                for (; j < c; j++)
                {
                    float d = dyr[j];
                    float g = d * gamma[j];
                    float h = (xr[j] - m) * rs;
                    dxr[j] += (g - meanG - h * meanGxhat) * rs;
                    accG[j] = MathF.FusedMultiplyAdd(d, h, accG[j]);
                    accB[j] += d;
                }
            }
        }
    }
}
