// The one architecture spec: every choice that tells one decoder-only transformer from another, and the sizes. The
// trainable model (TransformerModel), the inference engine and every loader read their choices from here and from
// nowhere else: config files and presets map onto it (ModelConfig.ToSpec), and so do a llama2.c header, GGUF
// metadata and a HF config.json (Models.ModelBuilders and the loaders in Inference).
// Choices: the norm (LayerNorm or RMSNorm, its epsilon, LayerNorm bias), the MLP (GELU-tanh up/down or SiLU-gated
// SwiGLU), positions (learned table or RoPE: theta, pairing style, rotary dims for partial rotary, linear scaling,
// Llama 3 scaling, llama.cpp's per-pair divisors, or Phi-3.5 / Phi-4 LongRoPE), head_dim apart from width / heads, query and key/value heads,
// biases (q|k|v, attention output, MLP, norms), tied input and output embeddings, the sliding window and which
// layers use it (all: Mistral; all but every n-th: Gemma 2 and 3) with their own RoPE base (Gemma 3), MLP width,
// and Gemma's touches: embeddings scaled by sqrt(C), norms after attention and after the MLP, GeGLU, the attention
// score scale, attention and final logit soft-caps, and norm weights stored as gamma - 1 in Hugging Face files;
// OLMo 2's: norms only after attention and the MLP (PreNorms false), q/k norms over the whole projection.
// Sliding windows are computed as such (AttentionMask in training, a window over the KV cache in decode), so a
// window does not limit the context.
// Mixture of experts (Mixtral, Qwen3-MoE): Experts > 0 replaces every layer's MLP by a router [E, C] and E SwiGLU
// experts of width Hidden; each token runs the ExpertsUsed experts with the largest router logits and adds their
// outputs weighted by the softmax of the router logits over all experts, renormalized over the chosen ones when
// NormTopK (Mixtral always; Qwen3-MoE's norm_topk_prob), which equals the softmax over the chosen logits.
// Not handled: ALiBi, parallel blocks, shared experts (Qwen2-MoE), dense layers between MoE layers.
// Glossary: C model width, Hq query heads, Hkv key/value heads, D head size, F MLP width, V vocabulary.
using Quill.Kernels;

namespace Quill.Models;

/// <summary>Normalization before attention, before the MLP and at the end.</summary>
public enum NormKind
{
    /// <summary>RMSNorm: x / sqrt(mean(x^2) + eps) * gamma (Llama, Mistral, Qwen2, Phi-3).</summary>
    RmsNorm,

    /// <summary>LayerNorm: (x - mean) / std * gamma (+ beta when NormBias) (GPT-2).</summary>
    LayerNorm,
}

/// <summary>The feed-forward block.</summary>
public enum MlpKind
{
    /// <summary>down(silu(gate(x)) * up(x)) (Llama family).</summary>
    SwiGlu,

    /// <summary>down(gelu_tanh(up(x))) (GPT-2's c_fc / c_proj).</summary>
    Gelu,

    /// <summary>down(gelu_tanh(gate(x)) * up(x)) (Gemma's GeGLU).</summary>
    GeGlu,
}

/// <summary>How positions enter the model.</summary>
public enum PositionKind
{
    /// <summary>Rotary embedding of q and k in every layer.</summary>
    Rope,

    /// <summary>A learned [MaxContext, C] table added to the token embedding (GPT-2).</summary>
    Learned,
}

/// <summary>Llama 3 style rotary frequency scaling (rope_scaling type "llama3").</summary>
/// <param name="Factor">Frequencies below the low-frequency band are divided by this.</param>
/// <param name="LowFreqFactor">Wavelengths above original / low_freq_factor are fully scaled.</param>
/// <param name="HighFreqFactor">Wavelengths below original / high_freq_factor are left alone.</param>
/// <param name="OriginalMaxPositions">Context the model was pre-trained at.</param>
public sealed record Llama3RopeScaling(double Factor, double LowFreqFactor, double HighFreqFactor, int OriginalMaxPositions);

