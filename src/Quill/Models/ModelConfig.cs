// The "model" section of a config file (JSON or YAML, snake_case names) or a preset, and of every Quill checkpoint's
// config.json. It maps onto the one architecture spec (ToSpec), and a spec maps back onto it (FromSpec), so a model
// loaded from a GGUF or HF file and trained keeps its architecture in the checkpoint: a Qwen2 stays a Qwen2.
// arch picks the block: gpt2 (LayerNorm, GELU MLP, learned positions, fused c_attn) or one of the Llama family
// (llama, mistral, qwen2, phi3: RMSNorm, SwiGLU, RoPE); the other keys refine it. Validate names the first
// impossible field and the fix before any memory is allocated.
// Not handled: mixture-of-experts, ALiBi, q/k norms, windowed attention beyond the window.
using System.Text.Json.Serialization;
using Quill.Kernels;

namespace Quill.Models;

/// <summary>rope_scaling in a config: "llama3" (with its band factors) or "linear".</summary>
public sealed class RopeScalingConfig
{
    [JsonPropertyName("type")] public string Type { get; set; } = "llama3";

    [JsonPropertyName("factor")] public double Factor { get; set; } = 1.0;

    [JsonPropertyName("low_freq_factor")] public double LowFreqFactor { get; set; } = 1.0;

    [JsonPropertyName("high_freq_factor")] public double HighFreqFactor { get; set; } = 4.0;

    [JsonPropertyName("original_max_position_embeddings")] public int OriginalMaxPositions { get; set; } = 8192;

