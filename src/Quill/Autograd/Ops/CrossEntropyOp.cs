// Mean cross-entropy of logits against target ids, fused with the softmax: forward saves only the per-row
// log-sum-exp, backward writes the logits gradient directly (softmax - onehot) / count. Rows whose target is
// negative are ignored (masked prompt tokens in fine-tuning).
// Glossary: N rows, V vocab.
using Quill.Kernels;
using Quill.Tensors;

namespace Quill.Autograd.Ops;

/// <summary>loss [1] = mean over kept rows of -log softmax(logits)[target].</summary>
public static class CrossEntropyOp
{
    /// <param name="g">The graph.</param>
    /// <param name="logits">[N, V] (any leading shape, V last).</param>
    /// <param name="targets">[N] target ids; negative = ignored.</param>
    public static Tensor Forward(Graph g, Tensor logits, int[] targets)
    {
        ArgumentNullException.ThrowIfNull(g);
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(targets);
        int v = logits.Dim(-1), n = logits.Length / v;
        if (targets.Length < n) throw new ArgumentException($"{targets.Length} targets for {n} rows.");
        var lse = g.NewTensor([n]);
        double sum = CrossEntropy.Forward(logits.Span, targets.AsSpan(0, n), lse.Span, n, v);
        int count = 0;
        for (int i = 0; i < n; i++) if (targets[i] >= 0) count++;
        var loss = g.NewTensor([1]);
        loss.Span[0] = count == 0 ? 0f : (float)(sum / count);
        if (g.NeedsGrad(logits) && count > 0)
        {
            loss.RequiresGrad = true;
            g.Record(new Node(logits, targets.AsSpan(0, n).ToArray(), lse, loss, count), loss);
        }
        return loss;
    }

    private sealed class Node(Tensor logits, int[] targets, Tensor lse, Tensor loss, int count) : Autograd.Node
    {
        public override void Backward(Graph g)
        {
            if (loss.Grad == null) return;
            int v = logits.Dim(-1), n = logits.Length / v;
            float scale = loss.Grad.Span[0] / count;
            if (logits.Grad == null)
            {
                // Sole consumer of the logits: write the gradient straight into fresh storage.
                var dl = g.GradForWrite(logits, out _);
                CrossEntropy.Backward(logits.Span, targets, lse.Span, scale, dl.Span, n, v);
            }
            else
            {
                var tmp = g.NewTensor(logits.Shape);
                CrossEntropy.Backward(logits.Span, targets, lse.Span, scale, tmp.Span, n, v);
                Elementwise.AddInPlace(g.GradOf(logits).Span, tmp.Span);
            }
        }
    }
}