/// <summary>
/// Phi-3.5 / Phi-4 LongRoPE (rope_scaling type longrope): every pair's frequency divided by its factor, the long
/// factors when the context run is longer than <paramref name="OriginalMaxPositions"/>, else the short ones, and cos
/// and sin times <paramref name="AttentionFactor"/> (sqrt(1 + ln(s) / ln(original)), s = context / original).
/// </summary>
/// <param name="ShortFactors">Per pair [rotaryDim / 2] (HF short_factor, GGUF rope_factors_short).</param>
/// <param name="LongFactors">Per pair [rotaryDim / 2] (HF long_factor, GGUF rope_factors_long).</param>
/// <param name="OriginalMaxPositions">original_max_position_embeddings (GGUF rope.scaling.original_context_length).</param>
/// <param name="AttentionFactor">The magnitude of cos and sin (GGUF rope.scaling.attn_factor).</param>
public sealed record LongRopeScaling(float[] ShortFactors, float[] LongFactors, int OriginalMaxPositions, double AttentionFactor)
{
    /// <summary>transformers' default attention factor for a model of maxPositions trained at originalMaxPositions.</summary>
    public static double DefaultAttentionFactor(int maxPositions, int originalMaxPositions)
    {
        double s = (double)maxPositions / originalMaxPositions;
        return s <= 1 ? 1.0 : Math.Sqrt(1 + Math.Log(s) / Math.Log(originalMaxPositions));
    }

    /// <summary>The factors a context of <paramref name="length"/> positions uses.</summary>
    public float[] FactorsFor(int length) => length > OriginalMaxPositions ? LongFactors : ShortFactors;
}

/// <summary>Architecture and sizes of a decoder-only transformer.</summary>
public sealed record ModelSpec
{
    /// <summary>The architecture name (gpt2, llama, mistral, qwen2, phi3, llama2.c): messages and file names only.</summary>
    public required string Arch { get; init; }

    /// <summary>C.</summary>
    public required int Dim { get; init; }

    public required int Layers { get; init; }

    /// <summary>Hq.</summary>
    public required int Heads { get; init; }

    /// <summary>Hkv (equal to Heads without grouped-query attention).</summary>
    public required int KvHeads { get; init; }

    /// <summary>D (usually Dim / Heads).</summary>
    public required int HeadDim { get; init; }

    /// <summary>F.</summary>
    public required int Hidden { get; init; }

    /// <summary>V.</summary>
    public required int VocabSize { get; init; }

    /// <summary>Longest sequence the model runs at: its trained context.</summary>
    public required int MaxContext { get; init; }

    /// <summary>The attention window the model was trained with (Mistral, Phi-3, Gemma's local layers), or 0 for none:
    /// a query sees itself and the SlidingWindow - 1 keys before it.</summary>
    public int SlidingWindow { get; init; }

    /// <summary>0: every layer uses the window; n: every n-th layer (i + 1 divisible by n) attends globally and the
    /// others use the window (Gemma 2: 2, Gemma 3: 6).</summary>
    public int SlidingPattern { get; init; }

    /// <summary>RoPE base of the windowed layers when it differs from <see cref="RopeTheta"/> (Gemma 3: 10000), else 0.</summary>
    public double RopeThetaLocal { get; init; }

    /// <summary>The token embedding is multiplied by sqrt(C) (Gemma).</summary>
    public bool EmbedScale { get; init; }

    /// <summary>RMSNorms also on the attention output and on the MLP output, before each joins the residual (Gemma 2, 3;
    /// OLMo 2, which has only these).</summary>
    public bool PostNorms { get; init; }

    /// <summary>Norms before attention and before the MLP (every architecture but OLMo 2, whose blocks read the residual
    /// stream as it is and normalize only their outputs).</summary>
    public bool PreNorms { get; init; } = true;

    /// <summary>The q/k norms span the whole projection (weights [Hq D] and [Hkv D], OLMo 2) rather than one head ([D]).</summary>
    public bool QkNormWhole { get; init; }

    /// <summary>Gemma 2 / 3's family of choices (post-norms with the scaled embedding), as opposed to OLMo 2's post-norms.</summary>
    public bool IsGemma => PostNorms && EmbedScale;

    /// <summary>Values in each q norm weight: Hq D when whole, else D (k: Hkv D or D).</summary>
    public int QNormLength => QkNormWhole ? QDim : HeadDim;

    public int KNormLength => QkNormWhole ? KvDim : HeadDim;

    /// <summary>Attention scores are scaled by this (0: 1 / sqrt(HeadDim); Gemma: query_pre_attn_scalar^-1/2).</summary>
    public float AttentionScale { get; init; }

    /// <summary>Attention scores s become c tanh(s / c) (Gemma 2: 50), 0 for none.</summary>
    public float AttnSoftcap { get; init; }

    /// <summary>Logits z become c tanh(z / c) (Gemma 2: 30), 0 for none.</summary>
    public float FinalSoftcap { get; init; }

