// The arithmetic of one training step, counted the way model-FLOPs-utilization figures count it (PaLM, Chowdhery et
// al. 2022, appendix B): a weight of a matrix product costs 2 FLOPs per token forward and 4 backward (the input's
// gradient and its own), so 6 per token in all, and causal attention's two products (Q K^T and P V) cost
// 2 * head_dim FLOPs per visible (query, key) pair each forward and twice that backward. A frozen weight costs 2 + 2
// (no weight gradient). Work an engine repeats (Quill's attention backward recomputes P) is not counted: the count
// is the model's, the same for every engine, so FLOP/s from it compare engines the way tokens/s do.
// Does not handle: sliding windows (every layer is counted as full causal attention, an overcount for models with
// windows), norms, activations, softmax and the optimizer (a few percent of a step, not matrix products).
using Quill.Models;

namespace Quill.Training;

/// <summary>FLOPs of a training step from a model config (the PaLM / MFU convention; see the file header).</summary>
public static class TrainingFlops
{
    /// <summary>
    /// Multiply-adds per token of the model's matrix products: attention's q, k, v and output projections, the MLP
    /// (two matrices, or three when gated) or the router and the chosen experts, and the LM head.
    /// </summary>
    public static double MatmulMacsPerToken(ModelConfig m)
    {
        ArgumentNullException.ThrowIfNull(m);
        double c = m.NEmbd, q = (double)m.NHead * m.HeadDim, kv = (double)m.KvHeads * m.HeadDim, f = m.Hidden;
        double attention = c * q + 2 * c * kv + q * c;
        double mlp = m.IsMoe ? c * m.Experts + m.ExpertsUsed * 3 * c * f : m.IsLlama ? 3 * c * f : 2 * c * f;
        return m.NLayer * (attention + mlp) + c * m.VocabSize;
    }

    /// <summary>Multiply-adds per token of LoRA adapters of the given rank on q, k, v and o of every layer (A [r, in], B [out, r]).</summary>
    public static double AttentionLoraMacsPerToken(ModelConfig m, int rank)
    {
        ArgumentNullException.ThrowIfNull(m);
        double c = m.NEmbd, q = (double)m.NHead * m.HeadDim, kv = (double)m.KvHeads * m.HeadDim;
        return m.NLayer * (double)rank * ((c + q) + 2 * (c + kv) + (q + c));
    }

    /// <summary>Multiply-adds of causal attention's two forward products (Q K^T, P V) over all layers for one sequence of t tokens.</summary>
    public static double AttentionMacsPerSequence(ModelConfig m, int t)
    {
        ArgumentNullException.ThrowIfNull(m);
        ArgumentOutOfRangeException.ThrowIfNegative(t);
        double pairs = (double)t * (t + 1) / 2; // query i sees keys 0 .. i
        return m.NLayer * 2.0 * m.NHead * m.HeadDim * pairs;
    }

    /// <summary>FLOPs of one training step on batch sequences of t tokens with every weight trained.</summary>
    public static double PerStep(ModelConfig m, int batch, int t) =>
        2 * 3 * (MatmulMacsPerToken(m) * batch * t + AttentionMacsPerSequence(m, t) * batch);

    /// <summary>
    /// FLOPs of one step with every base weight frozen (forward and input gradient only: 4 per weight per token)
    /// and trained adapters of adapterMacsPerToken multiply-adds per token (LoRA's A and B: rank * (in + out) per
    /// adapted linear), which cost 6 per weight per token.
    /// </summary>
    public static double PerStepFrozen(ModelConfig m, int batch, int t, double adapterMacsPerToken) =>
        2 * (2 * MatmulMacsPerToken(m) * batch * t + 3 * adapterMacsPerToken * batch * t + 3 * AttentionMacsPerSequence(m, t) * batch);
}
