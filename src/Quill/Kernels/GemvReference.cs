// The plain twin of Gemv: one row at a time, one vector at a time, sums in double. Tests hold Gemv's vector paths
// to it; it is never used for decoding.
// Glossary: N output rows, K shared length, M vectors.
namespace Quill.Kernels;

/// <summary>Reference matrix-vector product (slow, exact in double).</summary>
public static class GemvReference
{
    /// <summary>Y = X W^T. w: [n, k]; x: [m, k]; y: [m, n].</summary>
    public static void MultiplyBatch(ReadOnlySpan<float> w, int n, int k, ReadOnlySpan<float> x, int m, Span<float> y)
    {
        for (int v = 0; v < m; v++)
        {
            for (int r = 0; r < n; r++)
            {
                double s = 0;
                for (int i = 0; i < k; i++) s += (double)w[r * k + i] * x[v * k + i];
                y[v * n + r] = (float)s;
            }
        }
    }
}
