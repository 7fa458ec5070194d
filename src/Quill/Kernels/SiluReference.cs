// Plain reference twin of Silu: textbook formula in double, one thread. Does not handle: speed.
// Glossary: L elements.
namespace Quill.Kernels;

/// <summary>Reference SiLU (same signatures as <see cref="Silu"/>).</summary>
public static class SiluReference
{
    internal static double Sigmoid(double v) => 1.0 / (1.0 + Math.Exp(-v));

    public static void Forward(
        ReadOnlySpan<float> x,  // [L]
        Span<float> y)          // [L]
    {
        for (int i = 0; i < x.Length; i++) y[i] = (float)(x[i] * Sigmoid(x[i]));
    }

    public static void Backward(
        ReadOnlySpan<float> x,   // [L]
        ReadOnlySpan<float> dy,  // [L]
        Span<float> dx)          // [L] +=
    {
        for (int i = 0; i < x.Length; i++)
        {
            double s = Sigmoid(x[i]);
            dx[i] += (float)(dy[i] * (s + x[i] * s * (1 - s)));
        }
    }
}
