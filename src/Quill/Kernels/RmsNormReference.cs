// Plain reference twin of RmsNorm: obvious loops, double accumulation, one thread. Does not handle: speed.
// Glossary: N rows, C columns (channels).
namespace Quill.Kernels;

/// <summary>Reference RMS normalization (same signatures as <see cref="RmsNorm"/>).</summary>
public static class RmsNormReference
{
    public static void Forward(
        ReadOnlySpan<float> x,      // [N, C]
        ReadOnlySpan<float> gamma,  // [C]
        Span<float> y,              // [N, C]
        Span<float> rstd,           // [N]
        int n, int c, float eps)
    {
        for (int r = 0; r < n; r++)
        {
            double sq = 0;
            for (int j = 0; j < c; j++) sq += (double)x[r * c + j] * x[r * c + j];
            double rs = 1.0 / Math.Sqrt(sq / c + eps);
            rstd[r] = (float)rs;
            for (int j = 0; j < c; j++) y[r * c + j] = (float)(x[r * c + j] * rs * gamma[j]);
        }
    }

    public static void Backward(
        ReadOnlySpan<float> dy,     // [N, C]
        ReadOnlySpan<float> x,      // [N, C]
        ReadOnlySpan<float> gamma,  // [C]
        ReadOnlySpan<float> rstd,   // [N]
        Span<float> dx,             // [N, C] +=
        Span<float> dgamma,         // [C] +=
        int n, int c)
    {
        var dg = new double[c];
        for (int r = 0; r < n; r++)
        {
            double rs = rstd[r];
            double dot = 0;  // sum_j dy * gamma * x
            for (int j = 0; j < c; j++)
            {
                dot += (double)dy[r * c + j] * gamma[j] * x[r * c + j];
                dg[j] += (double)dy[r * c + j] * x[r * c + j] * rs;
            }
            for (int j = 0; j < c; j++)
            {
                double xj = x[r * c + j];
                dx[r * c + j] += (float)(rs * dy[r * c + j] * gamma[j] - xj * rs * rs * rs * dot / c);
            }
        }
        for (int j = 0; j < c; j++) dgamma[j] += (float)dg[j];
    }
}
