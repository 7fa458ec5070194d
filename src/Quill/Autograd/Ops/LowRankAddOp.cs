// A low-rank update added in place into a column block of a projection's output: the LoRA path beside a (frozen)
// weight, PEFT's formula y = x W^T + scaling * B(A(dropout(x))) (../shared/research/wave2-facts.md section 1.1):
//   y[:, c0 : c0 + Out] += scaling * (dropout(x) [N, In] A^T [In, r]) B^T [r, Out]
// The block lets one adapter sit on one of several weights that LinearOp wrote side by side (q of a fused q|k|v
// output) or on a whole fused weight (GPT-2's c_attn: c0 = 0, Out = 3C). y is changed in place: that is safe because
// the op that produced y (LinearOp) reads only x and y's gradient in its backward, never y's values, and the
// gradient of the sum is the gradient of y itself (the identity), so both nodes read the same y.Grad.
// Dropout follows DropoutOp: a counter-based mask from the seed, applied only when the graph records (training).
// Not handled: a bias on B (PEFT's lora_bias), DoRA, per-row scaling, y with a non-unit column stride.
// Glossary: N rows (batch * time), In input features, Out features of the block, r rank, Total columns of y.
using Quill.Kernels;
using Quill.Tensors;

namespace Quill.Autograd.Ops;

/// <summary>Adds scaling * B(A(dropout(x))) into a column block of y, with forward and backward side by side.</summary>
public static class LowRankAddOp
{
    /// <summary>
    /// y [..., Total] columns [column, column + Out) += scaling * (dropout(x) [..., In] A^T) B^T, for A [r, In] and
    /// B [Out, r]. Dropout (probability <paramref name="dropout"/>, mask from <paramref name="seed"/>) applies only
    /// while the graph records.
    /// </summary>
    public static void Forward(Graph g, Tensor y, int column, Tensor x, Tensor a, Tensor b, float scaling, float dropout = 0f, ulong seed = 0)
    {
        ArgumentNullException.ThrowIfNull(g);
        ArgumentNullException.ThrowIfNull(y);
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        int inF = x.Dim(-1), n = x.Length / inF, total = y.Dim(-1);
        if (a.Rank != 2 || a.Dim(1) != inF) throw new ArgumentException($"lora A {a.Name} {Tensor.Describe(a.Shape)} does not take {inF} inputs.");
        int r = a.Dim(0);
        if (b.Rank != 2 || b.Dim(1) != r) throw new ArgumentException($"lora B {b.Name} {Tensor.Describe(b.Shape)} does not take rank {r}.");
        int outF = b.Dim(0);
        if (column < 0 || column + outF > total || y.Length / total != n)
            throw new ArgumentException($"lora block of {outF} columns at {column} does not fit y {Tensor.Describe(y.Shape)} for x {Tensor.Describe(x.Shape)}.");

        bool drop = dropout > 0f && g.Recording;
        var xd = x;
        if (drop)
        {
            xd = g.NewTensor(x.Shape);
            Dropout.Forward(x.Span, xd.Span, seed, dropout);                      // xd [N, In]
        }
        var u = g.NewTensor([n, r]);
        Gemm.Sgemm(false, true, n, r, inF, 1f, xd.Span, inF, a.Span, inF, 0f, u.Span, r);              // u [N, r] = xd A^T
        Gemm.Sgemm(false, true, n, outF, r, scaling, u.Span, r, b.Span, r, 1f, y.Span.Slice(column), total); // y_blk [N, Out] += s u B^T
        if (g.Recording && (x.RequiresGrad || a.RequiresGrad || b.RequiresGrad))
        {
            y.RequiresGrad = true;
            g.Record(new Node(y, column, x, xd, u, a, b, scaling, drop ? dropout : 0f, seed));
        }
    }

    private sealed class Node(Tensor y, int column, Tensor x, Tensor xd, Tensor u, Tensor a, Tensor b, float scaling, float dropout, ulong seed) : Autograd.Node
    {
        public override void Backward(Graph g)
        {
            if (y.Grad == null) return;
            int inF = x.Dim(-1), n = x.Length / inF, total = y.Dim(-1), r = a.Dim(0), outF = b.Dim(0);
            var dy = y.Grad.Span.Slice(column);                                   // dy_blk [N, Out], rows Total apart
            // dB [Out, r] += s dy_blk^T [Out, N] u [N, r]
            if (b.RequiresGrad) Gemm.Sgemm(true, false, outF, r, n, scaling, dy, total, u.Span, r, 1f, g.GradOf(b).Span, r);
            if (!a.RequiresGrad && !x.RequiresGrad) return;
            // du [N, r] = s dy_blk [N, Out] B [Out, r]
            var du = g.NewTensor([n, r]);
            Gemm.Sgemm(false, false, n, r, outF, scaling, dy, total, b.Span, r, 0f, du.Span, r);
            // dA [r, In] += du^T [r, N] xd [N, In]
            if (a.RequiresGrad) Gemm.Sgemm(true, false, r, inF, n, 1f, du.Span, r, xd.Span, inF, 1f, g.GradOf(a).Span, inF);
            if (!x.RequiresGrad) return;
            // dx [N, In] += dropout'(du [N, r] A [r, In])
            if (dropout == 0f)
            {
                Gemm.Sgemm(false, false, n, inF, r, 1f, du.Span, r, a.Span, inF, 1f, g.GradOf(x).Span, inF);
                return;
            }
            var dxd = g.NewTensor(x.Shape);
            Gemm.Sgemm(false, false, n, inF, r, 1f, du.Span, r, a.Span, inF, 0f, dxd.Span, inF);
            Dropout.Backward(dxd.Span, g.GradOf(x).Span, seed, dropout);
        }
    }
}
