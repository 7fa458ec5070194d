// The log-probability of each row's completion: logp[r] = sum over the row's kept targets of log softmax(logits)[target]
// (targets below zero, prompt tokens and padding, are left out), the quantity preference losses compare (DPO, IPO,
// ORPO, SimPO: wave2-facts section 2, "summed over completion tokens only"). Fused with the softmax like
// CrossEntropyOp: forward keeps only the per-position log-sum-exp, backward writes d logits = dlogp[r] * (onehot -
// softmax) on kept positions and 0 elsewhere.
// Glossary: R rows, T positions per row, V vocab.
using Quill.Kernels;
using Quill.Tensors;

namespace Quill.Autograd.Ops;

/// <summary>logp [R] = per-row sum of log softmax(logits)[target] over targets &gt;= 0.</summary>
public static class SequenceLogProbOp
{
    /// <param name="g">The graph.</param>
    /// <param name="logits">[R, T, V] (any leading shape whose rows split evenly into <paramref name="rows"/>).</param>
    /// <param name="targets">[R * T] target ids; negative = not counted.</param>
    /// <param name="rows">R.</param>
    public static Tensor Forward(Graph g, Tensor logits, int[] targets, int rows)
    {
        ArgumentNullException.ThrowIfNull(g);
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(targets);
        int v = logits.Dim(-1), n = logits.Length / v;
        if (rows <= 0 || n % rows != 0) throw new ArgumentException($"{n} positions do not split into {rows} rows.");
        if (targets.Length < n) throw new ArgumentException($"{targets.Length} targets for {n} positions.");
        int t = n / rows;
        var lse = g.NewTensor([n]);
        var logp = g.NewTensor([rows]);
        for (int r = 0; r < rows; r++)
        {
            double nll = CrossEntropy.Forward(logits.Span.Slice(r * t * v, t * v), targets.AsSpan(r * t, t), lse.Span.Slice(r * t, t), t, v);
            logp.Span[r] = (float)-nll;
        }
        if (g.NeedsGrad(logits))
        {
            logp.RequiresGrad = true;
            g.Record(new Node(logits, targets.AsSpan(0, n).ToArray(), lse, logp, rows));
        }
        return logp;
    }

    private sealed class Node(Tensor logits, int[] targets, Tensor lse, Tensor logp, int rows) : Autograd.Node
    {
        public override void Backward(Graph g)
        {
            if (logp.Grad == null) return;
            int v = logits.Dim(-1), n = logits.Length / v, t = n / rows;
            var dst = logits.Grad == null ? (logits.Grad = g.NewTensor(logits.Shape)) : g.NewTensor(logits.Shape);
            for (int r = 0; r < rows; r++)
            {
                // d logp / d logits = onehot - softmax: the cross-entropy gradient with the sign flipped
                CrossEntropy.Backward(logits.Span.Slice(r * t * v, t * v), targets.AsSpan(r * t, t), lse.Span.Slice(r * t, t),
                    -logp.Grad.Span[r], dst.Span.Slice(r * t * v, t * v), t, v);
            }
            if (!ReferenceEquals(dst, logits.Grad)) Elementwise.AddInPlace(g.GradOf(logits).Span, dst.Span);
        }
    }
}
