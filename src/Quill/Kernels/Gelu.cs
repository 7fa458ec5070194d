// GELU with the tanh approximation (PyTorch gelu(approximate="tanh"), GPT-2), forward and backward side by side:
// y = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), computed as y = x * sigmoid(2u), which is the same
// function written without tanh. dx += dy * (s + 2 x s (1 - s) u'), s = sigmoid(2u), u' = sqrt(2/pi) (1 + 3 * 0.044715 x^2).
// Large ranges are split across threads in fixed blocks, so results do not depend on the thread count.
// Does not handle: the exact erf GELU.
// Glossary: L elements.
using System.Runtime.Intrinsics;

namespace Quill.Kernels;

/// <summary>Elementwise GELU (tanh approximation).</summary>
public static unsafe class Gelu
{
    internal const float K0 = 0.7978845608028654f;  // sqrt(2 / pi)
    internal const float K1 = 0.044715f;

    /// <summary>y = gelu_tanh(x).</summary>
    public static void Forward(
        ReadOnlySpan<float> x,  // [L]
        Span<float> y)          // [L]
    {
        ElementwiseMath.RequireLength(y.Length, x.Length, nameof(y));
        int len = x.Length;
        if (len == 0) return;
        fixed (float* px0 = x, py0 = y)
        {
            float* px = px0, py = py0;
            int blocks = ElementwiseMath.Blocks(len);
            if (!ElementwiseMath.ShouldSplit(blocks, ElementwiseMath.Block)) ForwardRange(px, py, 0, len);
            else KernelThreads.ParallelFor(blocks, ElementwiseMath.MinChunk(ElementwiseMath.Block), (b0, b1) =>
                ForwardRange(px, py, b0 * ElementwiseMath.Block, Math.Min(len, b1 * ElementwiseMath.Block)));
        }
    }

    /// <summary>dx += dy * gelu_tanh'(x).</summary>
    public static void Backward(
        ReadOnlySpan<float> x,   // [L]
        ReadOnlySpan<float> dy,  // [L]
        Span<float> dx)          // [L] +=
    {
        ElementwiseMath.RequireLength(dy.Length, x.Length, nameof(dy));
        ElementwiseMath.RequireLength(dx.Length, x.Length, nameof(dx));
        int len = x.Length;
        if (len == 0) return;
        fixed (float* px0 = x, pdy0 = dy, pdx0 = dx)
        {
            float* px = px0, pdy = pdy0, pdx = pdx0;
            int blocks = ElementwiseMath.Blocks(len);
            if (!ElementwiseMath.ShouldSplit(blocks, ElementwiseMath.Block)) BackwardRange(px, pdy, pdx, 0, len);
            else KernelThreads.ParallelFor(blocks, ElementwiseMath.MinChunk(ElementwiseMath.Block), (b0, b1) =>
                BackwardRange(px, pdy, pdx, b0 * ElementwiseMath.Block, Math.Min(len, b1 * ElementwiseMath.Block)));
        }
    }

    private static void ForwardRange(float* x, float* y, int i0, int i1)
    {
        int i = i0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= i1 - 16; i += 16)
            {
                var v = Vector512.Load(x + i);
                var u = Vector512.Create(K0) * v * Vector512.FusedMultiplyAdd(Vector512.Create(K1) * v, v, Vector512<float>.One);
                var s = Vector512<float>.One / (Vector512<float>.One + ElementwiseMath.Exp(u * Vector512.Create(-2f)));
                (v * s).Store(y + i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= i1 - 8; i += 8)
            {
                var v = Vector256.Load(x + i);
                var u = Vector256.Create(K0) * v * Vector256.FusedMultiplyAdd(Vector256.Create(K1) * v, v, Vector256<float>.One);
                var s = Vector256<float>.One / (Vector256<float>.One + ElementwiseMath.Exp(u * Vector256.Create(-2f)));
                (v * s).Store(y + i);
            }
        }
        for (; i < i1; i++)
        {
            float v = x[i];
            float u = K0 * v * MathF.FusedMultiplyAdd(K1 * v, v, 1f);
            y[i] = v / (1f + MathF.Exp(-2f * u));
        }
    }

    private static void BackwardRange(float* x, float* dy, float* dx, int i0, int i1)
    {
        int i = i0;
        if (Vector512.IsHardwareAccelerated)
        {
            var one = Vector512<float>.One;
            for (; i <= i1 - 16; i += 16)
            {
                var v = Vector512.Load(x + i);
                var v2 = v * v;
                var u = Vector512.Create(K0) * v * Vector512.FusedMultiplyAdd(Vector512.Create(K1), v2, one);
                var du = Vector512.Create(K0) * Vector512.FusedMultiplyAdd(Vector512.Create(3f * K1), v2, one);
                var s = one / (one + ElementwiseMath.Exp(u * Vector512.Create(-2f)));
                var d = Vector512.FusedMultiplyAdd(Vector512.Create(2f) * v * s * (one - s), du, s);
                Vector512.FusedMultiplyAdd(Vector512.Load(dy + i), d, Vector512.Load(dx + i)).Store(dx + i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var one = Vector256<float>.One;
            for (; i <= i1 - 8; i += 8)
            {
                var v = Vector256.Load(x + i);
                var v2 = v * v;
                var u = Vector256.Create(K0) * v * Vector256.FusedMultiplyAdd(Vector256.Create(K1), v2, one);
                var du = Vector256.Create(K0) * Vector256.FusedMultiplyAdd(Vector256.Create(3f * K1), v2, one);
                var s = one / (one + ElementwiseMath.Exp(u * Vector256.Create(-2f)));
                var d = Vector256.FusedMultiplyAdd(Vector256.Create(2f) * v * s * (one - s), du, s);
                Vector256.FusedMultiplyAdd(Vector256.Load(dy + i), d, Vector256.Load(dx + i)).Store(dx + i);
            }
        }
        for (; i < i1; i++)
        {
            float v = x[i];
            float v2 = v * v;
            float u = K0 * v * MathF.FusedMultiplyAdd(K1, v2, 1f);
            float du = K0 * MathF.FusedMultiplyAdd(3f * K1, v2, 1f);
            float s = 1f / (1f + MathF.Exp(-2f * u));
            float d = MathF.FusedMultiplyAdd(2f * v * s * (1f - s), du, s);
            dx[i] = MathF.FusedMultiplyAdd(dy[i], d, dx[i]);
        }
    }
}
