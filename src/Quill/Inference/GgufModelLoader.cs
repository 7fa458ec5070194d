// Builds an InferenceModel from a GGUF file: hyperparameters from {arch}.* metadata, weights viewed in place in the
// mapping (any type Quantization runs: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q6_K), tokenizer from
// tokenizer.ggml.*, chat template from tokenizer.chat_template. Architectures: llama and mistral (llama.cpp stores
// their q/k rows permuted for interleaved RoPE, so interleaved pairing runs them as stored), qwen2 and phi3 (NeoX
// "half" pairing; Phi-3's fused qkv and gate|up are split by row views), gpt2. Llama 3 scaling arrives as the
// rope_freqs tensor of per-pair divisors; linear scaling as rope.scaling.factor. A sliding window
// ({arch}.attention.sliding_window) is run as such. gemma2 and gemma3 as llama.cpp runs them: NeoX pairing, GeGLU,
// post-norms (post_attention_norm, post_ffw_norm), norm weights stored as gamma (1 + w of the HF file), the
// embedding scaled by sqrt(C), every other (gemma2) or every sixth (gemma3) layer global and the rest windowed,
// gemma3's windowed layers at RoPE base 10000, gemma2's soft-caps ({arch}.attn_logit_softcapping,
// {arch}.final_logit_softcapping; 50 and 30 when absent) and llama.cpp's attention scale (1 / sqrt(key_length),
// or 1 / sqrt(C / heads) for the 27B models, which it recognizes by their layer count).
// olmo2: no input norms, post_attention_norm / post_ffw_norm on the outputs, attn_q_norm [Hq D] / attn_k_norm
// [Hkv D] over the whole projections, NeoX pairing.
// Mixtures of experts: llama with {arch}.expert_count / expert_used_count (Mixtral: the spec says arch mixtral) and
// qwen3moe (qwen3 with experts of width expert_feed_forward_length); the router is ffn_gate_inp and the experts the
// 3-D ffn_gate_exps / ffn_up_exps / ffn_down_exps, sliced into one view per expert; llama.cpp renormalizes the
// chosen experts' weights for both (build_moe_ffn with norm_w true in both graphs), so Quill does too.
// LongRoPE (Phi-3.5 / Phi-4): rope_factors_short / rope_factors_long, {arch}.rope.scaling.original_context_length
// and {arch}.rope.scaling.attn_factor; the long factors are used when the context run exceeds the original one, as
// llama.cpp does.
// Does not handle: other architectures (falcon, ...), YaRN scaling, experts stored one tensor per expert (older llama.cpp files), shared experts (qwen2moe). A tensor of a type Quill cannot run is
// refused before anything is built, naming the file and the tensor.
using Quill.Formats.Gguf;
using Quill.Kernels;
using Quill.Models;
using Quill.Quantization;
using Quill.Tokenization;

namespace Quill.Inference;

/// <summary>Loads GGUF models for inference.</summary>
public static class GgufModelLoader
{
    /// <summary>Architectures this loader runs.</summary>
    public static readonly IReadOnlyList<string> SupportedArchitectures = ["llama", "mistral", "qwen2", "qwen3", "qwen3moe", "olmo2", "phi3", "gemma2", "gemma3", "gpt2"];

    public static InferenceModel Load(string path)
    {
        var gguf = GgufFile.Open(path);
        try
        {
            return Build(gguf);
        }
        catch
        {
            gguf.Dispose();
            throw;
        }
    }

