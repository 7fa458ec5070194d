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
    {
        CheckShapes(x.Length, gamma.Length, beta.Length, mean.Length, rstd.Length, n, c);
        ElementwiseMath.RequireLength(y.Length, (long)n * c, nameof(y));
        if (n == 0 || c == 0) return;
        fixed (float* px0 = x, pg0 = gamma, pb0 = beta, py0 = y, pm0 = mean, pr0 = rstd)
        {
            float* px = px0, pg = pg0, pb = pb0, py = py0, pm = pm0, pr = pr0;
            if (!ElementwiseMath.ShouldSplit(n, c)) ForwardRows(px, pg, pb, py, pm, pr, c, eps, 0, n);
            else KernelThreads.ParallelFor(n, ElementwiseMath.MinChunk(c), (r0, r1) => ForwardRows(px, pg, pb, py, pm, pr, c, eps, r0, r1));
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
    {
        CheckShapes(x.Length, gamma.Length, dbeta.Length, mean.Length, rstd.Length, n, c);
        ElementwiseMath.RequireLength(dy.Length, (long)n * c, nameof(dy));
        ElementwiseMath.RequireLength(dx.Length, (long)n * c, nameof(dx));
        ElementwiseMath.RequireLength(dgamma.Length, c, nameof(dgamma));
        if (n == 0 || c == 0) return;
        fixed (float* pdy0 = dy, px0 = x, pg0 = gamma, pm0 = mean, pr0 = rstd, pdx0 = dx, pdg0 = dgamma, pdb0 = dbeta)
        {
            float* pdy = pdy0, px = px0, pg = pg0, pm = pm0, pr = pr0, pdx = pdx0, pdg = pdg0, pdb = pdb0;
            if (!ElementwiseMath.ShouldSplit(n, c)) BackwardRows(pdy, px, pg, pm, pr, pdx, c, 0, n);
            else KernelThreads.ParallelFor(n, ElementwiseMath.MinChunk(c), (r0, r1) => BackwardRows(pdy, px, pg, pm, pr, pdx, c, r0, r1));

            int blocks = (c + ColumnBlock - 1) / ColumnBlock;
            long perBlock = (long)n * ColumnBlock;
            if (!ElementwiseMath.ShouldSplit(blocks, perBlock)) ParamColumns(pdy, px, pm, pr, pdg, pdb, n, c, 0, blocks);
            else KernelThreads.ParallelFor(blocks, ElementwiseMath.MinChunk(perBlock), (b0, b1) => ParamColumns(pdy, px, pm, pr, pdg, pdb, n, c, b0, b1));
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

    private static void ForwardRows(float* x, float* gamma, float* beta, float* y, float* mean, float* rstd, int c, float eps, int r0, int r1)
    {
        for (int r = r0; r < r1; r++)
        {
            float* xr = x + (long)r * c;  // [C]
            float* yr = y + (long)r * c;  // [C]
            float m = ElementwiseMath.Sum(xr, c) / c;
            float variance = ElementwiseMath.SumSquaredDiff(xr, m, c) / c;
            float rs = 1f / MathF.Sqrt(variance + eps);
            mean[r] = m;
            rstd[r] = rs;
            int j = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                var vm = Vector512.Create(m);
                var vr = Vector512.Create(rs);
                for (; j <= c - 16; j += 16)
                {
                    var h = (Vector512.Load(xr + j) - vm) * vr;
                    var b = beta == null ? Vector512<float>.Zero : Vector512.Load(beta + j);
                    Vector512.FusedMultiplyAdd(h, Vector512.Load(gamma + j), b).Store(yr + j);
                }
            }
            else if (Vector256.IsHardwareAccelerated)
            {
                var vm = Vector256.Create(m);
                var vr = Vector256.Create(rs);
                for (; j <= c - 8; j += 8)
                {
                    var h = (Vector256.Load(xr + j) - vm) * vr;
                    var b = beta == null ? Vector256<float>.Zero : Vector256.Load(beta + j);
                    Vector256.FusedMultiplyAdd(h, Vector256.Load(gamma + j), b).Store(yr + j);
                }
            }
            for (; j < c; j++)
            {
                float h = (xr[j] - m) * rs;
                yr[j] = MathF.FusedMultiplyAdd(h, gamma[j], beta == null ? 0f : beta[j]);
            }
        }
    }

    // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * gamma and xhat = (x - mean) * rstd.
    private static void BackwardRows(float* dy, float* x, float* gamma, float* mean, float* rstd, float* dx, int c, int r0, int r1)
    {
        for (int r = r0; r < r1; r++)
        {
            float* dyr = dy + (long)r * c;  // [C]
            float* xr = x + (long)r * c;    // [C]
            float* dxr = dx + (long)r * c;  // [C]
            float m = mean[r], rs = rstd[r];
            float sumG = 0, sumGx = 0;  // sum(g), sum(g * (x - mean))
            int j = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                var vm = Vector512.Create(m);
                var a = Vector512<float>.Zero;
                var b = Vector512<float>.Zero;
                for (; j <= c - 16; j += 16)
                {
                    var g = Vector512.Load(dyr + j) * Vector512.Load(gamma + j);
                    a += g;
                    b = Vector512.FusedMultiplyAdd(g, Vector512.Load(xr + j) - vm, b);
                }
                sumG = Vector512.Sum(a);
                sumGx = Vector512.Sum(b);
            }
            else if (Vector256.IsHardwareAccelerated)
            {
                var vm = Vector256.Create(m);
                var a = Vector256<float>.Zero;
                var b = Vector256<float>.Zero;
                for (; j <= c - 8; j += 8)
                {
                    var g = Vector256.Load(dyr + j) * Vector256.Load(gamma + j);
                    a += g;
                    b = Vector256.FusedMultiplyAdd(g, Vector256.Load(xr + j) - vm, b);
                }
                sumG = Vector256.Sum(a);
                sumGx = Vector256.Sum(b);
            }
            for (; j < c; j++)
            {
                float g = dyr[j] * gamma[j];
                sumG += g;
                sumGx += g * (xr[j] - m);
            }
            float meanG = sumG / c;
            float meanGxhat = sumGx * rs / c;
            j = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                var vm = Vector512.Create(m);
                var vr = Vector512.Create(rs);
                var vmg = Vector512.Create(meanG);
                var vmgx = Vector512.Create(meanGxhat);
                for (; j <= c - 16; j += 16)
                {
                    var g = Vector512.Load(dyr + j) * Vector512.Load(gamma + j);
                    var h = (Vector512.Load(xr + j) - vm) * vr;
                    var d = (g - vmg - h * vmgx) * vr;
                    (Vector512.Load(dxr + j) + d).Store(dxr + j);
                }
            }
            else if (Vector256.IsHardwareAccelerated)
            {
                var vm = Vector256.Create(m);
                var vr = Vector256.Create(rs);
                var vmg = Vector256.Create(meanG);
                var vmgx = Vector256.Create(meanGxhat);
                for (; j <= c - 8; j += 8)
                {
                    var g = Vector256.Load(dyr + j) * Vector256.Load(gamma + j);
                    var h = (Vector256.Load(xr + j) - vm) * vr;
                    var d = (g - vmg - h * vmgx) * vr;
                    (Vector256.Load(dxr + j) + d).Store(dxr + j);
                }
            }
            for (; j < c; j++)
            {
                float g = dyr[j] * gamma[j];
                float h = (xr[j] - m) * rs;
                dxr[j] += (g - meanG - h * meanGxhat) * rs;
            }
        }
    }

    // dgamma[j] += sum_r dy[r, j] * xhat[r, j]; dbeta[j] += sum_r dy[r, j], one block of columns at a time.
    private static void ParamColumns(float* dy, float* x, float* mean, float* rstd, float* dgamma, float* dbeta, int n, int c, int b0, int b1)
    {
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
                int j = 0;
                if (Vector512.IsHardwareAccelerated)
                {
                    var vm = Vector512.Create(m);
                    var vr = Vector512.Create(rs);
                    for (; j <= w - 16; j += 16)
                    {
                        var d = Vector512.Load(dyr + j);
                        var h = (Vector512.Load(xr + j) - vm) * vr;
                        Vector512.FusedMultiplyAdd(d, h, Vector512.Load(accG + j)).Store(accG + j);
                        (Vector512.Load(accB + j) + d).Store(accB + j);
                    }
                }
                else if (Vector256.IsHardwareAccelerated)
                {
                    var vm = Vector256.Create(m);
                    var vr = Vector256.Create(rs);
                    for (; j <= w - 8; j += 8)
                    {
                        var d = Vector256.Load(dyr + j);
                        var h = (Vector256.Load(xr + j) - vm) * vr;
                        Vector256.FusedMultiplyAdd(d, h, Vector256.Load(accG + j)).Store(accG + j);
                        (Vector256.Load(accB + j) + d).Store(accB + j);
                    }
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
