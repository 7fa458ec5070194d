// Opens any model file Quill runs and returns an InferenceModel with its tokenizer and chat template, detecting
// the format from the content: a Quill checkpoint folder (config.json with a "model" section + model.safetensors),
// a Hugging Face folder (config.json with model_type + model.safetensors or a sharded index), a GGUF file, or a
// llama2.c .bin checkpoint (its tokenizer.bin / tok{V}.bin looked for beside it). Weights stay memory-mapped.
// A missing, truncated or corrupt file, or an unsupported architecture, raises a one-line QuillException.
// Does not handle: PyTorch .bin / .pt pickles, ONNX, or HF folders of other model types.
using System.Text.Json;
using Quill.Formats;
using Quill.Formats.Gguf;
using Quill.Formats.Llama2c;
using Quill.Formats.SafeTensors;
using Quill.Quantization;
using Quill.Models;
using Quill.Tokenization;
using Quill.Training;

namespace Quill.Inference;

/// <summary>Loads models for inference from Quill, HF, GGUF and llama2.c files.</summary>
public static class ModelLoader
{
    /// <summary>
    /// Opens the model at <paramref name="path"/>. <paramref name="tokenizerPath"/> overrides the tokenizer found
    /// with the model (needed for a llama2.c .bin with no tokenizer beside it).
    /// </summary>
    public static InferenceModel Load(string path, string? tokenizerPath = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        InferenceModel model;
        if (Directory.Exists(path)) model = LoadFolder(path);
        else if (!File.Exists(path)) throw new InvalidFileException($"{path}: model not found; pass a GGUF file, a llama2.c .bin, or a Quill / Hugging Face model folder.");
        else
        {
            byte[] head = ReadHead(path, 8);
            if (head.Length >= 4 && head[0] == 'G' && head[1] == 'G' && head[2] == 'U' && head[3] == 'F') model = GgufModelLoader.Load(path);
            else if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
                model = LoadFolder(Path.GetDirectoryName(Path.GetFullPath(path))!);
            else model = Llama2cModelLoader.Load(path);
        }
        try
        {
            if (tokenizerPath != null) model.Tokenizer = TokenizerLoader.Load(tokenizerPath);
            if (model.Tokenizer != null && model.Tokenizer.VocabSize > model.Spec.VocabSize)
                throw new InvalidFileException($"{tokenizerPath ?? path}: the tokenizer has {model.Tokenizer.VocabSize} tokens but the model only {model.Spec.VocabSize}; pass the model's own tokenizer.");
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return model;
    }

    /// <summary>A weight type by name (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q6_k).</summary>
    public static GgmlType ParseType(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (Enum.TryParse(name, ignoreCase: true, out GgmlType t) && Quantization.GgmlQuant.IsSupported(t)) return t;
        throw new InvalidConfigException($"--dtype '{name}' is not a weight type Quill runs; use one of {string.Join(", ", Quantization.GgmlQuant.SupportedTypes).ToLowerInvariant()}.");
    }

    /// <summary>Loads a model and converts its weights to <paramref name="dtype"/> when given (null or empty: as stored).</summary>
    public static InferenceModel Load(string path, string? tokenizerPath, string? dtype)
    {
        var model = Load(path, tokenizerPath);
        if (string.IsNullOrEmpty(dtype)) return model;
        try
        {
            return model.Requantize(ParseType(dtype));
        }
        finally
        {
            model.Dispose();
        }
    }

    private static InferenceModel LoadFolder(string dir)
    {
        string? ckpt = Checkpoint.Locate(dir);
        if (ckpt != null && IsQuillConfig(Path.Combine(ckpt, Checkpoint.ConfigFile))) return LoadQuillCheckpoint(ckpt);
        if (File.Exists(Path.Combine(dir, "config.json"))) return LoadHf(dir);
        throw new InvalidFileException($"{dir}: folder holds no model (expected a Quill checkpoint or a Hugging Face config.json with safetensors).");
    }

    private static bool IsQuillConfig(string configPath)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(configPath));
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("model", out _);
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>A Quill checkpoint: config.json (model section), model.safetensors (mapped), tokenizer.json.</summary>
    public static InferenceModel LoadQuillCheckpoint(string dir)
    {
        string ckpt = Checkpoint.Locate(dir) ?? throw new InvalidFileException($"no checkpoint in {dir}: expected config.json and model.safetensors.");
        var cfg = Checkpoint.LoadConfig(ckpt).Model;
        var files = SafeTensorsCollection.Open(Path.Combine(ckpt, Checkpoint.ModelFile));
        var owners = new List<IDisposable> { files };
        try
        {
            var model = FromConfig(new SafeTensorsSource(files, Path.Combine(ckpt, Checkpoint.ModelFile)), cfg, owners);
            string tok = Path.Combine(ckpt, Checkpoint.TokenizerFile);
            if (File.Exists(tok)) model.Tokenizer = TokenizerLoader.Load(tok);
            model.AddBos = false;
            return model;
        }
        catch
        {
            files.Dispose();
            throw;
        }
    }

