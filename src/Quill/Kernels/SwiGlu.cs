// SwiGLU gating (Llama MLP), forward and backward side by side: y = silu(gate) * up;
// dgate += dy * up * s (1 + gate (1 - s)), dup += dy * gate * s, with s = sigmoid(gate).
// Large ranges are split across threads in fixed blocks, so results do not depend on the thread count.
// Does not handle: the fused [gate | up] layout (callers pass the two halves as separate spans) or GeGLU.
// Glossary: N rows, H hidden units; every span is [N*H].
using System.Runtime.Intrinsics;

namespace Quill.Kernels;

/// <summary>Elementwise SwiGLU: silu(gate) * up.</summary>
public static unsafe class SwiGlu
{
    /// <summary>y = silu(gate) * up.</summary>
    public static void Forward(
        ReadOnlySpan<float> gate,  // [N*H]
        ReadOnlySpan<float> up,    // [N*H]
        Span<float> y)             // [N*H]
        => Forward(gate, up, y, KernelWidth.Auto);

    /// <summary>At a chosen vector width (tests pin each one).</summary>
    internal static void Forward(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> y, KernelWidth width)
    {
        ElementwiseMath.RequireLength(up.Length, gate.Length, nameof(up));
        ElementwiseMath.RequireLength(y.Length, gate.Length, nameof(y));
        int len = gate.Length;
        if (len == 0) return;
        var w = KernelWidths.Resolve(width);
        fixed (float* pg0 = gate, pu0 = up, py0 = y)
        {
            float* pg = pg0, pu = pu0, py = py0;
            int blocks = ElementwiseMath.Blocks(len);
            if (!ElementwiseMath.ShouldSplit(blocks, ElementwiseMath.Block)) ForwardRange(w, pg, pu, py, 0, len);
            else KernelThreads.ParallelFor(blocks, ElementwiseMath.MinChunk(ElementwiseMath.Block), (b0, b1) =>
                ForwardRange(w, pg, pu, py, b0 * ElementwiseMath.Block, Math.Min(len, b1 * ElementwiseMath.Block)));
        }
    }

    /// <summary>dgate += dy * up * silu'(gate); dup += dy * silu(gate).</summary>
    public static void Backward(
        ReadOnlySpan<float> gate,  // [N*H]
        ReadOnlySpan<float> up,    // [N*H]
        ReadOnlySpan<float> dy,    // [N*H]
        Span<float> dgate,         // [N*H] +=
        Span<float> dup)           // [N*H] +=
        => Backward(gate, up, dy, dgate, dup, KernelWidth.Auto);

    /// <summary>
    /// As Backward, each gradient added to (accumulate) or written over without being read (the same values as
    /// adding into zeros, with no zeroing).
    /// </summary>
    public static void Backward(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, ReadOnlySpan<float> dy, Span<float> dgate, Span<float> dup,
        bool accumulateGate, bool accumulateUp)
        => Backward(gate, up, dy, dgate, dup, KernelWidth.Auto, accumulateGate, accumulateUp);

    /// <summary>At a chosen vector width (tests pin each one).</summary>
    internal static void Backward(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, ReadOnlySpan<float> dy, Span<float> dgate, Span<float> dup, KernelWidth width,
        bool accumulateGate = true, bool accumulateUp = true)
    {
        int len = gate.Length;
        ElementwiseMath.RequireLength(up.Length, len, nameof(up));
        ElementwiseMath.RequireLength(dy.Length, len, nameof(dy));
        ElementwiseMath.RequireLength(dgate.Length, len, nameof(dgate));
        ElementwiseMath.RequireLength(dup.Length, len, nameof(dup));
        if (len == 0) return;
        var w = KernelWidths.Resolve(width);
        fixed (float* pg0 = gate, pu0 = up, pdy0 = dy, pdg0 = dgate, pdu0 = dup)
        {
            float* pg = pg0, pu = pu0, pdy = pdy0, pdg = pdg0, pdu = pdu0;
            int blocks = ElementwiseMath.Blocks(len);
            if (!ElementwiseMath.ShouldSplit(blocks, ElementwiseMath.Block)) BackwardRange(w, pg, pu, pdy, pdg, pdu, 0, len, accumulateGate, accumulateUp);
            else KernelThreads.ParallelFor(blocks, ElementwiseMath.MinChunk(ElementwiseMath.Block), (b0, b1) =>
                BackwardRange(w, pg, pu, pdy, pdg, pdu, b0 * ElementwiseMath.Block, Math.Min(len, b1 * ElementwiseMath.Block), accumulateGate, accumulateUp));
        }
    }

