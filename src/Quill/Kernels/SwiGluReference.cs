// Plain reference twin of SwiGlu: textbook formulas in double, one thread. Does not handle: speed.
// Glossary: N rows, H hidden units; every span is [N*H].
namespace Quill.Kernels;

/// <summary>Reference SwiGLU (same signatures as <see cref="SwiGlu"/>).</summary>
public static class SwiGluReference
{
    public static void Forward(
        ReadOnlySpan<float> gate,  // [N*H]
        ReadOnlySpan<float> up,    // [N*H]
        Span<float> y)             // [N*H]
    {
        for (int i = 0; i < gate.Length; i++) y[i] = (float)(gate[i] * SiluReference.Sigmoid(gate[i]) * up[i]);
    }

    public static void Backward(
        ReadOnlySpan<float> gate,  // [N*H]
        ReadOnlySpan<float> up,    // [N*H]
        ReadOnlySpan<float> dy,    // [N*H]
        Span<float> dgate,         // [N*H] +=
        Span<float> dup)           // [N*H] +=
    {
        for (int i = 0; i < gate.Length; i++)
        {
            double g = gate[i];
            double s = SiluReference.Sigmoid(g);
            dgate[i] += (float)(dy[i] * up[i] * (s + g * s * (1 - s)));
            dup[i] += (float)(dy[i] * g * s);
        }
    }
}