    /// <summary>Hugging Face files store every RMSNorm weight as gamma - this (Gemma: 1, its norms multiply by 1 + w);
    /// Quill, GGUF and the kernels hold gamma itself.</summary>
    public float NormWeightOffset { get; init; }

    public NormKind Norm { get; init; } = NormKind.RmsNorm;

    public required float NormEps { get; init; }

    /// <summary>LayerNorm has a bias (beta).</summary>
    public bool NormBias { get; init; }

    public MlpKind Mlp { get; init; } = MlpKind.SwiGlu;

    public PositionKind Positions { get; init; } = PositionKind.Rope;

    /// <summary>The q, k and v projections have biases (GPT-2, Qwen2).</summary>
    public bool QkvBias { get; init; }

    /// <summary>q and k are RMS-normalized per head (weights [HeadDim], the same eps) before RoPE (Qwen3).</summary>
    public bool QkNorm { get; init; }

    /// <summary>The attention output projection has a bias (GPT-2).</summary>
    public bool OutBias { get; init; }

    /// <summary>The MLP's up and down projections have biases (GPT-2).</summary>
    public bool MlpBias { get; init; }

    /// <summary>The output head is the token embedding.</summary>
    public bool TiedEmbeddings { get; init; }

    /// <summary>RoPE base.</summary>
    public double RopeTheta { get; init; } = 10000.0;

    /// <summary>How dims are paired for rotation: Interleaved (llama2.c, Meta, GGUF llama) or Half (HF, GGUF qwen2/phi3).</summary>
    public RopeStyle RopeStyle { get; init; } = RopeStyle.Interleaved;

    /// <summary>Dims of each head that rotate (0 = all of HeadDim).</summary>
    public int RotaryDim { get; init; }

    public Llama3RopeScaling? RopeScaling { get; init; }

    /// <summary>Linear position scaling: every frequency divided by this (1 = none).</summary>
    public double RopeLinearFactor { get; init; } = 1.0;

    /// <summary>Per-pair frequency divisors [rotaryDim / 2] (GGUF rope_freqs, llama.cpp's form of Llama 3 scaling), or null.</summary>
    public float[]? RopeFreqFactors { get; init; }

    /// <summary>Phi-3.5 / Phi-4 LongRoPE, or null.</summary>
    public LongRopeScaling? LongRope { get; init; }

    /// <summary>E: experts per layer (Mixtral, Qwen3-MoE), 0 for a dense MLP. Each expert is a SwiGLU of width Hidden.</summary>
    public int Experts { get; init; }

    /// <summary>k: experts each token runs (num_experts_per_tok).</summary>
    public int ExpertsUsed { get; init; }

    /// <summary>The k chosen gate weights are renormalized to sum to 1 (Mixtral; Qwen3-MoE with norm_topk_prob).</summary>
    public bool NormTopK { get; init; }

    /// <summary>True when the MLP is a mixture of experts.</summary>
    public bool IsMoe => Experts > 0;

    /// <summary>Width of the fused q|k|v row: (Hq + 2 Hkv) D.</summary>
    public int QkvDim => (Heads + 2 * KvHeads) * HeadDim;

    /// <summary>Hq D (may differ from Dim when head_dim is set explicitly).</summary>
    public int QDim => Heads * HeadDim;

    /// <summary>Hkv D.</summary>
    public int KvDim => KvHeads * HeadDim;

    public int EffectiveRotaryDim => RotaryDim > 0 ? RotaryDim : HeadDim;

    /// <summary>True when positions are rotary.</summary>
    public bool UsesRope => Positions == PositionKind.Rope;

    /// <summary>Layer i's attention window (0: global).</summary>
    public int LayerWindow(int i) =>
        SlidingWindow <= 0 || SlidingPattern > 0 && (i + 1) % SlidingPattern == 0 ? 0 : SlidingWindow;

    /// <summary>Layer i's RoPE base: <see cref="RopeThetaLocal"/> on windowed layers when set, else <see cref="RopeTheta"/>.</summary>
    public double LayerRopeTheta(int i) => RopeThetaLocal > 0 && LayerWindow(i) > 0 ? RopeThetaLocal : RopeTheta;

    /// <summary>The attention score scale: <see cref="AttentionScale"/> or 1 / sqrt(HeadDim).</summary>
    public float EffectiveAttentionScale => AttentionScale > 0 ? AttentionScale : 1f / MathF.Sqrt(HeadDim);

