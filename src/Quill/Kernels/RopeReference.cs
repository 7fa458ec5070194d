// Plain reference twin of Rope: obvious loops in double, one thread. Does not handle: speed.
// Glossary: B batch, T time steps, H heads, D head dim.
namespace Quill.Kernels;

/// <summary>Reference rotary position embedding (same signatures as <see cref="Rope"/>).</summary>
public static class RopeReference
{
    public static void Tables(
        int maxT, int rotaryDim, double theta,
        Span<float> cos,  // [maxT, rotaryDim/2]
        Span<float> sin)  // [maxT, rotaryDim/2]
    {
        int half = rotaryDim / 2;
        for (int t = 0; t < maxT; t++)
        {
            for (int i = 0; i < half; i++)
            {
                double angle = t / Math.Pow(theta, 2.0 * i / rotaryDim);
                cos[t * half + i] = (float)Math.Cos(angle);
                sin[t * half + i] = (float)Math.Sin(angle);
            }
        }
    }

    public static void Apply(
        Span<float> x,  // (b, t, h, d) at (b*T + t)*rowStride + h*D + d
        int B, int T, int H, int D, int rowStride, int rotaryDim, int posOffset,
        ReadOnlySpan<float> cos,  // [maxT, rotaryDim/2]
        ReadOnlySpan<float> sin,  // [maxT, rotaryDim/2]
        RopeStyle style, bool inverse)
    {
        Rope.CheckApply(x.Length, B, T, H, D, rowStride, rotaryDim, posOffset, cos.Length, sin.Length);
        int half = rotaryDim / 2;
        for (int b = 0; b < B; b++)
        {
            for (int t = 0; t < T; t++)
            {
                int pos = posOffset + t;
                for (int h = 0; h < H; h++)
                {
                    int baseIndex = (b * T + t) * rowStride + h * D;
                    for (int i = 0; i < half; i++)
                    {
                        int i0 = style == RopeStyle.Interleaved ? baseIndex + 2 * i : baseIndex + i;
                        int i1 = style == RopeStyle.Interleaved ? baseIndex + 2 * i + 1 : baseIndex + i + half;
                        double c = cos[pos * half + i];
                        double s = inverse ? -sin[pos * half + i] : sin[pos * half + i];
                        double x0 = x[i0], x1 = x[i1];
                        x[i0] = (float)(x0 * c - x1 * s);
                        x[i1] = (float)(x0 * s + x1 * c);
                    }
                }
            }
        }
    }
}
