// Top-k routing of a mixture of experts, per token: from the router's logits over E experts pick the k largest
// (ties to the lower expert index) and weight them by the softmax of all E logits, renormalized over the k chosen
// when asked (Mixtral; Qwen3-MoE with norm_topk_prob), which is the softmax over the chosen logits alone. The same
// routine serves the trainable model (Autograd.Ops.MoeRouteOp, with Backward) and the inference engine, so both
// route every token to the same experts with the same weights.
// Backward: w_j = p_j (plain) or p_j / sum_chosen p (renormalized), p = softmax(z) over all E. Given dw_j for the
// chosen j:
//   plain:        dz_i = p_i (g_i - sum_j p_j g_j), g = dw on the chosen experts, 0 elsewhere (every logit moves)
//   renormalized: dz_j = w_j (dw_j - sum_l w_l dw_l) on the chosen experts, 0 on the others
// Accumulated in double; E is small (8 to 128).
// Glossary: E experts, k experts used per token.
namespace Quill.Kernels;

/// <summary>Top-k softmax routing of one token, forward and backward.</summary>
public static class MoeRouting
{
    /// <summary>
    /// Writes the k chosen experts (largest logit first) to experts [k] and their weights to weights [k].
    /// logits: [E].
    /// </summary>
    public static void Route(ReadOnlySpan<float> logits, int k, bool normalize, Span<int> experts, Span<float> weights)
    {
        int e = logits.Length;
        if (k < 1 || k > e || experts.Length < k || weights.Length < k) throw new ArgumentException($"cannot route to {k} of {e} experts.");
        for (int j = 0; j < k; j++)
        {
            int best = -1;
            for (int i = 0; i < e; i++)
            {
                if (experts[..j].Contains(i)) continue;
                if (best < 0 || logits[i] > logits[best]) best = i;
            }
            experts[j] = best;
        }
        float max = logits[experts[0]];
        double all = 0;
        for (int i = 0; i < e; i++) all += Math.Exp(logits[i] - max);
        double chosen = 0;
        for (int j = 0; j < k; j++) chosen += Math.Exp(logits[experts[j]] - max);
        double denom = normalize ? chosen : all;
        for (int j = 0; j < k; j++) weights[j] = (float)(Math.Exp(logits[experts[j]] - max) / denom);
    }

    /// <summary>
    /// dlogits [E] += the gradient of the loss through the weights Route gave: experts, weights [k] as Route wrote
    /// them, dweights [k] the loss's gradient for them.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> logits, ReadOnlySpan<int> experts, ReadOnlySpan<float> weights, ReadOnlySpan<float> dweights,
        bool normalize, Span<float> dlogits)
    {
        int k = experts.Length;
        if (normalize)
        {
            double dot = 0;
            for (int j = 0; j < k; j++) dot += (double)weights[j] * dweights[j];
            for (int j = 0; j < k; j++) dlogits[experts[j]] += (float)(weights[j] * (dweights[j] - dot));
            return;
        }
        int e = logits.Length;
        float max = logits[experts[0]];
        double sum = 0;
        for (int i = 0; i < e; i++) sum += Math.Exp(logits[i] - max);
        double pg = 0;
        for (int j = 0; j < k; j++) pg += (double)weights[j] * dweights[j]; // weights are p on the chosen experts
        for (int i = 0; i < e; i++)
        {
            double p = Math.Exp(logits[i] - max) / sum, g = 0;
            for (int j = 0; j < k; j++)
            {
                if (experts[j] == i) g = dweights[j];
            }
            dlogits[i] += (float)(p * (g - pg));
        }
    }

    /// <summary>y += a x (an expert's output row into its token's row). y, x: [C]</summary>
    public static void AddScaled(Span<float> y, ReadOnlySpan<float> x, float a)
    {
        if (x.Length != y.Length) throw new ArgumentException($"{x.Length} values added into {y.Length}.");
        int i = 0, w = System.Numerics.Vector<float>.Count;
        for (; i <= y.Length - w; i += w)
            (new System.Numerics.Vector<float>(y[i..]) + a * new System.Numerics.Vector<float>(x[i..])).CopyTo(y[i..]);
        for (; i < y.Length; i++) y[i] += a * x[i];
    }

    /// <summary>sum_i x_i y_i in double (a chosen weight's gradient).</summary>
    public static double Dot(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        double s = 0;
        for (int i = 0; i < x.Length; i++) s += (double)x[i] * y[i];
        return s;
    }
}
