// Reads a Hugging Face config.json for the decoder-only families Quill runs (Llama, Mistral, Mixtral, Qwen2, Qwen3,
// Qwen3-MoE, OLMo 2, Phi-3, Gemma 2, Gemma 3's text model (model_type gemma3_text), GPT-2) into
// one plain record, filling each field from the family's own key names and HF's per-family defaults (GPT-2's
// n_embd / n_layer / n_head / n_inner / n_positions; tie_word_embeddings defaults true for GPT-2, false for the
// others; true for Gemma). Gemma's fields: query_pre_attn_scalar, attn_logit_softcapping, final_logit_softcapping,
// rope_local_base_freq, and which layers slide (Gemma 2: every other one; Gemma 3: sliding_window_pattern or
// layer_types, every n-th layer global). Handles rope_scaling of type llama3 (and keeps type and factor of
// linear / dynamic / yarn; longrope, "su" being its old name, with short_factor / long_factor / attention_factor and
// the top-level original_max_position_embeddings of Phi-3), eos ids given as a number or a list, head_dim and partial_rotary_factor when present.
// Mixtures of experts: Mixtral (num_local_experts, num_experts_per_tok; gates always renormalized) and Qwen3-MoE
// (num_experts, num_experts_per_tok, moe_intermediate_size, norm_topk_prob; every layer sparse: decoder_sparse_step
// 1 and no mlp_only_layers, else refused). A missing or bad field raises
// InvalidConfigException naming the file and the field. Does not handle: other model_types, or encoder-decoder /
// vision configs.
using System.Text.Json;

namespace Quill.Formats;

/// <summary>rope_scaling of a HF config. The llama3 fields are null for other types.</summary>
/// <param name="Type">"llama3", "linear", "dynamic", "yarn", ...</param>
/// <param name="Factor">Scaling factor.</param>
/// <param name="LowFreqFactor">llama3: low_freq_factor.</param>
/// <param name="HighFreqFactor">llama3: high_freq_factor.</param>
/// <param name="OriginalMaxPositions">llama3 / yarn / longrope: original_max_position_embeddings (Phi-3 keeps it
/// beside rope_scaling).</param>
/// <param name="ShortFactor">longrope: short_factor, one per rotated pair.</param>
/// <param name="LongFactor">longrope: long_factor.</param>
/// <param name="AttentionFactor">longrope: attention_factor when given.</param>
public sealed record HfRopeScaling(string Type, double Factor, double? LowFreqFactor, double? HighFreqFactor, int? OriginalMaxPositions,
    float[]? ShortFactor = null, float[]? LongFactor = null, double? AttentionFactor = null);

/// <summary>The hyperparameters of a Llama / Mistral / Qwen2 / GPT-2 model as its HF config.json states them.</summary>
public sealed record HfConfig
{
    /// <summary>Families this reader accepts (the config's model_type).</summary>
    public static readonly IReadOnlyList<string> SupportedModelTypes = ["llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen3_moe", "olmo2", "phi3", "gemma2", "gemma3_text", "gpt2"];

    /// <summary>model_type: llama, mistral, qwen2, qwen3, phi3, gemma2, gemma3_text or gpt2.</summary>
    public required string ModelType { get; init; }

    /// <summary>architectures[0] when present (e.g. LlamaForCausalLM), else null.</summary>
    public string? Architecture { get; init; }

    public required int HiddenSize { get; init; }
    public required int NumLayers { get; init; }
    public required int NumHeads { get; init; }

    /// <summary>Key/value heads (equal to NumHeads without grouped-query attention).</summary>
    public required int NumKvHeads { get; init; }

    /// <summary>Width of one head: head_dim when given, else HiddenSize / NumHeads.</summary>
    public required int HeadDim { get; init; }

    /// <summary>Feed-forward width (GPT-2: n_inner, default 4 x n_embd).</summary>
    public required int IntermediateSize { get; init; }

    public required int VocabSize { get; init; }

    /// <summary>max_position_embeddings (GPT-2: n_positions).</summary>
    public required int MaxPositions { get; init; }

