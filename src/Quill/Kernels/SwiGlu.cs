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
    {
        ElementwiseMath.RequireLength(up.Length, gate.Length, nameof(up));
        ElementwiseMath.RequireLength(y.Length, gate.Length, nameof(y));
        int len = gate.Length;
        if (len == 0) return;
        fixed (float* pg0 = gate, pu0 = up, py0 = y)
        {
            float* pg = pg0, pu = pu0, py = py0;
            int blocks = ElementwiseMath.Blocks(len);
            if (!ElementwiseMath.ShouldSplit(blocks, ElementwiseMath.Block)) ForwardRange(pg, pu, py, 0, len);
            else KernelThreads.ParallelFor(blocks, ElementwiseMath.MinChunk(ElementwiseMath.Block), (b0, b1) =>
                ForwardRange(pg, pu, py, b0 * ElementwiseMath.Block, Math.Min(len, b1 * ElementwiseMath.Block)));
        }
    }

    /// <summary>dgate += dy * up * silu'(gate); dup += dy * silu(gate).</summary>
    public static void Backward(
        ReadOnlySpan<float> gate,  // [N*H]
        ReadOnlySpan<float> up,    // [N*H]
        ReadOnlySpan<float> dy,    // [N*H]
        Span<float> dgate,         // [N*H] +=
        Span<float> dup)           // [N*H] +=
    {
        int len = gate.Length;
        ElementwiseMath.RequireLength(up.Length, len, nameof(up));
        ElementwiseMath.RequireLength(dy.Length, len, nameof(dy));
        ElementwiseMath.RequireLength(dgate.Length, len, nameof(dgate));
        ElementwiseMath.RequireLength(dup.Length, len, nameof(dup));
        if (len == 0) return;
        fixed (float* pg0 = gate, pu0 = up, pdy0 = dy, pdg0 = dgate, pdu0 = dup)
        {
            float* pg = pg0, pu = pu0, pdy = pdy0, pdg = pdg0, pdu = pdu0;
            int blocks = ElementwiseMath.Blocks(len);
            if (!ElementwiseMath.ShouldSplit(blocks, ElementwiseMath.Block)) BackwardRange(pg, pu, pdy, pdg, pdu, 0, len);
            else KernelThreads.ParallelFor(blocks, ElementwiseMath.MinChunk(ElementwiseMath.Block), (b0, b1) =>
                BackwardRange(pg, pu, pdy, pdg, pdu, b0 * ElementwiseMath.Block, Math.Min(len, b1 * ElementwiseMath.Block)));
        }
    }

    private static void ForwardRange(float* gate, float* up, float* y, int i0, int i1)
    {
        int i = i0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= i1 - 16; i += 16)
            {
                var g = Vector512.Load(gate + i);
                (g * Silu.Sigmoid(g) * Vector512.Load(up + i)).Store(y + i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= i1 - 8; i += 8)
            {
                var g = Vector256.Load(gate + i);
                (g * Silu.Sigmoid(g) * Vector256.Load(up + i)).Store(y + i);
            }
        }
        for (; i < i1; i++) y[i] = gate[i] * Silu.Sigmoid(gate[i]) * up[i];
    }

    private static void BackwardRange(float* gate, float* up, float* dy, float* dgate, float* dup, int i0, int i1)
    {
        int i = i0;
        if (Vector512.IsHardwareAccelerated)
        {
            var one = Vector512<float>.One;
            for (; i <= i1 - 16; i += 16)
            {
                var g = Vector512.Load(gate + i);
                var d = Vector512.Load(dy + i);
                var s = Silu.Sigmoid(g);
                var ds = s * Vector512.FusedMultiplyAdd(g, one - s, one);
                Vector512.FusedMultiplyAdd(d * Vector512.Load(up + i), ds, Vector512.Load(dgate + i)).Store(dgate + i);
                Vector512.FusedMultiplyAdd(d, g * s, Vector512.Load(dup + i)).Store(dup + i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var one = Vector256<float>.One;
            for (; i <= i1 - 8; i += 8)
            {
                var g = Vector256.Load(gate + i);
                var d = Vector256.Load(dy + i);
                var s = Silu.Sigmoid(g);
                var ds = s * Vector256.FusedMultiplyAdd(g, one - s, one);
                Vector256.FusedMultiplyAdd(d * Vector256.Load(up + i), ds, Vector256.Load(dgate + i)).Store(dgate + i);
                Vector256.FusedMultiplyAdd(d, g * s, Vector256.Load(dup + i)).Store(dup + i);
            }
        }
        for (; i < i1; i++)
        {
            float g = gate[i], d = dy[i];
            float s = Silu.Sigmoid(g);
            float ds = s * MathF.FusedMultiplyAdd(g, 1f - s, 1f);
            dgate[i] = MathF.FusedMultiplyAdd(d * up[i], ds, dgate[i]);
            dup[i] = MathF.FusedMultiplyAdd(d, g * s, dup[i]);
        }
    }
}