    /// <summary>Number of parameters (tied embeddings counted once).</summary>
    public long ParameterCount()
    {
        long c = Dim, f = Hidden, qd = QDim, kv = KvDim, v = VocabSize;
        long norms = NormBias ? 2 * c : c;
        long attn = c * qd + 2 * c * kv + qd * c + (QkvBias ? qd + 2 * kv : 0) + (OutBias ? c : 0) + (QkNorm ? QNormLength + KNormLength : 0);
        long mlp = IsMoe ? Experts * 3 * c * f + Experts * c : (Mlp == MlpKind.Gelu ? 2 : 3) * c * f + (MlpBias ? f + c : 0);
        long total = Layers * (((PreNorms ? 2 : 0) + (PostNorms ? 2 : 0)) * norms + attn + mlp) + norms + v * c;
        if (Positions == PositionKind.Learned) total += (long)MaxContext * c;
        if (!TiedEmbeddings) total += v * c;
        return total;
    }

    /// <summary>Throws InvalidFileException naming <paramref name="source"/> and the first impossible field.</summary>
    public void Validate(string source)
    {
        void Fail(string what) => throw new InvalidFileException($"{source}: {what}; the model file is inconsistent.");
        if (Dim < 1 || Layers < 1 || Heads < 1 || KvHeads < 1 || HeadDim < 1 || Hidden < 1 || VocabSize < 1 || MaxContext < 1)
            Fail($"non-positive size (dim {Dim}, layers {Layers}, heads {Heads}, kv heads {KvHeads}, head dim {HeadDim}, hidden {Hidden}, vocab {VocabSize}, context {MaxContext})");
        if (Heads % KvHeads != 0) Fail($"{Heads} query heads are not a multiple of {KvHeads} key/value heads");
        if (UsesRope)
        {
            int rd = EffectiveRotaryDim;
            if (rd % 2 != 0 || rd > HeadDim) Fail($"rotary dims {rd} must be even and at most the head size {HeadDim}");
            if (!(RopeTheta > 0)) Fail($"rope theta {RopeTheta} must be positive");
            if (!(RopeLinearFactor > 0)) Fail($"rope linear scaling factor {RopeLinearFactor} must be positive");
            if (RopeFreqFactors != null && RopeFreqFactors.Length != rd / 2) Fail($"rope_freqs holds {RopeFreqFactors.Length} factors but the model rotates {rd / 2} pairs");
            if (LongRope is { } lr && (lr.ShortFactors.Length != rd / 2 || lr.LongFactors.Length != rd / 2))
                Fail($"LongRoPE has {lr.ShortFactors.Length} short and {lr.LongFactors.Length} long factors but the model rotates {rd / 2} pairs");
            if (LongRope is { } l2 && (l2.OriginalMaxPositions < 1 || !(l2.AttentionFactor > 0) || l2.ShortFactors.Concat(l2.LongFactors).Any(f => !(f > 0) || float.IsInfinity(f))))
                Fail("LongRoPE needs an original context of at least 1, a positive attention factor and positive finite factors");
            if (LongRope != null && (RopeScaling != null || RopeFreqFactors != null || RopeLinearFactor != 1.0)) Fail("LongRoPE cannot be combined with another RoPE scaling");
        }
        if (NormBias && Norm != NormKind.LayerNorm) Fail("a norm bias needs LayerNorm");
        if (!PreNorms && (!PostNorms || Norm != NormKind.RmsNorm)) Fail("a model without norms before attention and the MLP needs RMSNorms after them (OLMo 2)");
        if (QkNormWhole && !QkNorm) Fail("whole-width q/k norms need q/k norms");
        if (SlidingWindow < 0 || SlidingPattern < 0) Fail($"sliding window {SlidingWindow} and pattern {SlidingPattern} must not be negative");
        if (!(AttentionScale >= 0) || !(AttnSoftcap >= 0) || !(FinalSoftcap >= 0) || float.IsInfinity(AttnSoftcap) || float.IsInfinity(FinalSoftcap))
            Fail($"attention scale {AttentionScale} and soft-caps {AttnSoftcap} / {FinalSoftcap} must be finite and not negative");
        if (!(NormEps > 0)) Fail($"norm epsilon {NormEps} must be positive");
        if (Experts < 0 || IsMoe && (ExpertsUsed < 1 || ExpertsUsed > Experts))
            Fail($"{Experts} experts with {ExpertsUsed} used per token: each token must use between 1 and all of them");
        if (IsMoe && (Mlp != MlpKind.SwiGlu || MlpBias || PostNorms)) Fail("experts are SwiGLU MLPs without biases or post-norms");
    }
}
