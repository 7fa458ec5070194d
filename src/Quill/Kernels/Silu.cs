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
        => Forward(x, y, KernelWidth.Auto);

    /// <summary>At a chosen vector width (tests pin each one).</summary>
    internal static void Forward(ReadOnlySpan<float> x, Span<float> y, KernelWidth width)
    {
        ElementwiseMath.RequireLength(y.Length, x.Length, nameof(y));
        int len = x.Length;
        if (len == 0) return;
        var w = KernelWidths.Resolve(width);
        fixed (float* px0 = x, py0 = y)
        {
            float* px = px0, py = py0;
            int blocks = ElementwiseMath.Blocks(len);
            if (!ElementwiseMath.ShouldSplit(blocks, ElementwiseMath.Block)) ForwardRange(w, px, py, 0, len);
            else KernelThreads.ParallelFor(blocks, ElementwiseMath.MinChunk(ElementwiseMath.Block), (b0, b1) =>
                ForwardRange(w, px, py, b0 * ElementwiseMath.Block, Math.Min(len, b1 * ElementwiseMath.Block)));
        }
    }

    /// <summary>dx += dy * silu'(x).</summary>
    public static void Backward(
        ReadOnlySpan<float> x,   // [L]
        ReadOnlySpan<float> dy,  // [L]
        Span<float> dx)          // [L] +=
        => Backward(x, dy, dx, KernelWidth.Auto);

    /// <summary>At a chosen vector width (tests pin each one).</summary>
    internal static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx, KernelWidth width)
    {
        ElementwiseMath.RequireLength(dy.Length, x.Length, nameof(dy));
        ElementwiseMath.RequireLength(dx.Length, x.Length, nameof(dx));
        int len = x.Length;
        if (len == 0) return;
        var w = KernelWidths.Resolve(width);
        fixed (float* px0 = x, pdy0 = dy, pdx0 = dx)
        {
            float* px = px0, pdy = pdy0, pdx = pdx0;
            int blocks = ElementwiseMath.Blocks(len);
            if (!ElementwiseMath.ShouldSplit(blocks, ElementwiseMath.Block)) BackwardRange(w, px, pdy, pdx, 0, len);
            else KernelThreads.ParallelFor(blocks, ElementwiseMath.MinChunk(ElementwiseMath.Block), (b0, b1) =>
                BackwardRange(w, px, pdy, pdx, b0 * ElementwiseMath.Block, Math.Min(len, b1 * ElementwiseMath.Block)));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static TV Sigmoid<TOps, TV>(TV v) where TOps : IKernelVector<TV> where TV : struct =>
        TOps.Div(TOps.One, TOps.Add(TOps.One, TOps.ExpFull(TOps.Neg(v))));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Sigmoid(float v) => 1f / (1f + MathF.Exp(-v));

    private static void ForwardRange(KernelWidth w, float* x, float* y, int i0, int i1)
    {
        switch (w)
        {
            case KernelWidth.Vector512: ForwardRange<Vec512, Vector512<float>>(x, y, i0, i1); break;
            case KernelWidth.Vector256: ForwardRange<Vec256, Vector256<float>>(x, y, i0, i1); break;
            case KernelWidth.Vector128: ForwardRange<Vec128, Vector128<float>>(x, y, i0, i1); break;
            default: ForwardRange<VecScalar, float>(x, y, i0, i1); break;
        }
    }

    private static void ForwardRange<TOps, TV>(float* x, float* y, int i0, int i1)
        where TOps : IKernelVector<TV> where TV : struct
    {
        int i = i0, l = TOps.Lanes;
        for (; i <= i1 - l; i += l)
        {
            var v = TOps.Load(x + i);
            TOps.Store(y + i, TOps.Mul(v, Sigmoid<TOps, TV>(v)));
        }
        for (; i < i1; i++) y[i] = x[i] * Sigmoid(x[i]);
    }

    private static void BackwardRange(KernelWidth w, float* x, float* dy, float* dx, int i0, int i1)
    {
        switch (w)
        {
            case KernelWidth.Vector512: BackwardRange<Vec512, Vector512<float>>(x, dy, dx, i0, i1); break;
            case KernelWidth.Vector256: BackwardRange<Vec256, Vector256<float>>(x, dy, dx, i0, i1); break;
            case KernelWidth.Vector128: BackwardRange<Vec128, Vector128<float>>(x, dy, dx, i0, i1); break;
            default: BackwardRange<VecScalar, float>(x, dy, dx, i0, i1); break;
        }
    }

    private static void BackwardRange<TOps, TV>(float* x, float* dy, float* dx, int i0, int i1)
        where TOps : IKernelVector<TV> where TV : struct
    {
        int i = i0, l = TOps.Lanes;
        var one = TOps.One;
        for (; i <= i1 - l; i += l)
        {
            var v = TOps.Load(x + i);
            var s = Sigmoid<TOps, TV>(v);
            var d = TOps.Mul(s, TOps.Fma(v, TOps.Sub(one, s), one));
            TOps.Store(dx + i, TOps.Fma(TOps.Load(dy + i), d, TOps.Load(dx + i)));
        }
        for (; i < i1; i++)
        {
            float s = Sigmoid(x[i]);
            float d = s * MathF.FusedMultiplyAdd(x[i], 1f - s, 1f);
            dx[i] = MathF.FusedMultiplyAdd(dy[i], d, dx[i]);
        }
    }
}
