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

    /// <summary>dx += dy * gelu_tanh'(x).</summary>
    public static void Backward(
        ReadOnlySpan<float> x,   // [L]
        ReadOnlySpan<float> dy,  // [L]
        Span<float> dx)          // [L] +=
        => Backward(x, dy, dx, KernelWidth.Auto);

    /// <summary>
    /// dx += dy * gelu_tanh'(x) (accumulate), or dx = dy * gelu_tanh'(x), which neither reads dx nor needs it
    /// zeroed: the same values as adding into zeros.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx, bool accumulate)
        => Backward(x, dy, dx, KernelWidth.Auto, accumulate);

    /// <summary>At a chosen vector width (tests pin each one).</summary>
    internal static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx, KernelWidth width, bool accumulate = true)
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
            if (!ElementwiseMath.ShouldSplit(blocks, ElementwiseMath.Block)) BackwardRange(w, px, pdy, pdx, 0, len, accumulate);
            else KernelThreads.ParallelFor(blocks, ElementwiseMath.MinChunk(ElementwiseMath.Block), (b0, b1) =>
                BackwardRange(w, px, pdy, pdx, b0 * ElementwiseMath.Block, Math.Min(len, b1 * ElementwiseMath.Block), accumulate));
        }
    }

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
            var u = TOps.Mul(TOps.Mul(TOps.Broadcast(K0), v), TOps.Fma(TOps.Mul(TOps.Broadcast(K1), v), v, TOps.One));
            var s = TOps.Div(TOps.One, TOps.Add(TOps.One, TOps.ExpFull(TOps.Mul(u, TOps.Broadcast(-2f)))));
            TOps.Store(y + i, TOps.Mul(v, s));
        }
        for (; i < i1; i++)
        {
            float v = x[i];
            float u = K0 * v * MathF.FusedMultiplyAdd(K1 * v, v, 1f);
            y[i] = v / (1f + MathF.Exp(-2f * u));
        }
    }

    private static void BackwardRange(KernelWidth w, float* x, float* dy, float* dx, int i0, int i1, bool accumulate)
    {
        switch (w)
        {
            case KernelWidth.Vector512: BackwardRange<Vec512, Vector512<float>>(x, dy, dx, i0, i1, accumulate); break;
            case KernelWidth.Vector256: BackwardRange<Vec256, Vector256<float>>(x, dy, dx, i0, i1, accumulate); break;
            case KernelWidth.Vector128: BackwardRange<Vec128, Vector128<float>>(x, dy, dx, i0, i1, accumulate); break;
            default: BackwardRange<VecScalar, float>(x, dy, dx, i0, i1, accumulate); break;
        }
    }

    private static void BackwardRange<TOps, TV>(float* x, float* dy, float* dx, int i0, int i1, bool accumulate)
        where TOps : IKernelVector<TV> where TV : struct
    {
        int i = i0, l = TOps.Lanes;
        var one = TOps.One;
        for (; i <= i1 - l; i += l)
        {
            var v = TOps.Load(x + i);
            var v2 = TOps.Mul(v, v);
            var u = TOps.Mul(TOps.Mul(TOps.Broadcast(K0), v), TOps.Fma(TOps.Broadcast(K1), v2, one));
            var du = TOps.Mul(TOps.Broadcast(K0), TOps.Fma(TOps.Broadcast(3f * K1), v2, one));
            var s = TOps.Div(one, TOps.Add(one, TOps.ExpFull(TOps.Mul(u, TOps.Broadcast(-2f)))));
            var d = TOps.Fma(TOps.Mul(TOps.Mul(TOps.Mul(TOps.Broadcast(2f), v), s), TOps.Sub(one, s)), du, s);
            TOps.Store(dx + i, TOps.Fma(TOps.Load(dy + i), d, accumulate ? TOps.Load(dx + i) : TOps.Zero));
        }
        for (; i < i1; i++)
        {
            float v = x[i];
            float v2 = v * v;
            float u = K0 * v * MathF.FusedMultiplyAdd(K1, v2, 1f);
            float du = K0 * MathF.FusedMultiplyAdd(3f * K1, v2, 1f);
            float s = 1f / (1f + MathF.Exp(-2f * u));
            float d = MathF.FusedMultiplyAdd(2f * v * s * (1f - s), du, s);
            dx[i] = MathF.FusedMultiplyAdd(dy[i], d, accumulate ? dx[i] : 0f);
        }
    }
}