    /// <summary>RoPE base (rope_theta, default 10000); 0 for GPT-2, which has learned positions.</summary>
    public required double RopeTheta { get; init; }

    public HfRopeScaling? RopeScaling { get; init; }

    /// <summary>Fraction of each head's dims that rotate (partial_rotary_factor, e.g. Phi-4-mini's 0.75); 1 = all.</summary>
    public double PartialRotaryFactor { get; init; } = 1.0;

    /// <summary>Norm epsilon: rms_norm_eps (RMSNorm families) or layer_norm_epsilon (GPT-2, LayerNorm).</summary>
    public required double NormEps { get; init; }

    /// <summary>True for RMSNorm (Llama, Mistral, Qwen2); false for LayerNorm (GPT-2).</summary>
    public bool UsesRmsNorm => ModelType != "gpt2";

    public required bool TieWordEmbeddings { get; init; }

    /// <summary>True when the q/k/v projections have biases (Qwen2, GPT-2; Llama when attention_bias is set).</summary>
    public required bool AttentionBias { get; init; }

    /// <summary>hidden_act / activation_function (silu, gelu_new, ...).</summary>
    public required string HiddenAct { get; init; }

    /// <summary>sliding_window when set and used (Mistral, Qwen2, Gemma), else null.</summary>
    public int? SlidingWindow { get; init; }

    /// <summary>Gemma: every n-th layer attends globally, the rest through the window (Gemma 2: 2; Gemma 3: 6); 0 otherwise.</summary>
    public int SlidingPattern { get; init; }

    /// <summary>Gemma: query_pre_attn_scalar (scores scaled by its inverse square root), else null.</summary>
    public double? QueryPreAttnScalar { get; init; }

    /// <summary>Gemma 2: attn_logit_softcapping and final_logit_softcapping (null: none).</summary>
    public double? AttnLogitSoftcapping { get; init; }

    public double? FinalLogitSoftcapping { get; init; }

    /// <summary>Gemma 3: rope_local_base_freq, the RoPE base of the sliding layers, else null.</summary>
    public double? RopeLocalBaseFreq { get; init; }

    /// <summary>Experts per layer (Mixtral's num_local_experts, Qwen3-MoE's num_experts), 0 for a dense MLP.</summary>
    public int NumExperts { get; init; }

    /// <summary>num_experts_per_tok (0 for a dense MLP).</summary>
    public int ExpertsPerToken { get; init; }

    /// <summary>Width of one expert: Qwen3-MoE's moe_intermediate_size, Mixtral's intermediate_size; 0 for a dense MLP.</summary>
    public int ExpertIntermediateSize { get; init; }

    /// <summary>The chosen experts' weights are renormalized (Mixtral: always; Qwen3-MoE: norm_topk_prob, default false).</summary>
    public bool NormTopKProb { get; init; }

    /// <summary>True for Gemma 2 and Gemma 3 text configs.</summary>
    public bool IsGemma => ModelType is "gemma2" or "gemma3_text";

    public int? BosTokenId { get; init; }

    /// <summary>End-of-sequence ids (a config may list several).</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];

    /// <summary>torch_dtype as written (float32, bfloat16, ...), or null.</summary>
    public string? TorchDtype { get; init; }

