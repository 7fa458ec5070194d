// Plain reference twin of LayerNorm: obvious loops, double accumulation, one thread. The optimized
// kernels are tested against these. Does not handle: speed.
// Glossary: N rows, C columns (channels).
namespace Quill.Kernels;

/// <summary>Reference layer normalization (same signatures as <see cref="LayerNorm"/>).</summary>
public static class LayerNormReference
{
    public static void Forward(
        ReadOnlySpan<float> x,      // [N, C]
        ReadOnlySpan<float> gamma,  // [C]
        ReadOnlySpan<float> beta,   // [C] or empty
        Span<float> y,              // [N, C]
        Span<float> mean,           // [N]
        Span<float> rstd,           // [N]
        int n, int c, float eps)
    {
        for (int r = 0; r < n; r++)
        {
            var xr = x.Slice(r * c, c);
            double sum = 0;
            for (int j = 0; j < c; j++) sum += xr[j];
            double m = sum / c;
            double sq = 0;
            for (int j = 0; j < c; j++) sq += (xr[j] - m) * (xr[j] - m);
            double rs = 1.0 / Math.Sqrt(sq / c + eps);
            mean[r] = (float)m;
            rstd[r] = (float)rs;
            for (int j = 0; j < c; j++)
            {
                double h = (xr[j] - m) * rs * gamma[j];
                y[r * c + j] = (float)(beta.IsEmpty ? h : h + beta[j]);
            }
        }
    }

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
        var dg = new double[c];
        var db = new double[c];
        for (int r = 0; r < n; r++)
        {
            double m = mean[r], rs = rstd[r];
            double sumG = 0, sumGh = 0;
            for (int j = 0; j < c; j++)
            {
                double g = (double)dy[r * c + j] * gamma[j];
                double h = (x[r * c + j] - m) * rs;
                sumG += g;
                sumGh += g * h;
                dg[j] += dy[r * c + j] * h;
                db[j] += dy[r * c + j];
            }
            for (int j = 0; j < c; j++)
            {
                double g = (double)dy[r * c + j] * gamma[j];
                double h = (x[r * c + j] - m) * rs;
                dx[r * c + j] += (float)((g - sumG / c - h * sumGh / c) * rs);
            }
        }
        for (int j = 0; j < c; j++)
        {
            dgamma[j] += (float)dg[j];
            if (!dbeta.IsEmpty) dbeta[j] += (float)db[j];
        }
    }
}
