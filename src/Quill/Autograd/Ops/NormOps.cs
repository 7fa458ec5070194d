// LayerNorm (GPT-2) and RMSNorm (Llama) over the last dimension, forward and backward side by side. The per-row
// statistics (mean, 1/std) are saved for the backward pass. A frozen input, scale or bias (RequiresGrad false: a
// frozen base under a LoRA adapter) gets no gradient buffer; the kernel's share for it goes to arena scratch.
// Glossary: N rows, C channels.
using Quill.Kernels;
using Quill.Tensors;

namespace Quill.Autograd.Ops;

/// <summary>LayerNorm with optional bias.</summary>
public static class LayerNormOp
{
    /// <summary>y [..., C] = (x - mean) * rstd * gamma + beta.</summary>
    public static Tensor Forward(Graph g, Tensor x, Tensor gamma, Tensor? beta, float eps)
    {
        ArgumentNullException.ThrowIfNull(g);
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(gamma);
        int c = x.Dim(-1), n = x.Length / c;
        var y = g.NewTensor(x.Shape);
        var mean = g.NewTensor([n]);
        var rstd = g.NewTensor([n]);
        LayerNorm.Forward(x.Span, gamma.Span, beta == null ? default : beta.Span, y.Span, mean.Span, rstd.Span, n, c, eps);
        if (g.Recording && (x.RequiresGrad || gamma.RequiresGrad || (beta?.RequiresGrad ?? false)))
        {
            y.RequiresGrad = true;
            g.Record(new Node(x, gamma, beta, y, mean, rstd), y);
        }
        return y;
    }

    /// <summary>t's gradient buffer when t trains, else zeroed scratch the kernel may add to (t gets no buffer).</summary>
    internal static Span<float> GradOrScratch(Graph g, Tensor t) => t.RequiresGrad ? g.GradOf(t).Span : g.NewTensor(t.Shape, zero: true).Span;

    private sealed class Node(Tensor x, Tensor gamma, Tensor? beta, Tensor y, Tensor mean, Tensor rstd) : Autograd.Node
    {
        public override void Backward(Graph g)
        {
            if (y.Grad == null) return;
            int c = x.Dim(-1), n = x.Length / c;
            LayerNorm.Backward(y.Grad.Span, x.Span, gamma.Span, mean.Span, rstd.Span, GradOrScratch(g, x), GradOrScratch(g, gamma),
                beta is { RequiresGrad: true } ? g.GradOf(beta).Span : default, n, c);
        }
    }
}

/// <summary>RMSNorm (no mean subtraction, no bias).</summary>
public static class RmsNormOp
{
    /// <summary>y [..., C] = x * rstd * gamma with rstd = 1/sqrt(mean(x^2) + eps).</summary>
    public static Tensor Forward(Graph g, Tensor x, Tensor gamma, float eps)
    {
        ArgumentNullException.ThrowIfNull(g);
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(gamma);
        int c = x.Dim(-1), n = x.Length / c;
        var y = g.NewTensor(x.Shape);
        var rstd = g.NewTensor([n]);
        RmsNorm.Forward(x.Span, gamma.Span, y.Span, rstd.Span, n, c, eps);
        if (g.Recording && (x.RequiresGrad || gamma.RequiresGrad))
        {
            y.RequiresGrad = true;
            g.Record(new Node(x, gamma, y, rstd), y);
        }
        return y;
    }

    private sealed class Node(Tensor x, Tensor gamma, Tensor y, Tensor rstd) : Autograd.Node
    {
        public override void Backward(Graph g)
        {
            if (y.Grad == null) return;
            int c = x.Dim(-1), n = x.Length / c;
            RmsNorm.Backward(y.Grad.Span, x.Span, gamma.Span, rstd.Span, LayerNormOp.GradOrScratch(g, x), LayerNormOp.GradOrScratch(g, gamma), n, c);
        }
    }
}