    /// <summary>An inference copy of a model in memory (e.g. one just trained).</summary>
    public static InferenceModel FromLanguageModel(LanguageModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var src = new ArraySource("model in memory");
        foreach (var p in model.Parameters) src.Add(p.Name, p.Span, [.. p.Shape.ToArray().Select(d => (long)d)]);
        return FromConfig(src, model.Config, []);
    }

    private static InferenceModel FromConfig(WeightSource src, ModelConfig cfg, List<IDisposable> owners)
    {
        cfg.Validate(src.Path);
        var spec = new ModelSpec
        {
            Family = cfg.IsLlama ? ModelFamily.Llama : ModelFamily.Gpt2,
            Arch = cfg.Arch,
            Dim = cfg.NEmbd,
            Layers = cfg.NLayer,
            Heads = cfg.NHead,
            KvHeads = cfg.KvHeads,
            HeadDim = cfg.HeadDim,
            Hidden = cfg.Hidden,
            VocabSize = cfg.VocabSize,
            MaxContext = cfg.BlockSize,
            NormEps = cfg.NormEps,
            RopeTheta = cfg.RopeTheta,
            RopeStyle = cfg.Rope,
        };
        return cfg.IsLlama ? ModelBuilders.HfLlama(src, spec, owners, cfg.Tied) : ModelBuilders.Gpt2(src, spec, owners, cfg.Tied);
    }

    /// <summary>A Hugging Face folder: config.json + safetensors (single or sharded) + tokenizer files.</summary>
    public static InferenceModel LoadHf(string dir)
    {
        var hf = HfConfig.Load(dir);
        if (hf.RopeScaling is { } rs && rs.Type != "llama3" && rs.Type != "linear")
            throw new QuillException($"{dir}: rope_scaling type '{rs.Type}' is not supported (llama3 and linear are).");
        bool gpt2 = hf.ModelType == "gpt2";
        var spec = new ModelSpec
        {
            Family = gpt2 ? ModelFamily.Gpt2 : ModelFamily.Llama,
            Arch = hf.ModelType,
            Dim = hf.HiddenSize,
            Layers = hf.NumLayers,
            Heads = hf.NumHeads,
            KvHeads = hf.NumKvHeads,
            HeadDim = hf.HeadDim,
            Hidden = hf.IntermediateSize,
            VocabSize = hf.VocabSize,
            MaxContext = ModelSpec.UsableContext(hf.MaxPositions, hf.SlidingWindow ?? 0),
            SlidingWindow = Math.Max(hf.SlidingWindow ?? 0, 0),
            NormEps = (float)hf.NormEps,
            RopeTheta = gpt2 ? 10000 : hf.RopeTheta,
            RotaryDim = hf.PartialRotaryFactor < 1 ? (int)(hf.HeadDim * hf.PartialRotaryFactor) : 0,
            RopeStyle = Kernels.RopeStyle.Half,
            RopeScaling = hf.RopeScaling is { Type: "llama3" } l3
                ? new Llama3RopeScaling(l3.Factor, l3.LowFreqFactor ?? 1, l3.HighFreqFactor ?? 4, l3.OriginalMaxPositions ?? 8192) : null,
            RopeLinearFactor = hf.RopeScaling is { Type: "linear" } lin ? lin.Factor : 1.0,
        };
        var files = SafeTensorsCollection.Open(dir);
        var owners = new List<IDisposable> { files };
        try
        {
            var src = new SafeTensorsSource(files, dir);
            var model = gpt2 ? ModelBuilders.Gpt2(src, spec, owners, hf.TieWordEmbeddings) : ModelBuilders.HfLlama(src, spec, owners, hf.TieWordEmbeddings);
            model.Tokenizer = TryLoadTokenizer(dir);
            model.ExtraStopIds = [.. hf.EosTokenIds];
            ReadTokenizerConfig(dir, model, defaultAddBos: hf.ModelType == "llama" || hf.ModelType == "mistral");
            return model;
        }
        catch
        {
            files.Dispose();
            throw;
        }
    }

    private static ITokenizer? TryLoadTokenizer(string dir)
    {
        try
        {
            return TokenizerLoader.Load(dir);
        }
        catch (QuillException)
        {
            return null;
        }
    }

    /// <summary>chat_template and add_bos_token from tokenizer_config.json, when present.</summary>
    private static void ReadTokenizerConfig(string dir, InferenceModel model, bool defaultAddBos)
    {
        model.AddBos = defaultAddBos;
        string path = Path.Combine(dir, "tokenizer_config.json");
        if (!File.Exists(path)) return;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var r = doc.RootElement;
            if (r.TryGetProperty("chat_template", out var t) && t.ValueKind == JsonValueKind.String) model.ChatTemplate = t.GetString();
            if (r.TryGetProperty("add_bos_token", out var b) && b.ValueKind is JsonValueKind.True or JsonValueKind.False) model.AddBos = b.GetBoolean();
        }
        catch (JsonException e)
        {
            throw new InvalidFileException($"{path}: not valid JSON ({e.Message}); fix or re-download it.", e);
        }
    }

    private static byte[] ReadHead(string path, int n)
    {
        using var fs = File.OpenRead(path);
        var buf = new byte[Math.Min(n, fs.Length)];
        fs.ReadExactly(buf);
        return buf;
    }
}
