// Elementwise ops of the transformer blocks: residual add, GELU (tanh), SwiGLU and dropout, forward and backward
// side by side. Each flattens its inputs; shapes must match exactly (no broadcasting).
using Quill.Kernels;
using Quill.Tensors;

namespace Quill.Autograd.Ops;

/// <summary>y = a + b (the residual stream).</summary>
public static class AddOp
{
    public static Tensor Forward(Graph g, Tensor a, Tensor b)
    {
        ArgumentNullException.ThrowIfNull(g);
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Length != b.Length) throw new ArgumentException($"add: {Tensor.Describe(a.Shape)} vs {Tensor.Describe(b.Shape)}.");
        var y = g.NewTensor(a.Shape);
        Elementwise.Add(a.Span, b.Span, y.Span);
        if (g.NeedsGrad(a, b))
        {
            y.RequiresGrad = true;
            g.Record(new Node(a, b, y), y);
        }
        return y;
    }

    private sealed class Node(Tensor a, Tensor b, Tensor y) : Autograd.Node
    {
        public override void Backward(Graph g)
        {
            if (y.Grad == null) return;
            // y's gradient is complete and no longer needed once this runs (its readers ran before), so an input
            // without a gradient yet can take over its storage instead of a zeroed copy; both inputs may share it,
            // since the graph copies a shared gradient apart before anyone adds into it (Graph.Exclusive; also
            // when a and b are one tensor: the second call then adds y's gradient into a copy).
            if (a.RequiresGrad) g.AccumulateGrad(a, y.Grad, canAlias: true);
            if (b.RequiresGrad) g.AccumulateGrad(b, y.Grad, canAlias: true);
        }
    }
}

/// <summary>y = gelu(x), tanh approximation.</summary>
public static class GeluOp
{
    public static Tensor Forward(Graph g, Tensor x)
    {
        ArgumentNullException.ThrowIfNull(g);
        ArgumentNullException.ThrowIfNull(x);
        var y = g.NewTensor(x.Shape);
        Gelu.Forward(x.Span, y.Span);
        if (g.NeedsGrad(x))
        {
            y.RequiresGrad = true;
            g.Record(new Node(x, y), y);
        }
        return y;
    }

    private sealed class Node(Tensor x, Tensor y) : Autograd.Node
    {
        public override void Backward(Graph g)
        {
            if (y.Grad == null) return;
            // x's gradient is usually new here (a projection's output): written, not zeroed and then added to
            var dx = g.GradForWrite(x, out bool fresh);
            Gelu.Backward(x.Span, y.Grad.Span, dx.Span, accumulate: !fresh);
        }
    }
}

/// <summary>y = silu(gate) * up.</summary>
public static class SwiGluOp
{
    public static Tensor Forward(Graph g, Tensor gate, Tensor up)
    {
        ArgumentNullException.ThrowIfNull(g);
        ArgumentNullException.ThrowIfNull(gate);
        ArgumentNullException.ThrowIfNull(up);
        var y = g.NewTensor(gate.Shape);
        SwiGlu.Forward(gate.Span, up.Span, y.Span);
        if (g.NeedsGrad(gate, up))
        {
            y.RequiresGrad = true;
            g.Record(new Node(gate, up, y), y);
        }
        return y;
    }

    private sealed class Node(Tensor gate, Tensor up, Tensor y) : Autograd.Node
    {
        public override void Backward(Graph g)
        {
            if (y.Grad == null) return;
            var dgate = g.GradForWrite(gate, out bool freshGate);
            var dup = g.GradForWrite(up, out bool freshUp);
            SwiGlu.Backward(gate.Span, up.Span, y.Grad.Span, dgate.Span, dup.Span, accumulateGate: !freshGate, accumulateUp: !freshUp);
        }
    }
}

/// <summary>Dropout with a counter-based mask: the same seed gives the same mask on any thread count.</summary>
public static class DropoutOp
{
    /// <summary>Returns x itself when p is 0 or the graph does not record (inference).</summary>
    public static Tensor Forward(Graph g, Tensor x, float p, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(g);
        ArgumentNullException.ThrowIfNull(x);
        if (p <= 0f || !g.Recording) return x;
        var y = g.NewTensor(x.Shape);
        Dropout.Forward(x.Span, y.Span, seed, p);
        if (x.RequiresGrad)
        {
            y.RequiresGrad = true;
            g.Record(new Node(x, y, p, seed), y);
        }
        return y;
    }

    private sealed class Node(Tensor x, Tensor y, float p, ulong seed) : Autograd.Node
    {
        public override void Backward(Graph g)
        {
            if (y.Grad != null) Dropout.Backward(y.Grad.Span, g.GradOf(x).Span, seed, p);
        }
    }
}
