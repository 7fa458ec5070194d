// A whole run's configuration: the model section and the train section, read from one JSON or YAML file or taken
// from a named preset; a LoRA / QLoRA fine-tuning run adds its lora section (LoraRunConfig) and, in its checkpoint,
// the base it trains on. Unknown keys are errors (a typo should not silently fall back to a default).
using System.Text.Json;
using System.Text.Json.Serialization;
using Quill.Models;
using YamlDotNet.Core;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Quill.Training;

/// <summary>Model + training configuration.</summary>
public sealed class RunConfig
{
    [JsonPropertyName("model")] public ModelConfig Model { get; set; } = new();

    [JsonPropertyName("train")] public TrainConfig Train { get; set; } = new();

    /// <summary>A LoRA / QLoRA fine-tuning run's method and adapter settings, or null (full training).</summary>
    [JsonPropertyName("lora")] public LoraRunConfig? Lora { get; set; }

    /// <summary>The base model an adapter run trains on (written into its checkpoint by the finetuner), or null.</summary>
    [JsonPropertyName("base")] public BaseModelConfig? Base { get; set; }

    /// <summary>A saved model's prompt format (Checkpoint.SaveModel writes it, the model loader reads it), or null.</summary>
    [JsonPropertyName("inference")] public PromptFormatConfig? Inference { get; set; }

    /// <summary>The preset this run came from, if any.</summary>
    [JsonPropertyName("preset")] public string? Preset { get; set; }

    private static readonly JsonSerializerOptions ReadOptions = new()
    {
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    private static readonly JsonSerializerOptions WriteOptions = new() { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    /// <summary>
    /// Reads a .json, .yaml or .yml config file and validates it (validate false: the caller validates later, e.g.
    /// once the model section is replaced by a model to continue from).
    /// </summary>
    public static RunConfig Load(string path, bool validate = true)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new InvalidFileException($"config file {path} not found.");
        string text = File.ReadAllText(path);
        RunConfig? cfg;
        bool yaml = path.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".yml", StringComparison.OrdinalIgnoreCase);
        try
        {
            cfg = yaml ? FromYaml(text) : JsonSerializer.Deserialize<RunConfig>(text, ReadOptions);
        }
        catch (JsonException e)
        {
            throw new InvalidConfigException($"{path}: {e.Message.Split(" Path:")[0]} (at {e.Path ?? "?"}); keys are snake_case under 'model', 'train' and 'lora'.", e);
        }
        catch (YamlException e)
        {
            throw new InvalidConfigException($"{path}: line {e.Start.Line}: {(e.InnerException ?? e).Message}; keys are snake_case under 'model', 'train' and 'lora'.", e);
        }
        if (cfg == null) throw new InvalidConfigException($"{path} is empty; give a 'model' section (and optionally 'train').");
        if (validate) cfg.Validate(path);
        return cfg;
    }

    public void Validate(string source)
    {
        Model.Validate(source);
        Train.Validate(Model.BlockSize, source);
        Lora?.Validate(source);
    }

    public string ToJson() => JsonSerializer.Serialize(this, WriteOptions);

    public static RunConfig FromJson(string json, string source)
    {
        try
        {
            return JsonSerializer.Deserialize<RunConfig>(json, ReadOptions) ?? throw new InvalidFileException($"{source} is empty.");
        }
        catch (JsonException e)
        {
            throw new InvalidFileException($"{source} is not a valid Quill config ({e.Message.Split(" Path:")[0]}).", e);
        }
    }

    public RunConfig Clone() => new()
    {
        Model = Model.Clone(), Train = Train.Clone(), Lora = Lora?.Clone(), Base = Base?.Clone(), Inference = Inference?.Clone(), Preset = Preset,
    };

    private static RunConfig? FromYaml(string text)
    {
        var d = new DeserializerBuilder().WithNamingConvention(UnderscoredNamingConvention.Instance).Build();
        return d.Deserialize<RunConfig>(text);
    }
}

/// <summary>How prompts for a saved model are built (config.json's "inference" section): BOS first or not, the chat template, ids besides EOS that end a turn.</summary>
public sealed class PromptFormatConfig
{
    [JsonPropertyName("add_bos")] public bool AddBos { get; set; }

    [JsonPropertyName("chat_template")] public string? ChatTemplate { get; set; }

    [JsonPropertyName("extra_stop_ids")] public List<int> ExtraStopIds { get; set; } = [];

    public PromptFormatConfig Clone() => new() { AddBos = AddBos, ChatTemplate = ChatTemplate, ExtraStopIds = [.. ExtraStopIds] };
}