    private static void ForwardRange(KernelWidth w, float* gate, float* up, float* y, int i0, int i1)
    {
        switch (w)
        {
            case KernelWidth.Vector512: ForwardRange<Vec512, Vector512<float>>(gate, up, y, i0, i1); break;
            case KernelWidth.Vector256: ForwardRange<Vec256, Vector256<float>>(gate, up, y, i0, i1); break;
            case KernelWidth.Vector128: ForwardRange<Vec128, Vector128<float>>(gate, up, y, i0, i1); break;
            default: ForwardRange<VecScalar, float>(gate, up, y, i0, i1); break;
        }
    }

    private static void ForwardRange<TOps, TV>(float* gate, float* up, float* y, int i0, int i1)
        where TOps : IKernelVector<TV> where TV : struct
    {
        int i = i0, l = TOps.Lanes;
        for (; i <= i1 - l; i += l)
        {
            var g = TOps.Load(gate + i);
            TOps.Store(y + i, TOps.Mul(TOps.Mul(g, Silu.Sigmoid<TOps, TV>(g)), TOps.Load(up + i)));
        }
        for (; i < i1; i++) y[i] = gate[i] * Silu.Sigmoid(gate[i]) * up[i];
    }

    private static void BackwardRange(KernelWidth w, float* gate, float* up, float* dy, float* dgate, float* dup, int i0, int i1, bool accGate, bool accUp)
    {
        switch (w)
        {
            case KernelWidth.Vector512: BackwardRange<Vec512, Vector512<float>>(gate, up, dy, dgate, dup, i0, i1, accGate, accUp); break;
            case KernelWidth.Vector256: BackwardRange<Vec256, Vector256<float>>(gate, up, dy, dgate, dup, i0, i1, accGate, accUp); break;
            case KernelWidth.Vector128: BackwardRange<Vec128, Vector128<float>>(gate, up, dy, dgate, dup, i0, i1, accGate, accUp); break;
            default: BackwardRange<VecScalar, float>(gate, up, dy, dgate, dup, i0, i1, accGate, accUp); break;
        }
    }

    private static void BackwardRange<TOps, TV>(float* gate, float* up, float* dy, float* dgate, float* dup, int i0, int i1, bool accGate, bool accUp)
        where TOps : IKernelVector<TV> where TV : struct
    {
        int i = i0, l = TOps.Lanes;
        var one = TOps.One;
        for (; i <= i1 - l; i += l)
        {
            var g = TOps.Load(gate + i);
            var d = TOps.Load(dy + i);
            var s = Silu.Sigmoid<TOps, TV>(g);
            var ds = TOps.Mul(s, TOps.Fma(g, TOps.Sub(one, s), one));
            TOps.Store(dgate + i, TOps.Fma(TOps.Mul(d, TOps.Load(up + i)), ds, accGate ? TOps.Load(dgate + i) : TOps.Zero));
            TOps.Store(dup + i, TOps.Fma(d, TOps.Mul(g, s), accUp ? TOps.Load(dup + i) : TOps.Zero));
        }
        for (; i < i1; i++)
        {
            float g = gate[i], d = dy[i];
            float s = Silu.Sigmoid(g);
            float ds = s * MathF.FusedMultiplyAdd(g, 1f - s, 1f);
            dgate[i] = MathF.FusedMultiplyAdd(d * up[i], ds, accGate ? dgate[i] : 0f);
            dup[i] = MathF.FusedMultiplyAdd(d, g * s, accUp ? dup[i] : 0f);
        }
    }
}