    /// <summary>longrope (Phi-3.5 / Phi-4): the per-pair factors and the magnitude of cos and sin.</summary>
    [JsonPropertyName("short_factor")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public float[]? ShortFactor { get; set; }

    [JsonPropertyName("long_factor")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public float[]? LongFactor { get; set; }

    [JsonPropertyName("attention_factor")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? AttentionFactor { get; set; }
}

/// <summary>Transformer shape and architecture choices.</summary>
public sealed class ModelConfig
{
    /// <summary>Architectures a config may name.</summary>
    public static readonly IReadOnlyList<string> Architectures = ["gpt2", "llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen3moe", "olmo2", "phi3", "gemma2", "gemma3"];

    /// <summary>"gpt2" (learned positions, LayerNorm, GELU, tied embeddings), a Llama-family name (RoPE, RMSNorm, SwiGLU,
    /// GQA) or gemma2 / gemma3 (GeGLU, post-norms, embeddings scaled by sqrt(n_embd), local and global layers).</summary>
    [JsonPropertyName("arch")] public string Arch { get; set; } = "gpt2";

    [JsonPropertyName("vocab_size")] public int VocabSize { get; set; } = 50304;

    [JsonPropertyName("n_layer")] public int NLayer { get; set; } = 6;

    [JsonPropertyName("n_head")] public int NHead { get; set; } = 6;

    /// <summary>Key/value heads for grouped-query attention (0 = same as n_head).</summary>
    [JsonPropertyName("n_kv_head")] public int NKvHead { get; set; }

    [JsonPropertyName("n_embd")] public int NEmbd { get; set; } = 384;

    /// <summary>Width of one attention head (0 = n_embd / n_head).</summary>
    [JsonPropertyName("head_dim")] public int HeadDimOverride { get; set; }

    /// <summary>Context length: the longest sequence the model accepts.</summary>
    [JsonPropertyName("block_size")] public int BlockSize { get; set; } = 256;

    /// <summary>Hidden width of the MLP (0 = 4 * n_embd for gpt2; for the Llama family, 8/3 * n_embd rounded up to a multiple of 64).</summary>
    [JsonPropertyName("mlp_hidden")] public int MlpHidden { get; set; }

    [JsonPropertyName("norm_eps")] public float NormEps { get; set; } = 1e-5f;

    [JsonPropertyName("rope_theta")] public double RopeTheta { get; set; } = 10000.0;

    /// <summary>"half" (Hugging Face rotate_half) or "interleaved" (Meta / llama2.c pairs).</summary>
    [JsonPropertyName("rope_style")] public string RopeStyle { get; set; } = "half";

    /// <summary>Dims of each head that rotate (0 = all; Phi-3 style partial rotary rotates fewer).</summary>
    [JsonPropertyName("rotary_dim")] public int RotaryDim { get; set; }

    /// <summary>Llama 3 or linear RoPE scaling, or null.</summary>
    [JsonPropertyName("rope_scaling")] public RopeScalingConfig? RopeScaling { get; set; }

    /// <summary>llama.cpp's per-pair RoPE frequency divisors (GGUF rope_freqs), kept so a model loaded from GGUF trains and runs as it did.</summary>
    [JsonPropertyName("rope_freq_factors")] public float[]? RopeFreqFactors { get; set; }

    /// <summary>The attention window the model was trained with (0 = none).</summary>
    [JsonPropertyName("sliding_window")] public int SlidingWindow { get; set; }

    /// <summary>Every n-th layer attends globally, the others through the window (0 = all windowed; gemma2: 2, gemma3: 6).</summary>
    [JsonPropertyName("sliding_pattern")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public int SlidingPattern { get; set; }

    /// <summary>RoPE base of the windowed layers (0 = rope_theta; gemma3: 10000).</summary>
    [JsonPropertyName("rope_theta_local")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public double RopeThetaLocal { get; set; }

    /// <summary>Attention score scale (0 = 1 / sqrt(head_dim); Gemma: query_pre_attn_scalar^-1/2).</summary>
    [JsonPropertyName("attn_scale")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public float AttnScale { get; set; }

    /// <summary>Attention score soft-cap c tanh(s / c) (null = 50 for gemma2, else none; 0 = none).</summary>
    [JsonPropertyName("attn_softcap")] public float? AttnSoftcap { get; set; }

    /// <summary>Final logit soft-cap (null = 30 for gemma2, else none; 0 = none).</summary>
    [JsonPropertyName("final_softcap")] public float? FinalSoftcap { get; set; }

    /// <summary>Mixtral / Qwen3-MoE: experts per layer (0: a dense MLP; mixtral defaults to 8, qwen3moe to 8), each of width mlp_hidden.</summary>
    [JsonPropertyName("experts")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public int Experts { get; set; }

    /// <summary>Experts each token uses (default 2).</summary>
    [JsonPropertyName("experts_used")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public int ExpertsUsed { get; set; }

    /// <summary>The chosen experts' weights are renormalized (default true: Mixtral; Qwen3-MoE's norm_topk_prob).</summary>
    [JsonPropertyName("norm_topk")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public bool? NormTopK { get; set; }

    /// <summary>True for the mixture-of-experts architectures.</summary>
    [JsonIgnore] public bool IsMoe => Arch is "mixtral" or "qwen3moe";

    [JsonPropertyName("dropout")] public float Dropout { get; set; }

    /// <summary>Biases in linear layers (and LayerNorm for gpt2) (null = true for gpt2, false for the Llama family).</summary>
    [JsonPropertyName("bias")] public bool? Bias { get; set; }

    /// <summary>Biases on the q, k and v projections only (null = as bias; true for qwen2).</summary>
    [JsonPropertyName("qkv_bias")] public bool? QkvBias { get; set; }

    /// <summary>Share the token embedding with the output head (null = true for gpt2, false for the Llama family).</summary>
    [JsonPropertyName("tie_embeddings")] public bool? TieEmbeddings { get; set; }

    /// <summary>True for the Llama family (RoPE, RMSNorm, SwiGLU).</summary>
    [JsonIgnore] public bool IsLlama => Arch != "gpt2";

    [JsonIgnore] public int KvHeads => NKvHead > 0 ? NKvHead : NHead;

    [JsonIgnore] public int HeadDim => HeadDimOverride > 0 ? HeadDimOverride : NHead > 0 ? NEmbd / NHead : 0;

    [JsonIgnore] public bool HasBias => Bias ?? !IsLlama;

    [JsonIgnore] public bool Tied => TieEmbeddings ?? (!IsLlama || IsGemma);

    /// <summary>gemma2 or gemma3.</summary>
    [JsonIgnore] public bool IsGemma => Arch is "gemma2" or "gemma3";

    [JsonIgnore]
    public int Hidden => MlpHidden > 0 ? MlpHidden : IsLlama ? (8 * NEmbd / 3 + 63) / 64 * 64 : 4 * NEmbd;

    [JsonIgnore]
    public RopeStyle Rope => RopeStyle == "interleaved" ? Kernels.RopeStyle.Interleaved : Kernels.RopeStyle.Half;

    /// <summary>Throws InvalidConfigException naming the first impossible field and the fix.</summary>
    public void Validate(string source = "model config")
    {
        void Fail(string msg) => throw new InvalidConfigException($"{source}: {msg}");
        if (!Architectures.Contains(Arch)) Fail($"arch '{Arch}' is not supported; use one of {string.Join(", ", Architectures)}.");
        if (VocabSize < 1) Fail($"vocab_size must be at least 1 (got {VocabSize}).");
        if (NLayer < 1) Fail($"n_layer must be at least 1 (got {NLayer}).");
        if (NHead < 1) Fail($"n_head must be at least 1 (got {NHead}).");
        if (NEmbd < 1) Fail($"n_embd must be at least 1 (got {NEmbd}).");
        if (BlockSize < 1) Fail($"block_size must be at least 1 (got {BlockSize}).");
        if (HeadDimOverride < 0) Fail($"head_dim must not be negative (got {HeadDimOverride}).");
        if (HeadDimOverride == 0 && NEmbd % NHead != 0) Fail($"n_embd {NEmbd} is not divisible by n_head {NHead}; choose n_embd a multiple of n_head (or set head_dim).");
        if (!IsLlama && HeadDim * NHead != NEmbd) Fail($"gpt2 needs head_dim * n_head = n_embd (got {HeadDim} * {NHead} vs {NEmbd}).");
        if (NKvHead < 0 || KvHeads > NHead || NHead % KvHeads != 0)
            Fail($"n_head {NHead} is not a multiple of n_kv_head {NKvHead}; grouped-query attention needs n_kv_head to divide n_head.");
        if (!IsLlama && KvHeads != NHead) Fail("gpt2 has no grouped-query attention; leave n_kv_head at 0.");
        if (IsLlama && HeadDim % 2 != 0) Fail($"head size {HeadDim} must be even for rotary embeddings.");
        if (RotaryDim < 0 || RotaryDim % 2 != 0 || RotaryDim > HeadDim) Fail($"rotary_dim {RotaryDim} must be even and at most the head size {HeadDim} (0 = all).");
        if (MlpHidden < 0) Fail($"mlp_hidden must be positive (got {MlpHidden}).");
        if (RopeStyle != "half" && RopeStyle != "interleaved") Fail($"rope_style '{RopeStyle}' is not supported; use 'half' or 'interleaved'.");
        if (!(RopeTheta > 0)) Fail($"rope_theta must be positive (got {RopeTheta}).");
        if (RopeScaling is { } rs)
        {
            if (rs.Type != "llama3" && rs.Type != "linear" && rs.Type != "longrope") Fail($"rope_scaling type '{rs.Type}' is not supported; use 'llama3', 'linear' or 'longrope'.");
            if (rs.Type == "longrope" && (rs.ShortFactor == null || rs.LongFactor == null || rs.OriginalMaxPositions < 1))
                Fail("rope_scaling longrope needs short_factor, long_factor and original_max_position_embeddings.");
            if (!(rs.Factor > 0)) Fail($"rope_scaling factor must be positive (got {rs.Factor}).");
            if (rs.Type == "llama3" && (!(rs.HighFreqFactor > rs.LowFreqFactor) || rs.LowFreqFactor <= 0 || rs.OriginalMaxPositions < 1))
                Fail("rope_scaling llama3 needs 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings >= 1.");
        }
        int rd = RotaryDim > 0 ? RotaryDim : HeadDim;
        if (RopeFreqFactors != null && RopeFreqFactors.Length != rd / 2) Fail($"rope_freq_factors has {RopeFreqFactors.Length} values; the model rotates {rd / 2} pairs.");
        if (SlidingWindow < 0) Fail($"sliding_window must not be negative (got {SlidingWindow}).");
        if (SlidingPattern < 0) Fail($"sliding_pattern must not be negative (got {SlidingPattern}).");
        if (RopeThetaLocal < 0) Fail($"rope_theta_local must not be negative (got {RopeThetaLocal}).");
        if (!(AttnScale >= 0)) Fail($"attn_scale must not be negative (got {AttnScale}).");
        if (AttnSoftcap < 0 || FinalSoftcap < 0) Fail("attn_softcap and final_softcap must not be negative.");
        if (IsMoe && (Experts < 0 || ExpertsUsed < 0 || ExpertsUsed > (Experts > 0 ? Experts : 8))) Fail($"experts_used {ExpertsUsed} must lie between 1 and experts {Experts}.");
        if (!IsMoe && (Experts != 0 || ExpertsUsed != 0)) Fail($"experts and experts_used are for the mixture-of-experts architectures (mixtral, qwen3moe), not {Arch}.");
        if (Dropout < 0f || Dropout >= 1f) Fail($"dropout must be in [0, 1) (got {Dropout}).");
        if (!(NormEps > 0f)) Fail($"norm_eps must be positive (got {NormEps}).");
    }

    /// <summary>The architecture spec this config describes.</summary>
    public ModelSpec ToSpec()
    {
        bool gpt2 = !IsLlama;
        return new ModelSpec
        {
            Arch = Arch,
            Dim = NEmbd,
            Layers = NLayer,
            Heads = NHead,
            KvHeads = KvHeads,
            HeadDim = HeadDim,
            Hidden = Hidden,
            VocabSize = VocabSize,
            MaxContext = BlockSize,
            SlidingWindow = SlidingWindow,
            SlidingPattern = SlidingPattern > 0 ? SlidingPattern : Arch == "gemma2" ? 2 : Arch == "gemma3" ? 6 : 0,
            RopeThetaLocal = RopeThetaLocal > 0 ? RopeThetaLocal : Arch == "gemma3" ? 10000 : 0,
            Norm = gpt2 ? NormKind.LayerNorm : NormKind.RmsNorm,
            NormEps = NormEps,
            NormBias = gpt2 && HasBias,
            Mlp = gpt2 ? MlpKind.Gelu : IsGemma ? MlpKind.GeGlu : MlpKind.SwiGlu,
            Positions = gpt2 ? PositionKind.Learned : PositionKind.Rope,
            QkvBias = QkvBias ?? (HasBias || Arch == "qwen2"),
            QkNorm = Arch is "qwen3" or "qwen3moe" or "gemma3" or "olmo2",
            QkNormWhole = Arch == "olmo2",
            PreNorms = Arch != "olmo2",
            Experts = IsMoe ? Experts > 0 ? Experts : 8 : 0,
            ExpertsUsed = IsMoe ? ExpertsUsed > 0 ? ExpertsUsed : 2 : 0,
            NormTopK = IsMoe && (NormTopK ?? true),
            EmbedScale = IsGemma,
            PostNorms = IsGemma || Arch == "olmo2",
            NormWeightOffset = IsGemma ? 1 : 0,
            AttentionScale = AttnScale,
            AttnSoftcap = AttnSoftcap ?? (Arch == "gemma2" ? 50 : 0),
            FinalSoftcap = FinalSoftcap ?? (Arch == "gemma2" ? 30 : 0),
            OutBias = HasBias,
            MlpBias = HasBias,
            TiedEmbeddings = Tied,
            RopeTheta = RopeTheta,
            RopeStyle = Rope,
            RotaryDim = RotaryDim,
            RopeScaling = RopeScaling is { Type: "llama3" } l3 ? new Llama3RopeScaling(l3.Factor, l3.LowFreqFactor, l3.HighFreqFactor, l3.OriginalMaxPositions) : null,
            RopeLinearFactor = RopeScaling is { Type: "linear" } lin ? lin.Factor : 1.0,
            RopeFreqFactors = RopeFreqFactors,
            LongRope = RopeScaling is { Type: "longrope" } lr
                ? new LongRopeScaling(lr.ShortFactor!, lr.LongFactor!, lr.OriginalMaxPositions, lr.AttentionFactor ?? LongRopeScaling.DefaultAttentionFactor(BlockSize, lr.OriginalMaxPositions)) : null,
        };
    }

    /// <summary>
    /// The config of a spec (a model loaded from a file), so its checkpoint keeps the architecture. Throws
    /// QuillException for a spec no config can express (e.g. LayerNorm with rotary positions).
    /// </summary>
    public static ModelConfig FromSpec(ModelSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        bool gpt2 = spec.Positions == PositionKind.Learned;
        bool consistent = gpt2
            ? spec.Norm == NormKind.LayerNorm && spec.Mlp == MlpKind.Gelu && spec.NormBias == spec.OutBias
            : spec.Norm == NormKind.RmsNorm && spec.Mlp == (spec.IsGemma ? MlpKind.GeGlu : MlpKind.SwiGlu)
              && spec.NormWeightOffset == (spec.IsGemma ? 1 : 0)
              && (spec.PreNorms ? spec.EmbedScale == spec.PostNorms : spec.PostNorms && spec.QkNormWhole && !spec.EmbedScale)
              && spec.QkNormWhole == !spec.PreNorms;
        if (!consistent || spec.MlpBias != spec.OutBias)
            throw new QuillException($"{spec.Arch}: this combination of norm, MLP, positions and biases has no Quill config; it cannot be trained.");
        if (spec.IsMoe && spec.PostNorms) throw new QuillException($"{spec.Arch}: a mixture of experts with post-norms has no Quill config; it cannot be trained.");
        string arch = gpt2 ? "gpt2" : !spec.PreNorms ? "olmo2" : spec.PostNorms ? (spec.QkNorm ? "gemma3" : "gemma2") : spec.IsMoe ? (spec.QkNorm ? "qwen3moe" : "mixtral") : spec.QkNorm ? "qwen3"
            : Architectures.Contains(spec.Arch) && spec.Arch is not "gpt2" and not "qwen3" and not "gemma2" and not "gemma3" and not "mixtral" and not "qwen3moe" ? spec.Arch : "llama";
        var c = new ModelConfig
        {
            Arch = arch,
            VocabSize = spec.VocabSize,
            NLayer = spec.Layers,
            NHead = spec.Heads,
            NKvHead = spec.KvHeads,
            NEmbd = spec.Dim,
            HeadDimOverride = spec.HeadDim * spec.Heads == spec.Dim ? 0 : spec.HeadDim,
            BlockSize = spec.MaxContext,
            MlpHidden = spec.Hidden,
            NormEps = spec.NormEps,
            RopeTheta = spec.RopeTheta,
            RopeStyle = spec.RopeStyle == Kernels.RopeStyle.Interleaved ? "interleaved" : "half",
            RotaryDim = spec.RotaryDim == spec.HeadDim ? 0 : spec.RotaryDim,
            RopeFreqFactors = spec.RopeFreqFactors,
            SlidingWindow = spec.SlidingWindow,
            SlidingPattern = spec.SlidingPattern,
            RopeThetaLocal = spec.RopeThetaLocal,
            AttnScale = spec.AttentionScale,
            AttnSoftcap = spec.AttnSoftcap == 0 && arch != "gemma2" ? null : spec.AttnSoftcap, // null: the arch's default
            FinalSoftcap = spec.FinalSoftcap == 0 && arch != "gemma2" ? null : spec.FinalSoftcap,
            Bias = spec.OutBias,
            QkvBias = spec.QkvBias,
            TieEmbeddings = spec.TiedEmbeddings,
            Experts = spec.Experts,
            ExpertsUsed = spec.ExpertsUsed,
            NormTopK = spec.IsMoe ? spec.NormTopK : null,
        };
        if (spec.RopeScaling is { } s)
            c.RopeScaling = new RopeScalingConfig { Type = "llama3", Factor = s.Factor, LowFreqFactor = s.LowFreqFactor, HighFreqFactor = s.HighFreqFactor, OriginalMaxPositions = s.OriginalMaxPositions };
        else if (spec.RopeLinearFactor != 1.0)
            c.RopeScaling = new RopeScalingConfig { Type = "linear", Factor = spec.RopeLinearFactor };
        else if (spec.LongRope is { } lr)
            c.RopeScaling = new RopeScalingConfig { Type = "longrope", ShortFactor = lr.ShortFactors, LongFactor = lr.LongFactors, OriginalMaxPositions = lr.OriginalMaxPositions, AttentionFactor = lr.AttentionFactor };
        if (spec.RopeScaling != null && spec.RopeLinearFactor != 1.0)
            throw new QuillException($"{spec.Arch}: both Llama 3 and linear RoPE scaling; no Quill config expresses that.");
        return c;
    }

    private static readonly System.Text.Json.JsonSerializerOptions CheckpointReadOptions = new()
    {
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        ReadCommentHandling = System.Text.Json.JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    /// <summary>The validated "model" section of a Quill checkpoint's config.json.</summary>
    public static ModelConfig ReadCheckpointConfig(string configPath)
    {
        ArgumentNullException.ThrowIfNull(configPath);
        if (!File.Exists(configPath)) throw new InvalidFileException($"{configPath} not found: not a Quill checkpoint.");
        ModelConfig? cfg;
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(configPath));
            if (doc.RootElement.ValueKind != System.Text.Json.JsonValueKind.Object || !doc.RootElement.TryGetProperty("model", out var m))
                throw new InvalidFileException($"{configPath} has no \"model\" section; not a Quill checkpoint config.");
            cfg = System.Text.Json.JsonSerializer.Deserialize<ModelConfig>(m, CheckpointReadOptions);
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new InvalidFileException($"{configPath} is not a valid Quill config ({e.Message.Split(" Path:")[0]}).", e);
        }
        if (cfg == null) throw new InvalidFileException($"{configPath}: the \"model\" section is empty.");
        cfg.Validate(configPath);
        return cfg;
    }

    /// <summary>Number of parameters (tied embeddings counted once).</summary>
    public long ParameterCount() => ToSpec().ParameterCount();

    public ModelConfig Clone()
    {
        var c = (ModelConfig)MemberwiseClone();
        if (RopeScaling is { } rs)
        {
            c.RopeScaling = new RopeScalingConfig
            {
                Type = rs.Type, Factor = rs.Factor, LowFreqFactor = rs.LowFreqFactor, HighFreqFactor = rs.HighFreqFactor, OriginalMaxPositions = rs.OriginalMaxPositions,
                ShortFactor = rs.ShortFactor?.ToArray(), LongFactor = rs.LongFactor?.ToArray(), AttentionFactor = rs.AttentionFactor,
            };
        }
        c.RopeFreqFactors = RopeFreqFactors?.ToArray();
        return c;
    }
}
