// Opens any model file Quill runs and returns an InferenceModel with its tokenizer and chat template, detecting
// the format from the content: a Quill checkpoint folder (config.json with a "model" section + model.safetensors),
// a Hugging Face folder (config.json with model_type + model.safetensors or a sharded index), a GGUF file, or a
// llama2.c .bin checkpoint (its tokenizer.bin / tok{V}.bin looked for beside it; a file named .gguf without GGUF's
// magic is refused as not GGUF rather than read as a llama2.c checkpoint). Weights stay memory-mapped.
// A Quill folder's config.json may carry the prompt format (a merged adapter's "inference" section: BOS, chat
// template, stop ids); an adapter folder or LoRA run given as a model is refused in one line that says how to run it.
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
            else if (path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase))
                throw new InvalidFileException($"{path}: not a GGUF file (it starts with {Describe(head)}, not \"GGUF\"); re-download or re-export it.");
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

    /// <summary>A file's first bytes for an error message: as text when printable ASCII, else in hex; "nothing" when empty.</summary>
    private static string Describe(byte[] head)
    {
        if (head.Length == 0) return "nothing (the file is empty)";
        var first = head.AsSpan(0, Math.Min(4, head.Length));
        foreach (byte b in first)
            if (b < 0x20 || b > 0x7E) return Convert.ToHexString(first);
        return $"\"{System.Text.Encoding.ASCII.GetString(first)}\"";
    }

    /// <summary>A weight type by name (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q6_k).</summary>
    public static GgmlType ParseType(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (Enum.TryParse(name, ignoreCase: true, out GgmlType t) && Quantization.GgmlQuant.SupportedTypes.Contains(t)) return t;
        throw new InvalidConfigException($"--dtype '{name}' is not a weight type Quill runs; use one of {string.Join(", ", Quantization.GgmlQuant.SupportedTypes).ToLowerInvariant()}.");
    }

    /// <summary>
    /// Loads a model and converts its weights to <paramref name="dtype"/> when given (null or empty: as stored).
    /// mmap false (`--no-mmap`): weight files are read into memory instead of mapped, so overwriting them in place
    /// later cannot crash the process (it costs the file's size in memory and the time to read it).
    /// </summary>
    public static InferenceModel Load(string path, string? tokenizerPath, string? dtype, bool mmap = true)
    {
        InferenceModel model;
        if (mmap) model = Load(path, tokenizerPath);
        else
        {
            using (Formats.MappedFile.ReadIntoMemory()) model = Load(path, tokenizerPath);
        }
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
        string? ckpt = CheckpointFiles.Locate(dir);
        if (ckpt != null && IsQuillConfig(Path.Combine(ckpt, CheckpointFiles.ConfigFile))) return LoadQuillCheckpoint(ckpt);
        if (File.Exists(Path.Combine(dir, PeftAdapterFiles.ConfigFile))) throw new InvalidFileException(CheckpointWeights.AdapterMessage(dir));
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
        var weights = CheckpointWeights.Open(dir, out _);
        var model = new InferenceModel(weights);
        try
        {
            string tok = Path.Combine(CheckpointFiles.Locate(dir)!, CheckpointFiles.TokenizerFile);
            if (File.Exists(tok)) model.Tokenizer = TokenizerLoader.Load(tok);
            model.AddBos = false;
            ReadPromptFormat(Path.Combine(CheckpointFiles.Locate(dir)!, CheckpointFiles.ConfigFile), model);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>An inference view of a model in memory (e.g. one just trained): its parameters, not a copy.</summary>
    public static InferenceModel FromLanguageModel(LanguageModel model) => InferenceModel.FromLanguageModel(model);

    /// <summary>The spec a HF config.json describes (bias and tying flags are settled when the weights are read).</summary>
    public static ModelSpec SpecFromHf(HfConfig hf, string source)
    {
        ArgumentNullException.ThrowIfNull(hf);
        if (hf.RopeScaling is { } rs && rs.Type != "llama3" && rs.Type != "linear" && rs.Type != "longrope")
            throw new QuillException($"{source}: rope_scaling type '{rs.Type}' is not supported (llama3, linear and longrope are).");
        LongRopeScaling? longRope = null;
        if (hf.RopeScaling is { Type: "longrope" } lr)
        {
            int orig = lr.OriginalMaxPositions ?? hf.MaxPositions;
            if (orig < 1) throw new InvalidConfigException($"{source}: original_max_position_embeddings {orig} must be positive.");
            longRope = new LongRopeScaling(lr.ShortFactor!, lr.LongFactor!, orig, lr.AttentionFactor ?? LongRopeScaling.DefaultAttentionFactor(hf.MaxPositions, orig));
        }
        bool gpt2 = hf.ModelType == "gpt2", gemma = hf.IsGemma;
        if (gemma && hf.HiddenAct is not ("gelu_pytorch_tanh" or "gelu_new" or "gelu"))
            throw new QuillException($"{source}: hidden_activation '{hf.HiddenAct}' is not supported for Gemma (gelu_pytorch_tanh is).");
        return new ModelSpec
        {
            Arch = hf.ModelType switch { "gemma3_text" => "gemma3", "qwen3_moe" => "qwen3moe", _ => hf.ModelType },
            Dim = hf.HiddenSize,
            Layers = hf.NumLayers,
            Heads = hf.NumHeads,
            KvHeads = hf.NumKvHeads,
            HeadDim = hf.HeadDim,
            Hidden = hf.NumExperts > 0 ? hf.ExpertIntermediateSize : hf.IntermediateSize,
            Experts = hf.NumExperts,
            ExpertsUsed = hf.ExpertsPerToken,
            NormTopK = hf.NormTopKProb,
            VocabSize = hf.VocabSize,
            MaxContext = hf.MaxPositions,
            SlidingWindow = Math.Max(hf.SlidingWindow ?? 0, 0),
            SlidingPattern = hf.SlidingPattern,
            RopeThetaLocal = hf.RopeLocalBaseFreq ?? 0,
            EmbedScale = gemma,
            PostNorms = gemma || hf.ModelType == "olmo2",
            PreNorms = hf.ModelType != "olmo2", // OLMo 2 normalizes only the outputs of attention and the MLP
            QkNorm = hf.ModelType == "olmo2", // (qwen3 / gemma3: settled from the file's q_norm weights)
            QkNormWhole = hf.ModelType == "olmo2",
            NormWeightOffset = gemma ? 1 : 0,
            AttentionScale = hf.QueryPreAttnScalar is { } qs ? (float)(1 / Math.Sqrt(qs)) : 0,
            AttnSoftcap = (float)(hf.AttnLogitSoftcapping ?? 0),
            FinalSoftcap = (float)(hf.FinalLogitSoftcapping ?? 0),
            Norm = gpt2 ? NormKind.LayerNorm : NormKind.RmsNorm,
            NormEps = (float)hf.NormEps,
            Mlp = gpt2 ? MlpKind.Gelu : gemma ? MlpKind.GeGlu : MlpKind.SwiGlu,
            Positions = gpt2 ? PositionKind.Learned : PositionKind.Rope,
            RopeTheta = gpt2 ? 10000 : hf.RopeTheta,
            RotaryDim = hf.PartialRotaryFactor < 1 ? (int)(hf.HeadDim * hf.PartialRotaryFactor) : 0,
            RopeStyle = Kernels.RopeStyle.Half,
            RopeScaling = hf.RopeScaling is { Type: "llama3" } l3
                ? new Llama3RopeScaling(l3.Factor, l3.LowFreqFactor ?? 1, l3.HighFreqFactor ?? 4, l3.OriginalMaxPositions ?? 8192) : null,
            RopeLinearFactor = hf.RopeScaling is { Type: "linear" } lin ? lin.Factor : 1.0,
            LongRope = longRope,
        };
    }

    /// <summary>A Hugging Face folder: config.json + safetensors (single or sharded) + tokenizer files.</summary>
    public static InferenceModel LoadHf(string dir)
    {
        var hf = HfConfig.Load(dir);
        var spec = SpecFromHf(hf, dir);
        var files = SafeTensorsCollection.Open(dir);
        InferenceModel? model = null;
        try
        {
            var src = new SafeTensorsSource(files, dir);
            ModelWeights weights;
            if (hf.ModelType == "gpt2")
            {
                var names = src.Contains("transformer.wte.weight") ? TensorNames.NanoGpt : TensorNames.NanoGptWithoutPrefix;
                // HF GPT-2 stores Conv1D weights [in, out]: c_attn is [C, 3C] there, [3C, C] in nanoGPT / Quill files
                bool conv1d = src.Get(names.Name(WeightSlot.Qkv, 0)!).Shape is [var r0, var c0] && r0 == spec.Dim && c0 == 3 * spec.Dim;
                weights = ModelBuilders.Build(src, spec, names, [files], hf.TieWordEmbeddings, conv1d);
            }
            else
            {
                weights = ModelBuilders.Build(src, spec, TensorNames.ForHf(spec), [files], hf.TieWordEmbeddings, normOffset: spec.NormWeightOffset);
            }
            model = new InferenceModel(weights);
            // A folder without tokenizer files runs with --tokenizer; a damaged tokenizer file is an error, not "none".
            if (TokenizerLoader.FolderHasTokenizer(dir)) model.Tokenizer = TokenizerLoader.Load(dir);
            foreach (var (key, id) in hf.EosTokenIds.Select(e => ("eos_token_id", e)).Append(("bos_token_id", hf.BosTokenId ?? 0)))
            {
                if (id < 0 || id >= spec.VocabSize)
                    throw new InvalidFileException($"{Path.Combine(dir, "config.json")}: {key} {id} is outside the vocabulary of {spec.VocabSize} tokens; the config does not describe these weights.");
            }
            model.ExtraStopIds = [.. hf.EosTokenIds];
            ReadTokenizerConfig(dir, model, defaultAddBos: hf.ModelType is "llama" or "mistral" or "mixtral" || hf.IsGemma);
            return model;
        }
        catch
        {
            if (model != null) model.Dispose();
            else files.Dispose();
            throw;
        }
    }

    /// <summary>The prompt format a saved model's config.json records (its "inference" section), when present.</summary>
    private static void ReadPromptFormat(string configPath, InferenceModel model)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(configPath));
        if (!doc.RootElement.TryGetProperty(CheckpointFiles.InferenceSection, out var s) || s.ValueKind != JsonValueKind.Object) return;
        try
        {
            if (s.TryGetProperty("add_bos", out var b)) model.AddBos = b.GetBoolean();
            if (s.TryGetProperty("chat_template", out var t) && t.ValueKind == JsonValueKind.String) model.ChatTemplate = t.GetString();
            if (s.TryGetProperty("extra_stop_ids", out var ids)) model.ExtraStopIds = [.. ids.EnumerateArray().Select(e => e.GetInt32())];
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new InvalidFileException($"{configPath}: the \"{CheckpointFiles.InferenceSection}\" section holds a value of the wrong type ({e.Message}); expected add_bos (bool), chat_template (string), extra_stop_ids (ints).", e);
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
