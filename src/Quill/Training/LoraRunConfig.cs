// The "lora" section of a config file (JSON or YAML, snake_case keys) and of an adapter run's checkpoint config.json:
// the fine-tuning method (lora: an f32 base frozen under the adapter; qlora: a base kept in its block type, a float
// base quantized to quant_type) and the adapter's settings (PEFT's r, lora_alpha, lora_dropout, target_modules,
// use_rslora; Models.LoraConfig). And the "base" section an adapter checkpoint records: the model it was trained on
// and the tokenizer given with it, so `quill finetune --resume` reloads them.
// Does not handle: building the model (Finetuner.BaseModel), adapters for full fine-tuning runs (a run with a lora
// section trains an adapter).
using System.Text.Json.Serialization;
using Quill.Models;
using Quill.Quantization;

namespace Quill.Training;

/// <summary>How a fine-tuning run trains the base.</summary>
public enum FinetuneMethod
{
    /// <summary>Every parameter (or those train.trainable names), in f32.</summary>
    Full,

    /// <summary>A LoRA adapter beside the f32 base, which is frozen.</summary>
    Lora,

    /// <summary>A LoRA adapter beside a frozen base kept in its block type (LanguageModel.QuantizedBase).</summary>
    QLora,
}

/// <summary>The method and LoRA settings of a fine-tuning run (the config's "lora" section).</summary>
public sealed class LoraRunConfig
{
    /// <summary>"lora" or "qlora".</summary>
    [JsonPropertyName("method")] public string Method { get; set; } = "lora";

    /// <summary>r, the adapter's rank.</summary>
    [JsonPropertyName("rank")] public int Rank { get; set; } = 8;

    /// <summary>lora_alpha: the update is scaled by alpha / r (alpha / sqrt(r) with use_rslora).</summary>
    [JsonPropertyName("alpha")] public double Alpha { get; set; } = 16;

    /// <summary>lora_dropout on the adapter's input while training.</summary>
    [JsonPropertyName("dropout")] public float Dropout { get; set; }

    /// <summary>Projections that get an adapter (q_proj, ..., all-linear); empty = the architecture's default.</summary>
    [JsonPropertyName("target_modules")] public List<string> TargetModules { get; set; } = [];

    [JsonPropertyName("use_rslora")] public bool UseRslora { get; set; }

    /// <summary>qlora: the block type a float base's matrices are quantized to (a block-typed base stays as stored); null = q4_0.</summary>
    [JsonPropertyName("quant_type")] public string? QuantType { get; set; }

    /// <summary>The method this section names; InvalidConfigException for another word.</summary>
    [JsonIgnore]
    public FinetuneMethod ParsedMethod => Method switch
    {
        "lora" => FinetuneMethod.Lora,
        "qlora" => FinetuneMethod.QLora,
        _ => throw new InvalidConfigException($"lora.method '{Method}' is not a LoRA method; use lora or qlora (full fine-tuning has no lora section)."),
    };

    /// <summary>The quantization type this section names; InvalidConfigException for a name Quill does not know.</summary>
    [JsonIgnore]
    public GgmlType ParsedQuantType => QuantType == null ? GgmlType.Q4_0 : Enum.TryParse(QuantType, ignoreCase: true, out GgmlType t) && GgmlQuant.IsSupported(t) && GgmlTypeInfo.IsBlockType(t)
        ? t
        : throw new InvalidConfigException($"lora.quant_type '{QuantType}' is not a block type Quill quantizes to; use q4_0, nf4 or q8_0 (or q4_1, q5_0, q5_1, q4_k, q6_k).");

    /// <summary>The adapter's settings as Models.LoraConfig.</summary>
    public LoraConfig ToLoraConfig() => new()
    {
        Rank = Rank, Alpha = Alpha, Dropout = Dropout, UseRsLora = UseRslora, TargetModules = TargetModules.Count > 0 ? [.. TargetModules] : null,
    };

    /// <summary>The section for a method, an adapter's settings and (qlora; ignored for lora) the quantization type.</summary>
    public static LoraRunConfig From(FinetuneMethod method, LoraConfig lora, GgmlType quantType)
    {
        ArgumentNullException.ThrowIfNull(lora);
        if (method == FinetuneMethod.Full) throw new ArgumentException("full fine-tuning has no lora section.", nameof(method));
        return new LoraRunConfig
        {
            Method = method == FinetuneMethod.QLora ? "qlora" : "lora", Rank = lora.Rank, Alpha = lora.Alpha, Dropout = lora.Dropout,
            TargetModules = [.. lora.TargetModules ?? []], UseRslora = lora.UseRsLora,
            QuantType = method == FinetuneMethod.QLora ? quantType.ToString().ToLowerInvariant() : null,
        };
    }

    /// <summary>Throws InvalidConfigException naming the first impossible key.</summary>
    public void Validate(string source)
    {
        try
        {
            _ = ParsedMethod;
            _ = ParsedQuantType;
            ToLoraConfig().Validate();
        }
        catch (InvalidConfigException e)
        {
            throw new InvalidConfigException($"{source}: {e.Message}", e);
        }
    }

    public LoraRunConfig Clone()
    {
        var c = (LoraRunConfig)MemberwiseClone();
        c.TargetModules = [.. TargetModules];
        return c;
    }
}

/// <summary>The base model an adapter run trains on (the "base" section of its checkpoint).</summary>
public sealed class BaseModelConfig
{
    /// <summary>The model's path as given to the run, made absolute.</summary>
    [JsonPropertyName("model")] public string Model { get; set; } = "";

    /// <summary>The tokenizer given with it (llama2.c), or null when the model carries its own.</summary>
    [JsonPropertyName("tokenizer")] public string? Tokenizer { get; set; }

    public BaseModelConfig Clone() => (BaseModelConfig)MemberwiseClone();
}
