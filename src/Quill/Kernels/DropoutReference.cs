// Plain reference twin of Dropout: one element at a time, same mask definition. Does not handle: speed.
// Glossary: L elements.
namespace Quill.Kernels;

/// <summary>Reference dropout (same signatures and mask as <see cref="Dropout"/>).</summary>
public static class DropoutReference
{
    public static void Forward(
        ReadOnlySpan<float> x,  // [L]
        Span<float> y,          // [L]
        ulong seed, float p)
    {
        Dropout.CheckP(p);
        ulong key = Dropout.Key(seed);
        ulong threshold = Dropout.Threshold(p);
        for (int i = 0; i < x.Length; i++) y[i] = Dropout.Bits(key, i) < threshold ? 0f : x[i] * (1f / (1f - p));
    }

    public static void Backward(
        ReadOnlySpan<float> dy,  // [L]
        Span<float> dx,          // [L] +=
        ulong seed, float p)
    {
        Dropout.CheckP(p);
        ulong key = Dropout.Key(seed);
        ulong threshold = Dropout.Threshold(p);
        for (int i = 0; i < dy.Length; i++) dx[i] += Dropout.Bits(key, i) < threshold ? 0f : dy[i] * (1f / (1f - p));
    }
}
