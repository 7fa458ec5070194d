// The shape of a transformer: architecture, sizes, and the choices that differ between GPT-2 and Llama. Read from
// the "model" section of a config file (JSON or YAML, snake_case names) or from a preset, and validated so that
// impossible shapes fail with the field name and the fix before any memory is allocated.
// Not handled: mixture-of-experts, sliding-window attention, ALiBi.
using System.Text.Json.Serialization;
using Quill.Kernels;

namespace Quill.Models;

/// <summary>Transformer shape and architecture choices.</summary>
public sealed class ModelConfig
{
    /// <summary>"gpt2" (learned positions, LayerNorm, GELU, tied embeddings) or "llama" (RoPE, RMSNorm, SwiGLU, GQA).</summary>
    [JsonPropertyName("arch")] public string Arch { get; set; } = "gpt2";

    [JsonPropertyName("vocab_size")] public int VocabSize { get; set; } = 50304;

    [JsonPropertyName("n_layer")] public int NLayer { get; set; } = 6;

    [JsonPropertyName("n_head")] public int NHead { get; set; } = 6;

    /// <summary>Key/value heads for grouped-query attention (0 = same as n_head).</summary>
    [JsonPropertyName("n_kv_head")] public int NKvHead { get; set; }

    [JsonPropertyName("n_embd")] public int NEmbd { get; set; } = 384;

    /// <summary>Context length: the longest sequence the model accepts.</summary>
    [JsonPropertyName("block_size")] public int BlockSize { get; set; } = 256;

    /// <summary>Hidden width of the MLP (0 = 4 * n_embd for gpt2; for llama, 8/3 * n_embd rounded up to a multiple of 64).</summary>
    [JsonPropertyName("mlp_hidden")] public int MlpHidden { get; set; }

    [JsonPropertyName("norm_eps")] public float NormEps { get; set; } = 1e-5f;

    [JsonPropertyName("rope_theta")] public double RopeTheta { get; set; } = 10000.0;

    /// <summary>"half" (Hugging Face rotate_half) or "interleaved" (Meta / llama2.c pairs).</summary>
    [JsonPropertyName("rope_style")] public string RopeStyle { get; set; } = "half";

    [JsonPropertyName("dropout")] public float Dropout { get; set; }

    /// <summary>Biases in linear layers and LayerNorm (null = true for gpt2, false for llama).</summary>
    [JsonPropertyName("bias")] public bool? Bias { get; set; }

    /// <summary>Share the token embedding with the output head (null = true for gpt2, false for llama).</summary>
    [JsonPropertyName("tie_embeddings")] public bool? TieEmbeddings { get; set; }

    [JsonIgnore] public bool IsLlama => Arch == "llama";

    [JsonIgnore] public int KvHeads => NKvHead > 0 ? NKvHead : NHead;

    [JsonIgnore] public int HeadDim => NEmbd / NHead;

    [JsonIgnore] public bool HasBias => Bias ?? !IsLlama;

    [JsonIgnore] public bool Tied => TieEmbeddings ?? !IsLlama;

    [JsonIgnore]
    public int Hidden => MlpHidden > 0 ? MlpHidden : IsLlama ? (8 * NEmbd / 3 + 63) / 64 * 64 : 4 * NEmbd;

    [JsonIgnore]
    public RopeStyle Rope => RopeStyle == "interleaved" ? Kernels.RopeStyle.Interleaved : Kernels.RopeStyle.Half;

    /// <summary>Throws InvalidConfigException naming the first impossible field and the fix.</summary>
    public void Validate(string source = "model config")
    {
        void Fail(string msg) => throw new InvalidConfigException($"{source}: {msg}");
        if (Arch != "gpt2" && Arch != "llama") Fail($"arch '{Arch}' is not supported; use 'gpt2' or 'llama'.");
        if (VocabSize < 1) Fail($"vocab_size must be at least 1 (got {VocabSize}).");
        if (NLayer < 1) Fail($"n_layer must be at least 1 (got {NLayer}).");
        if (NHead < 1) Fail($"n_head must be at least 1 (got {NHead}).");
        if (NEmbd < 1) Fail($"n_embd must be at least 1 (got {NEmbd}).");
        if (BlockSize < 1) Fail($"block_size must be at least 1 (got {BlockSize}).");
        if (NEmbd % NHead != 0) Fail($"n_embd {NEmbd} is not divisible by n_head {NHead}; choose n_embd a multiple of n_head.");
        if (NKvHead < 0 || KvHeads > NHead || NHead % KvHeads != 0)
            Fail($"n_head {NHead} is not a multiple of n_kv_head {NKvHead}; grouped-query attention needs n_kv_head to divide n_head.");
        if (IsLlama && HeadDim % 2 != 0) Fail($"head size n_embd/n_head = {HeadDim} must be even for rotary embeddings.");
        if (MlpHidden < 0) Fail($"mlp_hidden must be positive (got {MlpHidden}).");
        if (RopeStyle != "half" && RopeStyle != "interleaved") Fail($"rope_style '{RopeStyle}' is not supported; use 'half' or 'interleaved'.");
        if (Dropout < 0f || Dropout >= 1f) Fail($"dropout must be in [0, 1) (got {Dropout}).");
        if (!(NormEps > 0f)) Fail($"norm_eps must be positive (got {NormEps}).");
    }

    /// <summary>Number of parameters (tied embeddings counted once).</summary>
    public long ParameterCount()
    {
        long c = NEmbd, h = Hidden, kv = (long)KvHeads * HeadDim;
        long perLayer = IsLlama
            ? 2 * c + c * c + 2 * c * kv + c * c + 3 * c * h
            : 4 * c + (HasBias ? 3 * c + c + h + c : 0) + 3 * c * c + c * c + 2 * c * h;
        long total = (long)NLayer * perLayer + (long)VocabSize * c + (IsLlama ? c : 2 * c);
        if (!IsLlama) total += (long)BlockSize * c;
        if (!Tied) total += (long)VocabSize * c;
        return total;
    }

    public ModelConfig Clone() => (ModelConfig)MemberwiseClone();
}
