// Plain reference twin of Gelu: the textbook tanh formula in double, one thread. Does not handle: speed.
// Glossary: L elements.
namespace Quill.Kernels;

/// <summary>Reference GELU, tanh approximation (same signatures as <see cref="Gelu"/>).</summary>
public static class GeluReference
{
    private static readonly double K0 = Math.Sqrt(2.0 / Math.PI);
    private const double K1 = 0.044715;

    public static void Forward(
        ReadOnlySpan<float> x,  // [L]
        Span<float> y)          // [L]
    {
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i];
            y[i] = (float)(0.5 * v * (1 + Math.Tanh(K0 * (v + K1 * v * v * v))));
        }
    }

    public static void Backward(
        ReadOnlySpan<float> x,   // [L]
        ReadOnlySpan<float> dy,  // [L]
        Span<float> dx)          // [L] +=
    {
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i];
            double t = Math.Tanh(K0 * (v + K1 * v * v * v));
            double d = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * K0 * (1 + 3 * K1 * v * v);
            dx[i] += (float)(dy[i] * d);
        }
    }
}
