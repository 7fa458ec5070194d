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
    {
        CheckShapes(x.Length, gamma.Length, rstd.Length, n, c);
        ElementwiseMath.RequireLength(y.Length, (long)n * c, nameof(y));
        if (n == 0 || c == 0) return;
        fixed (float* px0 = x, pg0 = gamma, py0 = y, pr0 = rstd)
        {
            float* px = px0, pg = pg0, py = py0, pr = pr0;
            if (!ElementwiseMath.ShouldSplit(n, c)) ForwardRows(px, pg, py, pr, c, eps, 0, n);
            else KernelThreads.ParallelFor(n, ElementwiseMath.MinChunk(c), (r0, r1) => ForwardRows(px, pg, py, pr, c, eps, r0, r1));
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
    {
        CheckShapes(x.Length, gamma.Length, rstd.Length, n, c);
        ElementwiseMath.RequireLength(dy.Length, (long)n * c, nameof(dy));
        ElementwiseMath.RequireLength(dx.Length, (long)n * c, nameof(dx));
        ElementwiseMath.RequireLength(dgamma.Length, c, nameof(dgamma));
        if (n == 0 || c == 0) return;
        fixed (float* pdy0 = dy, px0 = x, pg0 = gamma, pr0 = rstd, pdx0 = dx, pdg0 = dgamma)
        {
            float* pdy = pdy0, px = px0, pg = pg0, pr = pr0, pdx = pdx0, pdg = pdg0;
            if (!ElementwiseMath.ShouldSplit(n, c)) BackwardRows(pdy, px, pg, pr, pdx, c, 0, n);
            else KernelThreads.ParallelFor(n, ElementwiseMath.MinChunk(c), (r0, r1) => BackwardRows(pdy, px, pg, pr, pdx, c, r0, r1));

            int blocks = (c + LayerNorm.ColumnBlock - 1) / LayerNorm.ColumnBlock;
            long perBlock = (long)n * LayerNorm.ColumnBlock;
            if (!ElementwiseMath.ShouldSplit(blocks, perBlock)) GammaColumns(pdy, px, pr, pdg, n, c, 0, blocks);
            else KernelThreads.ParallelFor(blocks, ElementwiseMath.MinChunk(perBlock), (b0, b1) => GammaColumns(pdy, px, pr, pdg, n, c, b0, b1));
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

    private static void ForwardRows(float* x, float* gamma, float* y, float* rstd, int c, float eps, int r0, int r1)
    {
        for (int r = r0; r < r1; r++)
        {
            float* xr = x + (long)r * c;  // [C]
            float* yr = y + (long)r * c;  // [C]
            float rs = 1f / MathF.Sqrt(ElementwiseMath.SumSquaredDiff(xr, 0f, c) / c + eps);
            rstd[r] = rs;
            int j = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                var vr = Vector512.Create(rs);
                for (; j <= c - 16; j += 16) (Vector512.Load(xr + j) * vr * Vector512.Load(gamma + j)).Store(yr + j);
            }
            else if (Vector256.IsHardwareAccelerated)
            {
                var vr = Vector256.Create(rs);
                for (; j <= c - 8; j += 8) (Vector256.Load(xr + j) * vr * Vector256.Load(gamma + j)).Store(yr + j);
            }
            for (; j < c; j++) yr[j] = xr[j] * rs * gamma[j];
        }
    }

    // dx = rstd * dy * gamma - x * rstd^3 * sum(dy * gamma * x) / C.
    private static void BackwardRows(float* dy, float* x, float* gamma, float* rstd, float* dx, int c, int r0, int r1)
    {
        for (int r = r0; r < r1; r++)
        {
            float* dyr = dy + (long)r * c;  // [C]
            float* xr = x + (long)r * c;    // [C]
            float* dxr = dx + (long)r * c;  // [C]
            float rs = rstd[r];
            float dot = 0;
            int j = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                var a = Vector512<float>.Zero;
                for (; j <= c - 16; j += 16)
                    a = Vector512.FusedMultiplyAdd(Vector512.Load(dyr + j) * Vector512.Load(gamma + j), Vector512.Load(xr + j), a);
                dot = Vector512.Sum(a);
            }
            else if (Vector256.IsHardwareAccelerated)
            {
                var a = Vector256<float>.Zero;
                for (; j <= c - 8; j += 8)
                    a = Vector256.FusedMultiplyAdd(Vector256.Load(dyr + j) * Vector256.Load(gamma + j), Vector256.Load(xr + j), a);
                dot = Vector256.Sum(a);
            }
            for (; j < c; j++) dot += dyr[j] * gamma[j] * xr[j];
            float k = rs * rs * rs * dot / c;
            j = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                var vr = Vector512.Create(rs);
                var vk = Vector512.Create(k);
                for (; j <= c - 16; j += 16)
                {
                    var d = Vector512.Load(dyr + j) * Vector512.Load(gamma + j) * vr - Vector512.Load(xr + j) * vk;
                    (Vector512.Load(dxr + j) + d).Store(dxr + j);
                }
            }
            else if (Vector256.IsHardwareAccelerated)
            {
                var vr = Vector256.Create(rs);
                var vk = Vector256.Create(k);
                for (; j <= c - 8; j += 8)
                {
                    var d = Vector256.Load(dyr + j) * Vector256.Load(gamma + j) * vr - Vector256.Load(xr + j) * vk;
                    (Vector256.Load(dxr + j) + d).Store(dxr + j);
                }
            }
            for (; j < c; j++) dxr[j] += dyr[j] * gamma[j] * rs - xr[j] * k;
        }
    }

    // dgamma[j] += sum_r dy[r, j] * x[r, j] * rstd[r], one block of columns at a time.
    private static void GammaColumns(float* dy, float* x, float* rstd, float* dgamma, int n, int c, int b0, int b1)
    {
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
                int j = 0;
                if (Vector512.IsHardwareAccelerated)
                {
                    var vr = Vector512.Create(rs);
                    for (; j <= w - 16; j += 16)
                        Vector512.FusedMultiplyAdd(Vector512.Load(dyr + j), Vector512.Load(xr + j) * vr, Vector512.Load(acc + j)).Store(acc + j);
                }
                else if (Vector256.IsHardwareAccelerated)
                {
                    var vr = Vector256.Create(rs);
                    for (; j <= w - 8; j += 8)
                        Vector256.FusedMultiplyAdd(Vector256.Load(dyr + j), Vector256.Load(xr + j) * vr, Vector256.Load(acc + j)).Store(acc + j);
                }
                for (; j < w; j++) acc[j] = MathF.FusedMultiplyAdd(dyr[j], xr[j] * rs, acc[j]);
            }
            for (int j = 0; j < w; j++) dgamma[j0 + j] += acc[j];
        }
    }
}
