// The elementwise pieces Gemma adds to a transformer block, forward and backward side by side: GeGLU (the gated MLP
// with GELU-tanh in place of SiLU), a constant scale (the embedding times sqrt(C)) and the logit soft-cap
// c tanh(x / c). Each flattens its inputs; shapes must match exactly (no broadcasting).
// Glossary: L elements.
using Quill.Kernels;
using Quill.Tensors;

namespace Quill.Autograd.Ops;

/// <summary>y = gelu_tanh(gate) * up.</summary>
public static class GeGluOp
{
    public static Tensor Forward(Graph g, Tensor gate, Tensor up)
    {
        ArgumentNullException.ThrowIfNull(g);
        ArgumentNullException.ThrowIfNull(gate);
        ArgumentNullException.ThrowIfNull(up);
        if (gate.Length != up.Length) throw new ArgumentException($"geglu: {Tensor.Describe(gate.Shape)} vs {Tensor.Describe(up.Shape)}.");
        var act = g.NewTensor(gate.Shape);     // gelu(gate), kept for dup
        Gelu.Forward(gate.Span, act.Span);
        var y = g.NewTensor(gate.Shape);
        Multiply(act.Span, up.Span, y.Span);
        if (g.NeedsGrad(gate, up))
        {
            y.RequiresGrad = true;
            g.Record(new Node(gate, up, act, y), y);
        }
        return y;
    }

    private static void Multiply(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y)
    {
        for (int i = 0; i < y.Length; i++) y[i] = a[i] * b[i];
    }

    private sealed class Node(Tensor gate, Tensor up, Tensor act, Tensor y) : Autograd.Node
    {
        public override void Backward(Graph g)
        {
            if (y.Grad == null) return;
            ReadOnlySpan<float> dy = y.Grad.Span;
            if (gate.RequiresGrad)
            {
                var dAct = g.NewTensor(gate.Shape);    // dy * up = dL / d gelu(gate)
                Multiply(dy, up.Span, dAct.Span);
                var dgate = g.GradForWrite(gate, out bool fresh);
                Gelu.Backward(gate.Span, dAct.Span, dgate.Span, accumulate: !fresh);
            }
            if (up.RequiresGrad)
            {
                Span<float> dup = g.GradOf(up).Span;
                ReadOnlySpan<float> a = act.Span;
                for (int i = 0; i < dup.Length; i++) dup[i] += dy[i] * a[i];
            }
        }
    }
}

/// <summary>y = s x for a constant s.</summary>
public static class ScaleOp
{
    public static Tensor Forward(Graph g, Tensor x, float s)
    {
        ArgumentNullException.ThrowIfNull(g);
        ArgumentNullException.ThrowIfNull(x);
        var y = g.NewTensor(x.Shape);
        x.Span.CopyTo(y.Span);
        Elementwise.Scale(y.Span, s);
        if (g.NeedsGrad(x))
        {
            y.RequiresGrad = true;
            g.Record(new Node(x, y, s), y);
        }
        return y;
    }

    private sealed class Node(Tensor x, Tensor y, float s) : Autograd.Node
    {
        public override void Backward(Graph g)
        {
            if (y.Grad == null) return;
            Span<float> dx = g.GradOf(x).Span;
            ReadOnlySpan<float> dy = y.Grad.Span;
            for (int i = 0; i < dx.Length; i++) dx[i] += s * dy[i];
        }
    }
}

/// <summary>y = c tanh(x / c) (Gemma 2's final logit soft-cap).</summary>
public static class SoftcapOp
{
    public static Tensor Forward(Graph g, Tensor x, float c)
    {
        ArgumentNullException.ThrowIfNull(g);
        ArgumentNullException.ThrowIfNull(x);
        if (!(c > 0) || float.IsInfinity(c)) throw new ArgumentOutOfRangeException(nameof(c), c, "The soft-cap must be positive and finite.");
        var y = g.NewTensor(x.Shape);
        Apply(x.Span, y.Span, c);
        if (g.NeedsGrad(x))
        {
            y.RequiresGrad = true;
            g.Record(new Node(x, y, c), y);
        }
        return y;
    }

    /// <summary>y = c tanh(x / c), in place when x and y are the same span (the inference engine's logits).</summary>
    public static void Apply(ReadOnlySpan<float> x, Span<float> y, float c)
    {
        for (int i = 0; i < y.Length; i++) y[i] = c * MathF.Tanh(x[i] / c);
    }

    private sealed class Node(Tensor x, Tensor y, float c) : Autograd.Node
    {
        public override void Backward(Graph g)
        {
            if (y.Grad == null) return;
            Span<float> dx = g.GradOf(x).Span;
            ReadOnlySpan<float> dy = y.Grad.Span, ys = y.Span;
            for (int i = 0; i < dx.Length; i++)
            {
                float t = ys[i] / c;
                dx[i] += dy[i] * (1 - t * t);
            }
        }
    }
}