    /// <summary>Reads and validates a config.json file.</summary>
    public static HfConfig Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path)) path = Path.Combine(path, "config.json");
        if (!File.Exists(path)) throw new InvalidFileException($"{path}: config.json not found; point at the model folder or its config.json.");
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses config.json text; <paramref name="source"/> names it in error messages.</summary>
    public static HfConfig Parse(string json, string source = "config.json")
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException e)
        {
            throw new InvalidFileException($"{source}: not valid JSON ({e.Message}); fix or re-download config.json.", e);
        }
        using (doc)
        {
            JsonElement r = doc.RootElement;
            if (r.ValueKind != JsonValueKind.Object) throw new InvalidFileException($"{source}: config.json must be a JSON object.");
            var f = new Fields(r, source);
            string modelType = f.String("model_type") ?? throw f.Missing("model_type");
            if (modelType == "gemma3")
                throw new InvalidConfigException($"{source}: model_type 'gemma3' is the multimodal Gemma 3 (text_config inside); Quill runs the text model: use a Gemma3ForCausalLM checkpoint (model_type gemma3_text, e.g. gemma-3-1b) or its GGUF.");
            if (!SupportedModelTypes.Contains(modelType))
                throw new InvalidConfigException($"{source}: model_type '{modelType}' is not supported; supported: {string.Join(", ", SupportedModelTypes)}.");
            bool gpt2 = modelType == "gpt2";
            string? arch = r.TryGetProperty("architectures", out JsonElement a) && a.ValueKind == JsonValueKind.Array && a.GetArrayLength() > 0 && a[0].ValueKind == JsonValueKind.String ? a[0].GetString() : null;

            int hidden = f.Int(gpt2 ? "n_embd" : "hidden_size") ?? throw f.Missing(gpt2 ? "n_embd" : "hidden_size");
            int layers = f.Int(gpt2 ? "n_layer" : "num_hidden_layers") ?? throw f.Missing(gpt2 ? "n_layer" : "num_hidden_layers");
            int heads = f.Int(gpt2 ? "n_head" : "num_attention_heads") ?? throw f.Missing(gpt2 ? "n_head" : "num_attention_heads");
            int kvHeads = gpt2 ? heads : f.Int("num_key_value_heads") ?? heads;
            int vocab = f.Int("vocab_size") ?? throw f.Missing("vocab_size");
            int inter = gpt2 ? f.Int("n_inner") ?? 4 * hidden : f.Int("intermediate_size") ?? throw f.Missing("intermediate_size");
            int maxPos = f.Int(gpt2 ? "n_positions" : "max_position_embeddings") ?? (gpt2 ? 1024 : 2048);
            foreach (var (name, v) in new[] { ("hidden size", hidden), ("layer count", layers), ("head count", heads), ("num_key_value_heads", kvHeads), ("vocab_size", vocab), ("intermediate size", inter), ("max positions", maxPos) })
            {
                if (v <= 0) throw new InvalidConfigException($"{source}: {name} is {v}; it must be positive.");
            }
            bool gemma = modelType is "gemma2" or "gemma3_text";
            int? headDimField = f.Int("head_dim") ?? (gemma ? 256 : null); // Gemma's configs default head_dim to 256
            if (headDimField is null && hidden % heads != 0)
                throw new InvalidConfigException($"{source}: hidden size {hidden} is not a multiple of the head count {heads}; set head_dim.");
            if (heads % kvHeads != 0)
                throw new InvalidConfigException($"{source}: num_attention_heads {heads} is not a multiple of num_key_value_heads {kvHeads}.");

            double eps = gpt2 ? f.Double("layer_norm_epsilon") ?? 1e-5 : f.Double("rms_norm_eps") ?? 1e-6;
            bool? useSliding = f.Bool("use_sliding_window");
            int? window = f.Int("sliding_window");
            if (useSliding == false) window = null;
            if (gemma) window ??= 4096;
            int pattern = modelType == "gemma2" ? 2 : modelType == "gemma3_text" ? GemmaPattern(r, f, layers, source) : 0;
            double rotaryFraction = f.Double("partial_rotary_factor") ?? 1.0;
            int experts = 0, used = 0, expertWidth = 0;
            if (modelType is "mixtral" or "qwen3_moe")
            {
                bool mixtral = modelType == "mixtral";
                experts = f.Int(mixtral ? "num_local_experts" : "num_experts") ?? (mixtral ? 8 : 128);
                used = f.Int("num_experts_per_tok") ?? (mixtral ? 2 : 8);
                expertWidth = mixtral ? inter : f.Int("moe_intermediate_size") ?? throw f.Missing("moe_intermediate_size");
                if (experts < 1 || used < 1 || used > experts || expertWidth < 1)
                    throw new InvalidConfigException($"{source}: {experts} experts of width {expertWidth} with {used} per token; each token must use between 1 and all of at least one expert.");
                if (!mixtral && ((f.Int("decoder_sparse_step") ?? 1) != 1 || r.TryGetProperty("mlp_only_layers", out JsonElement dense) && dense.ValueKind == JsonValueKind.Array && dense.GetArrayLength() > 0))
                    throw new InvalidConfigException($"{source}: dense layers between the sparse ones (decoder_sparse_step, mlp_only_layers) are not supported; Quill runs models whose every layer is a mixture of experts.");
            }
            if (!(rotaryFraction > 0 && rotaryFraction <= 1))
                throw new InvalidConfigException($"{source}: partial_rotary_factor {rotaryFraction} must lie in (0, 1].");

            return new HfConfig
            {
                ModelType = modelType,
                Architecture = arch,
                HiddenSize = hidden,
                NumLayers = layers,
                NumHeads = heads,
                NumKvHeads = kvHeads,
                HeadDim = headDimField ?? hidden / heads,
                IntermediateSize = inter,
                VocabSize = vocab,
                MaxPositions = maxPos,
                RopeTheta = gpt2 ? 0 : f.Double("rope_theta") ?? (modelType == "gemma3_text" ? 1_000_000.0 : 10000.0),
                RopeScaling = gpt2 ? null : ParseRopeScaling(r, source),
                PartialRotaryFactor = rotaryFraction,
                NormEps = eps,
                TieWordEmbeddings = f.Bool("tie_word_embeddings") ?? (gpt2 || gemma),
                AttentionBias = modelType switch { "gpt2" or "qwen2" => true, _ => f.Bool("attention_bias") ?? false },
                HiddenAct = (gemma ? f.String("hidden_activation") : null) ?? f.String(gpt2 ? "activation_function" : "hidden_act") ?? (gpt2 ? "gelu_new" : gemma ? "gelu_pytorch_tanh" : "silu"),
                SlidingWindow = window,
                SlidingPattern = pattern,
                QueryPreAttnScalar = gemma ? f.Double("query_pre_attn_scalar") ?? 256 : null,
                AttnLogitSoftcapping = gemma ? f.Double("attn_logit_softcapping") ?? (modelType == "gemma2" ? 50.0 : null) : null,
                FinalLogitSoftcapping = gemma ? f.Double("final_logit_softcapping") ?? (modelType == "gemma2" ? 30.0 : null) : null,
                RopeLocalBaseFreq = modelType == "gemma3_text" ? f.Double("rope_local_base_freq") ?? 10000.0 : null,
                NumExperts = experts,
                ExpertsPerToken = used,
                ExpertIntermediateSize = expertWidth,
                NormTopKProb = modelType == "mixtral" || modelType == "qwen3_moe" && (f.Bool("norm_topk_prob") ?? false),
                BosTokenId = f.Int("bos_token_id"),
                EosTokenIds = f.IntList("eos_token_id"),
                TorchDtype = f.String("torch_dtype") ?? f.String("dtype"),
            };
        }
    }

    // Gemma 3's sliding layers: layer_types (newer configs: "sliding_attention" / "full_attention" per layer) or
    // sliding_window_pattern (older: every n-th layer full), default 6. Quill runs the every-n-th form only.
    private static int GemmaPattern(JsonElement r, Fields f, int layers, string source)
    {
        if (r.TryGetProperty("layer_types", out JsonElement lt) && lt.ValueKind == JsonValueKind.Array)
        {
            var types = lt.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString() : null).ToList();
            int first = types.IndexOf("full_attention");
            int n = first < 0 ? layers + 1 : first + 1;
            bool matches = types.Count == layers;
            for (int i = 0; matches && i < types.Count; i++)
                matches = types[i] == ((i + 1) % n == 0 ? "full_attention" : "sliding_attention");
            if (!matches)
                throw new InvalidConfigException($"{source}: layer_types is not every n-th layer full and the rest sliding; Quill runs only that pattern.");
            return n;
        }
        int p = f.Int("sliding_window_pattern") ?? 6;
        if (p < 1) throw new InvalidConfigException($"{source}: sliding_window_pattern {p} must be at least 1.");
        return p;
    }

    private static HfRopeScaling? ParseRopeScaling(JsonElement r, string source)
    {
        if (!r.TryGetProperty("rope_scaling", out JsonElement s) || s.ValueKind == JsonValueKind.Null) return null;
        if (s.ValueKind != JsonValueKind.Object) throw new InvalidConfigException($"{source}: rope_scaling must be an object or null.");
        var f = new Fields(s, source + " rope_scaling");
        string type = f.String("rope_type") ?? f.String("type") ?? throw new InvalidConfigException($"{source}: rope_scaling has no rope_type.");
        double? factorField = f.Double("factor");
        if (type is "longrope" or "su")
        {
            float[] List(string key)
            {
                if (!s.TryGetProperty(key, out JsonElement a) || a.ValueKind != JsonValueKind.Array)
                    throw new InvalidConfigException($"{source}: longrope rope_scaling needs {key}, a list of numbers.");
                return [.. a.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number ? e.GetSingle() : throw new InvalidConfigException($"{source}: rope_scaling {key} holds {e.GetRawText()}, not a number."))];
            }
            int? orig = f.Int("original_max_position_embeddings") ?? new Fields(r, source).Int("original_max_position_embeddings");
            return new HfRopeScaling("longrope", factorField ?? 1.0, null, null, orig, List("short_factor"), List("long_factor"), f.Double("attention_factor"));
        }
        if (type == "llama3")
        {
            double factor = factorField ?? throw new InvalidConfigException($"{source}: llama3 rope_scaling needs factor.");
            double low = f.Double("low_freq_factor") ?? throw new InvalidConfigException($"{source}: llama3 rope_scaling needs low_freq_factor.");
            double high = f.Double("high_freq_factor") ?? throw new InvalidConfigException($"{source}: llama3 rope_scaling needs high_freq_factor.");
            int orig = f.Int("original_max_position_embeddings") ?? throw new InvalidConfigException($"{source}: llama3 rope_scaling needs original_max_position_embeddings.");
            if (high <= low) throw new InvalidConfigException($"{source}: rope_scaling high_freq_factor {high} must exceed low_freq_factor {low}.");
            return new HfRopeScaling(type, factor, low, high, orig);
        }
        return new HfRopeScaling(type, factorField ?? 1.0, null, null, f.Int("original_max_position_embeddings"));
    }

    /// <summary>Typed, null-tolerant access to one JSON object's fields, with errors naming the field.</summary>
    private readonly struct Fields(JsonElement obj, string source)
    {
        private JsonElement? Get(string key) =>
            obj.TryGetProperty(key, out JsonElement v) && v.ValueKind != JsonValueKind.Null ? v : null;

        public InvalidConfigException Missing(string key) => new($"{source}: required field '{key}' is missing.");

        private InvalidConfigException Wrong(string key, JsonElement v, string expected) =>
            new($"{source}: field '{key}' is {v.GetRawText()}, expected {expected}.");

        public string? String(string key) => Get(key) is JsonElement v
            ? v.ValueKind == JsonValueKind.String ? v.GetString() : throw Wrong(key, v, "a string")
            : null;

        public int? Int(string key)
        {
            if (Get(key) is not JsonElement v) return null;
            if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i)) return i;
            if (v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double d) && d == Math.Floor(d) && Math.Abs(d) <= int.MaxValue) return (int)d;
            throw Wrong(key, v, "an integer");
        }

        public double? Double(string key) => Get(key) is JsonElement v
            ? v.ValueKind == JsonValueKind.Number ? v.GetDouble() : throw Wrong(key, v, "a number")
            : null;

        public bool? Bool(string key) => Get(key) is JsonElement v
            ? v.ValueKind switch { JsonValueKind.True => true, JsonValueKind.False => false, _ => throw Wrong(key, v, "true or false") }
            : null;

        public IReadOnlyList<int> IntList(string key)
        {
            if (Get(key) is not JsonElement v) return [];
            if (v.ValueKind == JsonValueKind.Number) return [Int(key)!.Value];
            if (v.ValueKind != JsonValueKind.Array) throw Wrong(key, v, "an integer or a list of integers");
            var list = new List<int>();
            foreach (JsonElement e in v.EnumerateArray())
            {
                if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out int i)) throw Wrong(key, v, "a list of integers");
                list.Add(i);
            }
            return list;
        }
    }
}
