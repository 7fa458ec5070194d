// Linear layers: y = x W^T + b, with W stored [out, in] as in PyTorch's nn.Linear. Several weights that read the
// same input (q, k, v projections) can write side by side into one output [N, sum(out)], which is how attention
// gets a fused qkv buffer from three separate parameters. A weight may be a frozen tensor of any element type viewing
// foreign memory (a quantized or half-precision GGUF weight, see Tensor.FromMemory): forward runs the weight kernels
// of Tensors.WeightMatrix, and backward yields only the input gradient, dequantizing a panel of rows at a time.
// Glossary: N rows (batch * time), In input features, Out output features.
using Quill.Kernels;
using Quill.Tensors;

namespace Quill.Autograd.Ops;

/// <summary>Linear projection(s) with forward and backward side by side.</summary>
public static unsafe class LinearOp
{
    /// <summary>y [..., Out] = x [..., In] W^T [In, Out] + b [Out].</summary>
    public static Tensor Forward(Graph g, Tensor x, Tensor w, Tensor? b) => Forward(g, x, [w], b == null ? null : [b]);

    /// <summary>y [..., sum(Out_i)] = concat_i(x W_i^T + b_i): each weight fills its own column block.</summary>
    public static Tensor Forward(Graph g, Tensor x, Tensor[] ws, Tensor?[]? bs)
    {
        ArgumentNullException.ThrowIfNull(g);
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(ws);
        int inF = x.Dim(-1), n = x.Length / inF, total = 0;
        foreach (var w in ws)
        {
            if (w.Rank != 2 || w.Dim(1) != inF) throw new ArgumentException($"weight {w.Name} {Tensor.Describe(w.Shape)} does not take {inF} inputs.");
            if (w.DType != Quantization.GgmlType.F32 && w.RequiresGrad)
                throw new InvalidOperationException($"weight {w.Name} is {w.DType}: a weight stored in a block or half type can only be frozen (train an adapter beside it, or widen it to f32).");
            total += w.Dim(0);
        }
        int[] shape = (int[])x.Shape.Clone();
        shape[^1] = total;
        var y = g.NewTensor(shape);
        var xs = x.Span;
        var ys = y.Span;
        int off = 0;
        for (int i = 0; i < ws.Length; i++)
        {
            int outF = ws[i].Dim(0);
            var bias = bs?[i];
            if (ws[i].DType == Quantization.GgmlType.F32)
            {
                // the bias (none: empty) seeds each tile of the product (Gemm's bias epilogue)
                Gemm.Sgemm(false, true, n, outF, inF, 1f, xs, inF, ws[i].Span, inF, 0f, ys.Slice(off), total,
                    bias == null ? default : bias.Span);
            }
            else
            {
                // a frozen block-typed weight writes its product, then the bias is added (no scratch); many rows keep
                // f32 activations (dequantize + SGEMM), the forward the backward's dx is the gradient of
                fixed (float* px = xs, py = ys.Slice(off)) WeightMatrix.View(ws[i]).Multiply(px, inF, n, py, total, floatActivations: true);
                if (bias != null) for (int r = 0; r < n; r++) Elementwise.AddInPlace(ys.Slice(r * total + off, outF), bias.Span);
            }
            off += outF;
        }
        bool needs = x.RequiresGrad;
        foreach (var w in ws) needs |= w.RequiresGrad;
        if (g.Recording && needs)
        {
            y.RequiresGrad = true;
            g.Record(new Node(x, ws, bs, y), y);
        }
        return y;
    }

    private sealed class Node(Tensor x, Tensor[] ws, Tensor?[]? bs, Tensor y) : Autograd.Node
    {
        public override void Backward(Graph g)
        {
            if (y.Grad == null) return;
            int inF = x.Dim(-1), n = x.Length / inF, total = y.Dim(-1);
            var dy = y.Grad.Span;
            var xs = x.Span;
            bool fresh = false;
            Span<float> dx = x.RequiresGrad ? g.GradForWrite(x, out fresh).Span : default;
            int off = 0;
            for (int i = 0; i < ws.Length; i++)
            {
                var w = ws[i];
                int outF = w.Dim(0);
                var dyi = dy.Slice(off);
                // dx [N, In] += dy_i [N, Out] W_i [Out, In]
                if (x.RequiresGrad && w.DType == Quantization.GgmlType.F32) Gemm.Sgemm(false, false, n, inF, outF, 1f, dyi, total, w.Span, inF, fresh && i == 0 ? 0f : 1f, dx, inF);
                else if (x.RequiresGrad)
                {
                    fixed (float* pdy = dyi, pdx = dx) WeightMatrix.View(w).MultiplyTransposed(pdy, total, n, pdx, inF, accumulate: !(fresh && i == 0));
                }
                // dW_i [Out, In] += dy_i^T [Out, N] x [N, In], and db_i [Out] += column sums of dy_i: the GEMM folds
                // them from its packed copy of dy_i^T, in the order ElementwiseMath.AddColumnSums does
                var bias = bs?[i];
                bool biasGrad = bias != null && bias.RequiresGrad;
                if (w.RequiresGrad)
                {
                    Gemm.Run(GemmPath.Auto, true, false, outF, inF, n, 1f, dyi, total, xs, inF, 1f, g.GradOf(w).Span, inF, 0,
                        rowSums: biasGrad ? g.GradOf(bias!).Span : default);
                }
                else if (biasGrad)
                {
                    fixed (float* pdy = dyi, pdb = g.GradOf(bias!).Span) ElementwiseMath.AddColumnSums(pdy, total, n, outF, pdb);
                }
                off += outF;
            }
        }
    }
}
