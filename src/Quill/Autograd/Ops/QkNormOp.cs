// Qwen3's q/k norm, forward and backward side by side: in a fused projection output qkv [B, T, (Hq + 2 Hkv) D], each
// head of q is RMS-normalized over its D values with the shared weight qGamma [D], each head of k with kGamma [D];
// v passes through. Runs before RoPE (AttentionOp rotates the normalized q and k). The per-head 1/rms values are saved
// for the backward pass. Each token's q heads (and k heads) are contiguous rows of D, so the RMSNorm kernel runs on
// them token by token.
// OLMo 2 (whole: true) normalizes q over all its Hq D values with qGamma [Hq D] and k over its Hkv D values with
// kGamma [Hkv D]: the same kernels with one group per token.
// Glossary: Hq, Hkv heads of q and of k/v; D head size; W = (Hq + 2 Hkv) D the row width of qkv.
using Quill.Kernels;
using Quill.Tensors;

namespace Quill.Autograd.Ops;

/// <summary>Per-head RMSNorm of q and k inside a fused qkv tensor (Qwen3).</summary>
public static class QkNormOp
{
    /// <summary>y = qkv with q heads normalized by qGamma and k heads by kGamma (eps as the model's norms); whole: q and k
    /// each normalized over their full width (OLMo 2).</summary>
    public static Tensor Forward(Graph g, Tensor qkv, Tensor qGamma, Tensor kGamma, int hq, int hkv, int d, float eps, bool whole = false)
    {
        ArgumentNullException.ThrowIfNull(g);
        ArgumentNullException.ThrowIfNull(qkv);
        ArgumentNullException.ThrowIfNull(qGamma);
        ArgumentNullException.ThrowIfNull(kGamma);
        int w = (hq + 2 * hkv) * d, rows = qkv.Length / w;
        var (qn, qd, kn, kd) = whole ? (1, hq * d, 1, hkv * d) : (hq, d, hkv, d);
        if (qkv.Dim(-1) != w || qGamma.Length != qd || kGamma.Length != kd)
            throw new ArgumentException($"qkv's last dimension must be (Hq + 2 Hkv) D = {w} and the norm weights [{qd}] and [{kd}].", nameof(qkv));
        var y = g.NewTensor(qkv.Shape);
        var rstd = g.NewTensor([rows * (qn + kn)]);
        ReadOnlySpan<float> x = qkv.Span;
        Span<float> ys = y.Span, rs = rstd.Span;
        x.CopyTo(ys); // v as it is
        for (int r = 0; r < rows; r++)
        {
            int o = r * w, s = r * (qn + kn);
            RmsNorm.Forward(x.Slice(o, hq * d), qGamma.Span, ys.Slice(o, hq * d), rs.Slice(s, qn), qn, qd, eps);
            RmsNorm.Forward(x.Slice(o + hq * d, hkv * d), kGamma.Span, ys.Slice(o + hq * d, hkv * d), rs.Slice(s + qn, kn), kn, kd, eps);
        }
        if (g.Recording && (qkv.RequiresGrad || qGamma.RequiresGrad || kGamma.RequiresGrad))
        {
            y.RequiresGrad = true;
            g.Record(new Node(qkv, qGamma, kGamma, y, rstd, hq, hkv, d, whole));
        }
        return y;
    }

    private sealed class Node(Tensor qkv, Tensor qGamma, Tensor kGamma, Tensor y, Tensor rstd, int hq, int hkv, int d, bool whole) : Autograd.Node
    {
        public override void Backward(Graph g)
        {
            if (y.Grad == null) return;
            int w = (hq + 2 * hkv) * d, rows = qkv.Length / w;
            var (qn, qd, kn, kd) = whole ? (1, hq * d, 1, hkv * d) : (hq, d, hkv, d);
            ReadOnlySpan<float> dy = y.Grad.Span, x = qkv.Span, rs = rstd.Span;
            Span<float> dx = LayerNormOp.GradOrScratch(g, qkv), dq = LayerNormOp.GradOrScratch(g, qGamma), dk = LayerNormOp.GradOrScratch(g, kGamma);
            for (int r = 0; r < rows; r++)
            {
                int o = r * w, s = r * (qn + kn), v = o + (hq + hkv) * d;
                RmsNorm.Backward(dy.Slice(o, hq * d), x.Slice(o, hq * d), qGamma.Span, rs.Slice(s, qn), dx.Slice(o, hq * d), dq, qn, qd);
                RmsNorm.Backward(dy.Slice(o + hq * d, hkv * d), x.Slice(o + hq * d, hkv * d), kGamma.Span, rs.Slice(s + qn, kn), dx.Slice(o + hq * d, hkv * d), dk, kn, kd);
                Elementwise.AddInPlace(dx.Slice(v, hkv * d), dy.Slice(v, hkv * d)); // v passed through
            }
        }
    }
}
