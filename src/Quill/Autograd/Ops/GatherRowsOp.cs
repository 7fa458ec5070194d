// Rows picked out of a matrix, forward and backward side by side: y [M, C] = x [N, C] rows[0..M). The loss of a
// fine-tuning step uses it to run the head and the cross-entropy only on the positions that have a target (prompt
// and padding positions are masked), so neither the logits nor their gradient are ever made for the others.
// Backward adds each row of dy back into its row of dx; rows not picked get no gradient (they had none).
// Glossary: N rows of x, M rows picked, C columns.
using Quill.Kernels;
using Quill.Tensors;

namespace Quill.Autograd.Ops;

/// <summary>y [M, C] = the rows of x [..., C] listed in rows (ascending or not; each at most once).</summary>
public static class GatherRowsOp
{
    public static Tensor Forward(Graph g, Tensor x, int[] rows)
    {
        ArgumentNullException.ThrowIfNull(g);
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(rows);
        int c = x.Dim(-1), n = x.Length / c;
        var y = g.NewTensor([rows.Length, c]);
        var xs = x.Span;
        var ys = y.Span;
        for (int i = 0; i < rows.Length; i++)
        {
            if ((uint)rows[i] >= (uint)n) throw new ArgumentException($"row {rows[i]} is outside the {n} rows of {Tensor.Describe(x.Shape)}.", nameof(rows));
            xs.Slice(rows[i] * c, c).CopyTo(ys.Slice(i * c, c));
        }
        if (g.NeedsGrad(x))
        {
            y.RequiresGrad = true;
            g.Record(new Node(x, (int[])rows.Clone(), y), y);
        }
        return y;
    }

    private sealed class Node(Tensor x, int[] rows, Tensor y) : Autograd.Node
    {
        public override void Backward(Graph g)
        {
            if (y.Grad == null) return;
            int c = x.Dim(-1);
            var dx = g.GradOf(x).Span;
            var dy = y.Grad.Span;
            for (int i = 0; i < rows.Length; i++) Elementwise.AddInPlace(dx.Slice(rows[i] * c, c), dy.Slice(i * c, c));
        }
    }
}