    private static InferenceModel Build(GgufFile g)
    {
        string arch = g.Architecture ?? throw new InvalidFileException($"{g.Path}: general.architecture is missing; not a model GGUF (a vocabulary-only file?).");
        if (!SupportedArchitectures.Contains(arch))
            throw new QuillException($"{g.Path}: architecture '{arch}' is not supported (supported: {string.Join(", ", SupportedArchitectures)}).");
        if (g.Tensors.Count == 0) throw new InvalidFileException($"{g.Path}: the file holds no tensors (a vocabulary-only GGUF?); pass a model file.");
        foreach (var t in g.Tensors)
        {
            if (!GgmlQuant.IsSupported(t.Type))
                throw new QuillException($"{g.Path}: tensor '{t.Name}' is {t.Type}, a type Quill cannot run (supported: {string.Join(", ", GgmlQuant.SupportedTypes)}); use a file quantized to one of those.");
        }
        bool gpt2 = arch == "gpt2";
        int Int(string key) => g.TryGetInt32($"{arch}.{key}", out int v) ? v : throw new InvalidFileException($"{g.Path}: metadata key '{arch}.{key}' is missing; the file was not exported completely.");
        int dim = Int("embedding_length"), heads = Int("attention.head_count");
        int kvHeads = g.TryGetInt32($"{arch}.attention.head_count_kv", out int kv) ? kv : heads;
        int headDim = g.TryGetInt32($"{arch}.attention.key_length", out int kl) ? kl : heads > 0 ? dim / heads : 0;
        var embd = g.GetTensor("token_embd.weight");
        int vocab = (int)embd.Dimensions[^1];
        float eps = g.TryGetFloat32($"{arch}.attention.layer_norm_rms_epsilon", out float e1) ? e1
            : g.TryGetFloat32($"{arch}.attention.layer_norm_epsilon", out float e2) ? e2 : 1e-5f;
        float[]? freqFactors = null;
        if (g.TryGetTensor("rope_freqs.weight", out var rf))
        {
            freqFactors = new float[rf.ElementCount];
            GgmlQuant.Dequantize(rf.Type, g.GetTensorData(rf), freqFactors);
        }
        double linear = 1.0;
        if (g.TryGetString($"{arch}.rope.scaling.type", out string st) && st != "none")
        {
            if (st != "linear") throw new QuillException($"{g.Path}: rope scaling '{st}' is not supported (linear and llama3 are).");
            linear = g.TryGetFloat32($"{arch}.rope.scaling.factor", out float fac) && fac > 0 ? fac : 1.0;
        }
        int window = g.TryGetInt32($"{arch}.attention.sliding_window", out int sw) ? sw : 0;
        bool gemma = arch is "gemma2" or "gemma3";
        int layers = Int("block_count");
        float Cap(string key, float absent) => g.TryGetFloat32($"{arch}.{key}", out float v) ? v : absent;
        bool big = arch == "gemma2" ? layers == 46 : layers == 62; // llama.cpp's 27B rule for the attention scale
        int experts = g.TryGetInt32($"{arch}.expert_count", out int ec) ? ec : 0;
        int used = g.TryGetInt32($"{arch}.expert_used_count", out int eu) ? eu : 0;
        if (arch == "qwen3moe" && experts < 1) throw new InvalidFileException($"{g.Path}: metadata key 'qwen3moe.expert_count' is missing; a qwen3moe file needs its experts.");
        if (experts > 0 && arch is not ("llama" or "qwen3moe"))
            throw new QuillException($"{g.Path}: {arch} with experts is not supported (llama / Mixtral and qwen3moe are).");
        int hidden = Int("feed_forward_length");
        if (arch == "qwen3moe")
            hidden = g.TryGetInt32("qwen3moe.expert_feed_forward_length", out int ef) && ef > 0 ? ef : used > 0 ? hidden / used : hidden; // llama.cpp's fallback
        var spec = new ModelSpec
        {
            Arch = arch == "llama" && experts > 0 ? "mixtral" : arch,
            Dim = dim,
            Layers = layers,
            Heads = heads,
            KvHeads = kvHeads,
            HeadDim = headDim,
            Hidden = hidden,
            Experts = experts,
            ExpertsUsed = used,
            NormTopK = experts > 0, // llama.cpp's llama and qwen3moe graphs always renormalize
            VocabSize = vocab,
            MaxContext = Int("context_length"),
            SlidingWindow = Math.Max(window, 0),
            SlidingPattern = arch == "gemma2" ? 2 : arch == "gemma3" ? 6 : 0,
            RopeThetaLocal = arch == "gemma3" ? 10000 : 0,
            EmbedScale = gemma,
            PostNorms = gemma || arch == "olmo2",
            PreNorms = arch != "olmo2",
            QkNorm = arch == "olmo2",
            QkNormWhole = arch == "olmo2",
            NormWeightOffset = gemma ? 1 : 0,
            AttentionScale = !gemma ? 0 : big && heads > 0 ? 1f / MathF.Sqrt(dim / heads) : 1f / MathF.Sqrt(headDim),
            AttnSoftcap = arch == "gemma2" ? Cap("attn_logit_softcapping", 50f) : 0,
            FinalSoftcap = arch == "gemma2" ? Cap("final_logit_softcapping", 30f) : 0,
            Norm = gpt2 ? NormKind.LayerNorm : NormKind.RmsNorm,
            NormEps = eps,
            Mlp = gpt2 ? MlpKind.Gelu : gemma ? MlpKind.GeGlu : MlpKind.SwiGlu,
            Positions = gpt2 ? PositionKind.Learned : PositionKind.Rope,
            RopeTheta = g.TryGetFloat32($"{arch}.rope.freq_base", out float fb) ? fb : 10000,
            RotaryDim = g.TryGetInt32($"{arch}.rope.dimension_count", out int rd) && rd != headDim ? rd : 0, // all of the head: 0, as every loader says it
            RopeStyle = arch is "llama" or "mistral" ? RopeStyle.Interleaved : RopeStyle.Half, // qwen3moe: NeoX
            RopeFreqFactors = freqFactors,
            RopeLinearFactor = linear,
        };
        if (g.TryGetTensor("rope_factors_long.weight", out var rl) | g.TryGetTensor("rope_factors_short.weight", out var rs))
        {
            // LongRoPE (Phi-3.5 / Phi-4): the factors, the original context and the magnitude llama.cpp's converter wrote
            if (rl == null || rs == null) throw new InvalidFileException($"{g.Path}: LongRoPE needs both rope_factors_long and rope_factors_short; the file has one.");
            float[] Factors(GgufTensorInfo t)
            {
                var f = new float[t.ElementCount];
                GgmlQuant.Dequantize(t.Type, g.GetTensorData(t), f);
                return f;
            }
            int orig = g.TryGetInt32($"{arch}.rope.scaling.original_context_length", out int oc) ? oc
                : throw new InvalidFileException($"{g.Path}: metadata key '{arch}.rope.scaling.original_context_length' is missing; LongRoPE needs the original context.");
            double attn = g.TryGetFloat32($"{arch}.rope.scaling.attn_factor", out float af) ? af : LongRopeScaling.DefaultAttentionFactor(spec.MaxContext, orig);
            spec = spec with { LongRope = new LongRopeScaling(Factors(rs), Factors(rl), orig, attn) };
        }
        var model = new InferenceModel(ModelBuilders.Build(new GgufSource(g), spec, TensorNames.Gguf, [g], tied: false));
        if (g.ContainsKey("tokenizer.ggml.model") && !GgufVocab.HasNoVocabulary(g))
        {
            model.Tokenizer = GgufVocab.FromGguf(g);
            string tm = g.TryGetString("tokenizer.ggml.model", out string m) ? m : "";
            model.AddBos = g.TryGetBool("tokenizer.ggml.add_bos_token", out bool ab) ? ab : tm == "llama";
        }
        if (g.TryGetString("tokenizer.chat_template", out string tpl)) model.ChatTemplate = tpl;
        var stops = new List<int>();
        foreach (string key in new[] { "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id" })
        {
            if (g.TryGetInt32(key, out int id) && id >= 0 && id < vocab) stops.Add(id);
        }
        model.ExtraStopIds = stops;
        return model;
    }
}
