// Causal self-attention over a fused qkv buffer, with optional rotary position embedding applied to q and k in
// place first. The fused kernel keeps no [T, T] matrix: backward recomputes scores from q, k and the saved
// log-sum-exp. The qkv buffer is only read by this op, so rotating it in place is safe; its gradient is written
// by the kernel (not accumulated) and then rotated back for the projection's backward.
// An AttentionMask narrows what each query sees (a layer's sliding window; packed documents, whose positions then
// restart at 0 in each document for RoPE) and soft-caps scores; scale defaults to 1 / sqrt(D) (Gemma sets its own).
// Glossary: B batch, T time, Hq query heads, Hkv key/value heads, D head size.
using Quill.Kernels;
using Quill.Tensors;

namespace Quill.Autograd.Ops;

/// <summary>Rotary tables shared by all layers: cos and sin of [maxT, rotaryDim / 2], from per-pair frequencies.</summary>
public sealed class RopeTables
{
    /// <summary>Plain RoPE: freq_i = theta^(-2i/rotaryDim).</summary>
    public RopeTables(int maxT, int rotaryDim, double theta, RopeStyle style)
        : this(maxT, PlainFrequencies(rotaryDim, theta), style)
    {
    }

    /// <summary>Tables for any frequencies [rotaryDim / 2] (scaled ones come from Models.RopeFrequencies); cos and sin
    /// times <paramref name="magnitude"/> (LongRoPE's attention factor; 1 otherwise).</summary>
    public RopeTables(int maxT, double[] frequencies, RopeStyle style, float magnitude = 1f)
    {
        ArgumentNullException.ThrowIfNull(frequencies);
        MaxT = maxT;
        RotaryDim = 2 * frequencies.Length;
        Style = style;
        Cos = new float[maxT * frequencies.Length];
        Sin = new float[maxT * frequencies.Length];
        Rope.Tables(maxT, frequencies, Cos, Sin);
        if (magnitude != 1f)
        {
            Elementwise.Scale(Cos, magnitude);
            Elementwise.Scale(Sin, magnitude);
        }
    }

    public int MaxT { get; }

    public int RotaryDim { get; }

    public RopeStyle Style { get; }

    /// <summary>cos [MaxT, RotaryDim / 2].</summary>
    public float[] Cos { get; }

    /// <summary>sin [MaxT, RotaryDim / 2].</summary>
    public float[] Sin { get; }

    private static double[] PlainFrequencies(int rotaryDim, double theta)
    {
        if (rotaryDim < 2 || rotaryDim % 2 != 0) throw new ArgumentException($"rotary dims {rotaryDim} must be even and positive.", nameof(rotaryDim));
        var f = new double[rotaryDim / 2];
        for (int i = 0; i < f.Length; i++) f[i] = Math.Pow(theta, -2.0 * i / rotaryDim);
        return f;
    }
}

/// <summary>o [B, T, Hq*D] = causal attention of the q, k, v blocks of qkv [B, T, (Hq + 2 Hkv) * D].</summary>
public static class AttentionOp
{
    /// <summary>mask: window / documents / soft-cap (null: plain causal); scale: score scale (0: 1 / sqrt(D)).</summary>
    public static Tensor Forward(Graph g, Tensor qkv, int hq, int hkv, int d, RopeTables? rope, AttentionMask? mask = null, float scale = 0)
    {
        ArgumentNullException.ThrowIfNull(g);
        ArgumentNullException.ThrowIfNull(qkv);
        int b = qkv.Dim(0), t = qkv.Dim(1), w = qkv.Dim(2);
        if (w != (hq + 2 * hkv) * d) throw new ArgumentException($"qkv width {w} is not (Hq + 2 Hkv) * D = {(hq + 2 * hkv) * d}.");
        if (mask != null && mask.IsPlain) mask = null;
        if (scale == 0) scale = 1f / MathF.Sqrt(d);
        var s = qkv.Span;
        if (rope != null) Rotate(s, b, t, hq, hkv, d, w, rope, mask, inverse: false);
        var o = g.NewTensor([b, t, hq * d]);
        var lse = g.NewTensor([b, hq, t]);
        Attention.Forward(b, t, hq, hkv, d, scale, s, w, s.Slice(hq * d), w, s.Slice((hq + hkv) * d), w, o.Span, lse.Span, mask);
        if (g.NeedsGrad(qkv))
        {
            o.RequiresGrad = true;
            g.Record(new Node(qkv, o, lse, hq, hkv, d, rope, mask, scale), o);
        }
        return o;
    }

    // RoPE on the q and k blocks at each token's position: its index in the row, or in its document when the mask
    // packs documents (each document then rotates as if it were a row of its own).
    private static void Rotate(Span<float> s, int b, int t, int hq, int hkv, int d, int w, RopeTables rope, AttentionMask? mask, bool inverse)
    {
        if (mask?.DocStarts is not { } starts)
        {
            Rope.Apply(s, b, t, hq, d, w, rope.RotaryDim, 0, rope.Cos, rope.Sin, rope.Style, inverse);
            Rope.Apply(s.Slice(hq * d), b, t, hkv, d, w, rope.RotaryDim, 0, rope.Cos, rope.Sin, rope.Style, inverse);
            return;
        }
        for (int row = 0; row < b; row++)
        {
            for (int i0 = 0; i0 < t;)
            {
                int i1 = i0 + 1;
                while (i1 < t && starts[row * t + i1] == i0) i1++;
                var doc = s.Slice((row * t + i0) * w, (i1 - i0 - 1) * w + w);
                Rope.Apply(doc, 1, i1 - i0, hq, d, w, rope.RotaryDim, 0, rope.Cos, rope.Sin, rope.Style, inverse);
                Rope.Apply(doc.Slice(hq * d), 1, i1 - i0, hkv, d, w, rope.RotaryDim, 0, rope.Cos, rope.Sin, rope.Style, inverse);
                i0 = i1;
            }
        }
    }

    private sealed class Node(Tensor qkv, Tensor o, Tensor lse, int hq, int hkv, int d, RopeTables? rope, AttentionMask? mask, float scale) : Autograd.Node
    {
        public override void Backward(Graph g)
        {
            if (o.Grad == null) return;
            int b = qkv.Dim(0), t = qkv.Dim(1), w = qkv.Dim(2);
            var s = qkv.Span;
            // The kernel overwrites every column of dqkv: write straight into a fresh gradient, else into scratch and add.
            var dqkv = g.GradForWrite(qkv, out bool fresh);
            var ds = fresh ? dqkv.Span : g.NewTensor(qkv.Shape).Span;
            Attention.Backward(b, t, hq, hkv, d, scale, s, w, s.Slice(hq * d), w, s.Slice((hq + hkv) * d), w,
                o.Span, lse.Span, o.Grad.Span, ds, ds.Slice(hq * d), ds.Slice((hq + hkv) * d), mask);
            if (rope != null) Rotate(ds, b, t, hq, hkv, d, w, rope, mask, inverse: true);
            if (!fresh) Elementwise.AddInPlace(dqkv.Span, ds);
        }
    }
}
