// SiLU (swish), forward and backward side by side: y = x * sigmoid(x), dx += dy * s (1 + x (1 - s)), s = sigmoid(x).
// Large ranges are split across threads in fixed blocks, so results do not depend on the thread count.
// Does not handle: swish with a beta other than 1.
// Glossary: L elements.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Quill.Kernels;

/// <summary>Elementwise SiLU: x * sigmoid(x).</summary>
public static unsafe class Silu
{
    /// <summary>y = x * sigmoid(x).</summary>
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

    /// <summary>dx += dy * silu'(x).</summary>
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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Sigmoid(Vector512<float> v) =>
        Vector512<float>.One / (Vector512<float>.One + ElementwiseMath.Exp(-v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Sigmoid(Vector256<float> v) =>
        Vector256<float>.One / (Vector256<float>.One + ElementwiseMath.Exp(-v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Sigmoid(float v) => 1f / (1f + MathF.Exp(-v));

    private static void ForwardRange(float* x, float* y, int i0, int i1)
    {
        int i = i0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= i1 - 16; i += 16)
            {
                var v = Vector512.Load(x + i);
                (v * Sigmoid(v)).Store(y + i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= i1 - 8; i += 8)
            {
                var v = Vector256.Load(x + i);
                (v * Sigmoid(v)).Store(y + i);
            }
        }
        for (; i < i1; i++) y[i] = x[i] * Sigmoid(x[i]);
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
                var s = Sigmoid(v);
                var d = s * Vector512.FusedMultiplyAdd(v, one - s, one);
                Vector512.FusedMultiplyAdd(Vector512.Load(dy + i), d, Vector512.Load(dx + i)).Store(dx + i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var one = Vector256<float>.One;
            for (; i <= i1 - 8; i += 8)
            {
                var v = Vector256.Load(x + i);
                var s = Sigmoid(v);
                var d = s * Vector256.FusedMultiplyAdd(v, one - s, one);
                Vector256.FusedMultiplyAdd(Vector256.Load(dy + i), d, Vector256.Load(dx + i)).Store(dx + i);
            }
        }
        for (; i < i1; i++)
        {
            float s = Sigmoid(x[i]);
            float d = s * MathF.FusedMultiplyAdd(x[i], 1f - s, 1f);
            dx[i] = MathF.FusedMultiplyAdd(dy[i], d, dx[i]);
        }
    }
}
