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
        // The rank-r intermediate is kept transposed, ut [r, N] = (xd A^T)^T, so that r is the rows of every skinny
        // product (r of a 12-row tile used) instead of its columns (8 of a 32-column tile): about twice as fast.
        var ut = g.NewTensor([r, n]);
        Gemm.Sgemm(false, true, r, n, inF, 1f, a.Span, inF, xd.Span, inF, 0f, ut.Span, n);             // ut [r, N] = A xd^T
        Gemm.Sgemm(true, true, n, outF, r, scaling, ut.Span, n, b.Span, r, 1f, y.Span.Slice(column), total); // y_blk [N, Out] += s ut^T B^T
        if (g.Recording && (x.RequiresGrad || a.RequiresGrad || b.RequiresGrad))
        {
            y.RequiresGrad = true;
            g.Record(new Node(y, column, x, xd, ut, a, b, scaling, drop ? dropout : 0f, seed));
        }
    }

    private sealed class Node(Tensor y, int column, Tensor x, Tensor xd, Tensor ut, Tensor a, Tensor b, float scaling, float dropout, ulong seed) : Autograd.Node
    {
        public override void Backward(Graph g)
        {
            if (y.Grad == null) return;
            int inF = x.Dim(-1), n = x.Length / inF, total = y.Dim(-1), r = a.Dim(0), outF = b.Dim(0);
            var dy = y.Grad.Span.Slice(column);                                   // dy_blk [N, Out], rows Total apart
            if (b.RequiresGrad)
            {
                // dB [Out, r] += (s ut [r, N] dy_blk [N, Out])^T
                var dbt = g.NewTensor([r, outF]);
                Gemm.Sgemm(false, false, r, outF, n, scaling, ut.Span, n, dy, total, 0f, dbt.Span, outF);
                AddTransposed(dbt.Span, r, outF, g.GradOf(b).Span);
            }
            if (!a.RequiresGrad && !x.RequiresGrad) return;
            // dut [r, N] = s B^T [r, Out] dy_blk^T [Out, N]
            var dut = g.NewTensor([r, n]);
            Gemm.Sgemm(true, true, r, n, outF, scaling, b.Span, r, dy, total, 0f, dut.Span, n);
            // dA [r, In] += dut [r, N] xd [N, In]
            if (a.RequiresGrad) Gemm.Sgemm(false, false, r, inF, n, 1f, dut.Span, n, xd.Span, inF, 1f, g.GradOf(a).Span, inF);
            if (!x.RequiresGrad) return;
            // dx [N, In] += dropout'(dut^T [N, r] A [r, In])
            if (dropout == 0f)
            {
                Gemm.Sgemm(true, false, n, inF, r, 1f, dut.Span, n, a.Span, inF, 1f, g.GradOf(x).Span, inF);
                return;
            }
            var dxd = g.NewTensor(x.Shape);
            Gemm.Sgemm(true, false, n, inF, r, 1f, dut.Span, n, a.Span, inF, 0f, dxd.Span, inF);
            Dropout.Backward(dxd.Span, g.GradOf(x).Span, seed, dropout);
        }

        // dst [cols, rows] += src [rows, cols]^T (the rank-r gradient of B: a few thousand elements)
        private static void AddTransposed(ReadOnlySpan<float> src, int rows, int cols, Span<float> dst)
        {
            for (int j = 0; j < cols; j++)
            {
                var row = dst.Slice(j * rows, rows);
                for (int i = 0; i < rows; i++) row[i] += src[i * cols + j];
            }
        }
    }
}
