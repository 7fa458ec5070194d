// The two ops a mixture of experts adds to the tape (TransformerModel builds the rest from LinearOp, GatherRowsOp and
// SwiGluOp, one expert at a time over the rows routed to it):
//   MoeRouteOp    weights [N, k] = the top-k softmax gates of router logits [N, E] (Kernels.MoeRouting), with the
//                 chosen experts beside them (not differentiable: which experts, only how much, gets a gradient);
//                 backward: dlogits from dweights through the softmax (and the renormalization when asked).
//   MoeCombineOp  y [N, C] = sum over each token's k picks of weight * the chosen expert's output row for it;
//                 backward: d expert row = weight * dy[token], d weight = <expert row, dy[token]>.
// The router's gradient is therefore exact for the chosen experts (PyTorch's autograd through topk + softmax gives the
// same). No load-balancing auxiliary loss (transformers adds one only with output_router_logits).
// Glossary: N tokens, E experts, k experts per token, C width, m rows routed to one expert.
using Quill.Kernels;
using Quill.Tensors;

namespace Quill.Autograd.Ops;

/// <summary>Top-k routing: gate weights [N, k] from router logits [N, E].</summary>
public static class MoeRouteOp
{
    /// <summary>weights [N, k]; chosen [N * k] holds each token's experts, largest logit first.</summary>
    public static Tensor Forward(Graph g, Tensor logits, int k, bool normalize, out int[] chosen)
    {
        ArgumentNullException.ThrowIfNull(g);
        ArgumentNullException.ThrowIfNull(logits);
        int e = logits.Dim(-1), n = logits.Length / e;
        var y = g.NewTensor([n, k]);
        chosen = new int[n * k];
        var ls = logits.Span;
        var ys = y.Span;
        for (int r = 0; r < n; r++) MoeRouting.Route(ls.Slice(r * e, e), k, normalize, chosen.AsSpan(r * k, k), ys.Slice(r * k, k));
        if (g.NeedsGrad(logits))
        {
            y.RequiresGrad = true;
            g.Record(new Node(logits, y, chosen, k, normalize), y);
        }
        return y;
    }

    private sealed class Node(Tensor logits, Tensor y, int[] chosen, int k, bool normalize) : Autograd.Node
    {
        public override void Backward(Graph g)
        {
            if (y.Grad == null) return;
            int e = logits.Dim(-1), n = logits.Length / e;
            var ls = logits.Span;
            var ys = y.Span;
            var dy = y.Grad.Span;
            var dl = g.GradOf(logits).Span;
            for (int r = 0; r < n; r++)
                MoeRouting.Backward(ls.Slice(r * e, e), chosen.AsSpan(r * k, k), ys.Slice(r * k, k), dy.Slice(r * k, k), normalize, dl.Slice(r * e, e));
        }
    }
}

/// <summary>The weighted sum of each token's chosen experts' outputs.</summary>
public static class MoeCombineOp
{
    /// <summary>
    /// y [shape, ending in C] with y[t] = sum_s weights[t, s] outputs[expert][row]; picks[expert] lists, per row of
    /// that expert's output [m, C], the pick t * k + s it answers (null with a null output: no token chose it).
    /// </summary>
    public static Tensor Forward(Graph g, Tensor?[] outputs, int[]?[] picks, Tensor weights, int[] shape)
    {
        ArgumentNullException.ThrowIfNull(g);
        ArgumentNullException.ThrowIfNull(outputs);
        ArgumentNullException.ThrowIfNull(picks);
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(shape);
        int c = shape[^1], k = weights.Dim(-1);
        var y = g.NewTensor(shape, zero: true);
        var ys = y.Span;
        var ws = weights.Span;
        bool needs = weights.RequiresGrad;
        for (int ex = 0; ex < outputs.Length; ex++)
        {
            if (outputs[ex] is not { } o) continue;
            needs |= o.RequiresGrad;
            var os = o.Span;
            var p = picks[ex]!;
            for (int j = 0; j < p.Length; j++) MoeRouting.AddScaled(ys.Slice(p[j] / k * c, c), os.Slice(j * c, c), ws[p[j]]);
        }
        if (g.Recording && needs)
        {
            y.RequiresGrad = true;
            g.Record(new Node(outputs, picks, weights, y), y);
        }
        return y;
    }

    private sealed class Node(Tensor?[] outputs, int[]?[] picks, Tensor weights, Tensor y) : Autograd.Node
    {
        public override void Backward(Graph g)
        {
            if (y.Grad == null) return;
            int c = y.Dim(-1), k = weights.Dim(-1);
            var dy = y.Grad.Span;
            var ws = weights.Span;
            Span<float> dw = weights.RequiresGrad ? g.GradOf(weights).Span : default;
            for (int ex = 0; ex < outputs.Length; ex++)
            {
                if (outputs[ex] is not { } o) continue;
                var os = o.Span;
                var p = picks[ex]!;
                Span<float> dout = o.RequiresGrad ? g.GradOf(o).Span : default;
                for (int j = 0; j < p.Length; j++)
                {
                    var dyt = dy.Slice(p[j] / k * c, c);
                    if (o.RequiresGrad) MoeRouting.AddScaled(dout.Slice(j * c, c), dyt, ws[p[j]]);
                    if (weights.RequiresGrad) dw[p[j]] += (float)MoeRouting.Dot(os.Slice(j * c, c), dyt);
                }
            }
        }
    }
}
