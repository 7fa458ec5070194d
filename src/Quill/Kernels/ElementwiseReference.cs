// Plain reference twins of the Elementwise helpers: obvious loops, double accumulation for reductions, one thread.
// Does not handle: speed.
// Glossary: L elements, N rows, C columns.
namespace Quill.Kernels;

/// <summary>Reference elementwise helpers (same signatures as <see cref="Elementwise"/>).</summary>
public static class ElementwiseReference
{
    public static void Add(ReadOnlySpan<float> a /* [L] */, ReadOnlySpan<float> b /* [L] */, Span<float> y /* [L] */)
    {
        for (int i = 0; i < a.Length; i++) y[i] = a[i] + b[i];
    }

    public static void AddInPlace(Span<float> y /* [L] */, ReadOnlySpan<float> x /* [L] */)
    {
        for (int i = 0; i < x.Length; i++) y[i] += x[i];
    }

    public static void Scale(Span<float> y /* [L] */, float s)
    {
        for (int i = 0; i < y.Length; i++) y[i] *= s;
    }

    public static void AddBiasRows(Span<float> y /* [N, C] */, ReadOnlySpan<float> bias /* [C] */, int n, int c)
    {
        for (int r = 0; r < n; r++)
            for (int j = 0; j < c; j++) y[r * c + j] += bias[j];
    }

    public static void SumRows(ReadOnlySpan<float> dy /* [N, C] */, Span<float> dbias /* [C] += */, int n, int c)
    {
        for (int j = 0; j < c; j++)
        {
            double s = 0;
            for (int r = 0; r < n; r++) s += dy[r * c + j];
            dbias[j] += (float)s;
        }
    }

    public static double SumOfSquares(ReadOnlySpan<float> x /* [L] */)
    {
        double s = 0;
        for (int i = 0; i < x.Length; i++) s += (double)x[i] * x[i];
        return s;
    }
}
