// Which ggml type each matrix of an exported or quantized GGUF file gets: one type for all (f32, f16, bf16, q8_0,
// q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k), or one of llama.cpp's mixes (its llama_tensor_get_type rules for
// the tensors Quill's architectures have):
// - every quantized type but q8_0: the output head (or the tied token embedding that serves as it) is Q6_K;
// - q4_k_m / q5_k_m: attn_v and ffn_down of the "more bits" layers (the first and last eighth, and every third
//   layer between) are Q6_K; gpt2's fused attn_qkv is Q5_K (q4_k_m) or Q6_K (q5_k_m); the rest Q4_K / Q5_K.
// A matrix whose rows are not whole 256-value super-blocks falls back as llama.cpp does (Q4_K -> Q5_0,
// Q5_K -> Q5_1, Q6_K -> Q8_0), and to F16 when not whole 32-value blocks either.
// Does not handle: the GQA / MoE / expert-count refinements, the IQ and Q2_K / Q3_K mixes, importance matrices.
using Quill.Models;
using Quill.Quantization;

namespace Quill.Inference;

/// <summary>A per-tensor type choice for a GGUF file.</summary>
public sealed class TensorTypePlan
{
    private readonly bool mix;
    private readonly bool uniform;

    private TensorTypePlan(string name, GgmlType type, uint fileType, bool mix, bool uniform = false)
    {
        Name = name;
        Default = type;
        FileType = fileType;
        this.mix = mix;
        this.uniform = uniform;
    }

    /// <summary>
    /// Every matrix in <paramref name="type"/> (the head too), F32 where rows are not whole blocks: not a llama.cpp
    /// mix, for files that test one block type alone.
    /// </summary>
    public static TensorTypePlan Uniform(GgmlType type) => new(type.ToString().ToLowerInvariant(), type, GgufExport.FileType(type), false, uniform: true);

    /// <summary>The name it was made from (q4_k_m, f16, ...).</summary>
    public string Name { get; }

    /// <summary>The type most matrices get.</summary>
    public GgmlType Default { get; }

    /// <summary>llama.cpp's general.file_type for the plan.</summary>
    public uint FileType { get; }

    /// <summary>Names Parse accepts.</summary>
    public static IReadOnlyList<string> Names { get; } = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k", "q5_k", "q6_k", "q4_k_m", "q5_k_m"];

    /// <summary>A plan by name (see Names), or InvalidConfigException listing them.</summary>
    public static TensorTypePlan Parse(string name)
    {
        string n = (name ?? "").Trim().ToLowerInvariant();
        return n switch
        {
            "q4_k_m" => new(n, GgmlType.Q4_K, 15, true),
            "q5_k_m" => new(n, GgmlType.Q5_K, 17, true),
            "q4_k" or "q4_k_s" => new(n, GgmlType.Q4_K, 14, false),
            "q5_k" or "q5_k_s" => new(n, GgmlType.Q5_K, 16, false),
            _ when Names.Contains(n) && Enum.TryParse(n, ignoreCase: true, out GgmlType t) => new(n, t, GgufExport.FileType(t), false),
            _ => throw new InvalidConfigException($"type '{name}' is unknown; use one of {string.Join(", ", Names)}."),
        };
    }

    /// <summary>llama.cpp's "more bits" layers of q4_k_m / q5_k_m.</summary>
    public static bool UseMoreBits(int layer, int layers) => layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;

    /// <summary>The type of one matrix (layer -1 for model-wide ones) whose rows hold <paramref name="cols"/> values.</summary>
    public GgmlType TypeFor(WeightSlot slot, int layer, int layers, int cols, bool tied = false)
    {
        var t = Default;
        if (uniform) return cols % GgmlTypeInfo.BlockSize(t) == 0 ? t : GgmlType.F32;
        bool quantized = GgmlTypeInfo.BlockSize(Default) > 1;
        bool head = slot == WeightSlot.Head || (tied && slot == WeightSlot.TokenEmbedding);
        if (quantized && Default != GgmlType.Q8_0 && head) t = GgmlType.Q6_K;
        else if (mix && (slot == WeightSlot.V || slot == WeightSlot.Down) && UseMoreBits(layer, layers)) t = GgmlType.Q6_K;
        else if (mix && slot == WeightSlot.Qkv) t = Default == GgmlType.Q4_K ? GgmlType.Q5_K : GgmlType.Q6_K;
        if (cols % GgmlTypeInfo.BlockSize(t) != 0)
        {
            t = t switch
            {
                GgmlType.Q4_K => GgmlType.Q5_0,
                GgmlType.Q5_K => GgmlType.Q5_1,
                GgmlType.Q6_K => GgmlType.Q8_0,
                _ => t,
            };
        }
        return cols % GgmlTypeInfo.BlockSize(t) == 0 ? t : GgmlType.F16;
    }
}
