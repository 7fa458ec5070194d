// PEFT's LoRA adapter folder, written and read (../shared/research/wave2-facts.md section 1.1):
//   adapter_config.json        peft_type "LORA", task_type "CAUSAL_LM", r, lora_alpha, lora_dropout, target_modules,
//                              use_rslora, bias "none", fan_in_fan_out, base_model_name_or_path, inference_mode true
//                              (and PEFT's other keys at their defaults)
//   adapter_model.safetensors  metadata {"format": "pt"}; per adapted module "base_model.model." + the module's
//                              Hugging Face path + ".lora_A.weight" [r, in] / ".lora_B.weight" [out, r]
// Names: Quill's parameter names are the Hugging Face ones (TensorNames: model.layers.{i}.self_attn.q_proj for the
// Llama family, transformer.h.{i}.attn.c_attn for GPT-2), so the file name is the prefix + the parameter name.
// GPT-2 (Conv1D): HF stores c_attn / c_proj / c_fc weights [in, out] and PEFT then sets fan_in_fan_out true, but PEFT
// still builds lora_A = Linear(in, r) and lora_B = Linear(r, out) from the Conv1D's (in, out) and its forward adds
// lora_B(lora_A(x)) untransposed; fan_in_fan_out only transposes the delta B A [out, in] when merging into the
// [in, out] weight. So A and B are written as they are ([r, in], [out, r]; c_attn's B [3C, r] in q|k|v rows, the
// order of Conv1D's output columns) with fan_in_fan_out true, and Quill merges B A into its [out, in] copy directly.
// RoPE: Quill runs GGUF llama / mistral and llama2.c models with interleaved pairs (2i, 2i+1) and their q/k rows in
// Meta's order, where Hugging Face pairs (i, i + R/2). Within each head of q_proj (Hq heads) and k_proj (Hkv heads)
// the HF row j * R/2 + i is Meta row 2i + j (R rotary dims; rows past R unchanged), as torchtune's export does
// (view(heads, R/2, 2, r).transpose(1, 2)). lora_B's rows are output rows, so they are permuted into HF order on
// save and back on load; lora_A (input side) is unchanged.
// A LoRA run folder (its checkpoint/ is a PEFT folder) is accepted where a folder is read.
// Not handled: adapter_model.bin (pickle), DoRA, lora_bias, rank_pattern / alpha_pattern, modules_to_save, several
// adapters in one folder, adapters on embeddings or the head, phi3's fused qkv_proj / gate_up_proj.
using System.Text.Json;
using System.Text.Json.Nodes;
using Quill.Formats.SafeTensors;
using Quill.Kernels;
using Quill.Tensors;

namespace Quill.Models;

/// <summary>Reads and writes PEFT LoRA adapter folders.</summary>
public static class PeftAdapterFiles
{
    /// <summary>The config file's name.</summary>
    public const string ConfigFile = "adapter_config.json";

    /// <summary>The weights file's name.</summary>
    public const string WeightsFile = "adapter_model.safetensors";

    /// <summary>What PEFT puts before the model's own module path.</summary>
    public const string Prefix = "base_model.model.";

    private const string SuffixA = ".lora_A.weight", SuffixB = ".lora_B.weight";

    /// <summary>Writes the adapter's folder (created if needed; both files replaced atomically).</summary>
    public static void Save(LoraAdapter adapter, string folder, string baseModelNameOrPath)
    {
        ArgumentNullException.ThrowIfNull(adapter);
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(baseModelNameOrPath);
        try
        {
            Directory.CreateDirectory(folder);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new QuillException($"{folder}: cannot create the adapter folder ({e.Message.TrimEnd('.')}).", e);
        }
        var spec = adapter.Spec;
        var tensors = new List<SafeTensor>();
        foreach (var m in adapter.Modules)
        {
            tensors.Add(new SafeTensor(Prefix + m.Module + SuffixA, m.A.Shape, m.A.ToArray()));
            float[] b = m.B.ToArray();
            if (NeedsRopePermutation(spec, m.Slot)) b = PermuteRows(b, m.B.Dim(1), Heads(spec, m.Slot), spec.HeadDim, spec.EffectiveRotaryDim, toHf: true);
            tensors.Add(new SafeTensor(Prefix + m.Module + SuffixB, m.B.Shape, b));
        }
        SafeTensorsWriter.Write(Path.Combine(folder, WeightsFile), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        AtomicFile.WriteAllText(Path.Combine(folder, ConfigFile), ConfigJson(adapter, baseModelNameOrPath));
    }

    private static string ConfigJson(LoraAdapter adapter, string baseModel)
    {
        var c = adapter.Config;
        var targets = new JsonArray();
        foreach (string t in c.TargetModules ?? []) targets.Add(t);
        var j = new JsonObject
        {
            ["alpha_pattern"] = new JsonObject(),
            ["auto_mapping"] = null,
            ["base_model_name_or_path"] = baseModel,
            ["bias"] = "none",
            ["fan_in_fan_out"] = LoraConfig.Family(adapter.Spec) == LoraFamily.Gpt2,
            ["inference_mode"] = true,
            ["init_lora_weights"] = true,
            ["layers_pattern"] = null,
            ["layers_to_transform"] = null,
            ["lora_alpha"] = c.Alpha == Math.Floor(c.Alpha) && c.Alpha < int.MaxValue ? JsonValue.Create((int)c.Alpha) : JsonValue.Create(c.Alpha),
            ["lora_dropout"] = (double)c.Dropout,
            ["modules_to_save"] = null,
            ["peft_type"] = "LORA",
            ["r"] = c.Rank,
            ["rank_pattern"] = new JsonObject(),
            ["revision"] = null,
            ["target_modules"] = targets,
            ["task_type"] = "CAUSAL_LM",
            ["use_dora"] = false,
            ["use_rslora"] = c.UseRsLora,
        };
        return j.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    /// <summary>Reads a PEFT adapter folder onto model (see LanguageModel.LoadLora).</summary>
    internal static LoraAdapter Load(string folder, TransformerModel model)
    {
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(model);
        if (model.Lora != null) throw new InvalidConfigException($"{folder}: the model already carries a LoRA adapter; load this one onto a fresh base model.");
        folder = Resolve(folder);
        string configPath = Path.Combine(folder, ConfigFile), weightsPath = Path.Combine(folder, WeightsFile);
        if (!Directory.Exists(folder)) throw new InvalidFileException($"{folder} not found; give a PEFT adapter folder (adapter_config.json and adapter_model.safetensors).");
        if (!File.Exists(configPath)) throw new InvalidFileException($"{configPath} not found; a PEFT adapter folder holds adapter_config.json and adapter_model.safetensors.");
        if (!File.Exists(weightsPath))
        {
            throw new InvalidFileException(File.Exists(Path.Combine(folder, "adapter_model.bin"))
                ? $"{weightsPath} not found, only the pickled adapter_model.bin, which Quill does not read; save the adapter with safetensors (save_pretrained(safe_serialization=True))."
                : $"{weightsPath} not found; a PEFT adapter folder holds adapter_config.json and adapter_model.safetensors.");
        }
        var config = ReadConfig(configPath);
        var spec = model.Spec;
        var sites = model.LoraSites().ToDictionary(s => s.Module, StringComparer.Ordinal);

        using var file = SafeTensorsFile.Open(weightsPath);
        // every tensor names a module of this model, both halves are there, and their shapes fit, before anything changes
        var found = new Dictionary<(int Layer, WeightSlot Slot), string>();
        foreach (string name in file.Names)
        {
            var (module, suffix) = ModuleOf(weightsPath, name);
            // a GPT-2 adapter made on GPT2Model (no LM head) lacks the "transformer." of GPT2LMHeadModel
            if (!sites.TryGetValue(module, out var site) && !sites.TryGetValue("transformer." + module, out site))
                throw new InvalidFileException($"{weightsPath}: tensor '{name}' adapts '{module}', which the base model ({spec.Arch}, {spec.Layers} layers) lacks; the adapter was made for another model.");
            string prefix = name[..^suffix.Length];
            foreach (var (half, shape) in new[] { (SuffixA, new long[] { config.Rank, site.In }), (SuffixB, new long[] { site.Out, config.Rank }) })
            {
                if (!file.TryGetInfo(prefix + half, out var info)) throw new InvalidFileException($"{weightsPath}: '{prefix}{half}' is missing (each adapted module needs lora_A and lora_B); the file is incomplete.");
                if (!info.Shape.SequenceEqual(shape))
                    throw new InvalidFileException($"{weightsPath}: '{prefix}{half}' has shape [{string.Join(", ", info.Shape)}] but r {config.Rank} on this base model needs [{string.Join(", ", shape)}]; the adapter was made for another model.");
            }
            found[(site.Layer, site.Slot)] = prefix;
        }
        if (found.Count == 0) throw new InvalidFileException($"{weightsPath} holds no LoRA tensors (names ending in {SuffixA} / {SuffixB}).");

        var adapter = model.AttachLora(config, found.Keys, rng: null);
        foreach (var m in adapter.Modules)
        {
            string prefix = found[(m.Layer, m.Slot)];
            file.ReadSingle(prefix + SuffixA, m.A.Span);
            file.ReadSingle(prefix + SuffixB, m.B.Span);
            if (NeedsRopePermutation(spec, m.Slot))
                PermuteRows(m.B.ToArray(), m.B.Dim(1), Heads(spec, m.Slot), spec.HeadDim, spec.EffectiveRotaryDim, toHf: false).CopyTo(m.B.Span);
        }
        return adapter;
    }

    /// <summary>The adapter folder itself, or the checkpoint folder of a LoRA run folder (quill finetune --method lora's OUT).</summary>
    public static string Resolve(string folder)
    {
        ArgumentNullException.ThrowIfNull(folder);
        string inner = Path.Combine(folder, Formats.CheckpointFiles.FolderName);
        return !File.Exists(Path.Combine(folder, ConfigFile)) && File.Exists(Path.Combine(inner, ConfigFile)) ? inner : folder;
    }

    /// <summary>
    /// Reads A and B of every module of <paramref name="adapter"/> from a folder saved from an adapter of the same
    /// modules and rank (a checkpoint of the run), exactly (q/k rows permuted back as on load). InvalidFileException,
    /// one line, for a missing file, a missing or extra module, or another shape; nothing is changed then.
    /// </summary>
    internal static void ReadWeights(LoraAdapter adapter, string folder)
    {
        ArgumentNullException.ThrowIfNull(adapter);
        ArgumentNullException.ThrowIfNull(folder);
        string path = Path.Combine(folder, WeightsFile);
        if (!File.Exists(path)) throw new InvalidFileException($"{path} not found; the adapter checkpoint is incomplete.");
        using var file = SafeTensorsFile.Open(path);
        foreach (var m in adapter.Modules)
        {
            foreach (var t in new[] { (Name: Prefix + m.Module + SuffixA, Tensor: m.A), (Name: Prefix + m.Module + SuffixB, Tensor: m.B) })
            {
                if (!file.TryGetInfo(t.Name, out var info) || !info.Shape.SequenceEqual(t.Tensor.Shape.Select(d => (long)d)))
                    throw new InvalidFileException($"{path}: '{t.Name}' is missing or not {Tensor.Describe(t.Tensor.Shape)}; the adapter was saved from another adapter (other rank or target modules).");
            }
        }
        if (file.Names.Count() != 2 * adapter.Modules.Count)
            throw new InvalidFileException($"{path} holds {file.Names.Count()} tensors but the adapter has {2 * adapter.Modules.Count}; it was saved from another adapter (other target modules).");
        var spec = adapter.Spec;
        foreach (var m in adapter.Modules)
        {
            file.ReadSingle(Prefix + m.Module + SuffixA, m.A.Span);
            file.ReadSingle(Prefix + m.Module + SuffixB, m.B.Span);
            if (NeedsRopePermutation(spec, m.Slot))
                PermuteRows(m.B.ToArray(), m.B.Dim(1), Heads(spec, m.Slot), spec.HeadDim, spec.EffectiveRotaryDim, toHf: false).CopyTo(m.B.Span);
        }
    }

    /// <summary>The module path and suffix of a tensor name: "base_model.model." + module + ".lora_A.weight" / ".lora_B.weight".</summary>
    private static (string Module, string Suffix) ModuleOf(string path, string name)
    {
        string? suffix = name.EndsWith(SuffixA, StringComparison.Ordinal) ? SuffixA : name.EndsWith(SuffixB, StringComparison.Ordinal) ? SuffixB : null;
        if (suffix == null || !name.StartsWith(Prefix, StringComparison.Ordinal))
            throw new InvalidFileException($"{path}: tensor '{name}' is not a LoRA weight ({Prefix}MODULE{SuffixA} / {SuffixB}); Quill reads plain LoRA adapters (no DoRA, lora_bias or modules_to_save).");
        return (name[Prefix.Length..^suffix.Length], suffix);
    }

    /// <summary>The LoraConfig of an adapter_config.json; TargetModules are settled later from the tensors the file holds.</summary>
    private static LoraConfig ReadConfig(string path)
    {
        JsonObject j;
        try
        {
            j = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidFileException($"{path} is not a JSON object; it is not a PEFT adapter config.");
        }
        catch (JsonException e)
        {
            throw new InvalidFileException($"{path} is not valid JSON ({e.Message}); it is not a PEFT adapter config.", e);
        }
        void Fail(string what) => throw new InvalidFileException($"{path}: {what}.");
        T Get<T>(string key, T fallback)
        {
            var n = j[key];
            if (n == null) return fallback;
            try
            {
                return n.GetValue<T>();
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException)
            {
                throw new InvalidFileException($"{path}: {key} is {n.ToJsonString()}, not a {typeof(T).Name}.", e);
            }
        }
        string peft = Get("peft_type", "LORA");
        if (peft != "LORA") Fail($"peft_type is {peft}; Quill reads LORA adapters");
        if (Get("use_dora", false)) Fail("use_dora is true; Quill reads plain LoRA adapters, not DoRA");
        if (Get("lora_bias", false)) Fail("lora_bias is true; Quill reads LoRA adapters without a bias on B");
        string bias = Get("bias", "none");
        if (bias != "none") Fail($"bias is '{bias}'; Quill reads adapters that train no bias (bias \"none\")");
        foreach (string key in new[] { "rank_pattern", "alpha_pattern" })
        {
            if (j[key] is JsonObject o && o.Count > 0) Fail($"{key} gives some modules their own rank or alpha; Quill reads one r and lora_alpha for all");
        }
        if (j["modules_to_save"] is JsonArray { Count: > 0 }) Fail("modules_to_save lists fully trained modules; Quill reads LoRA weights only");
        if (j["r"] == null || j["lora_alpha"] == null) Fail("r and lora_alpha are required");
        var config = new LoraConfig
        {
            Rank = Get("r", 0),
            Alpha = Get("lora_alpha", 0.0),
            Dropout = (float)Get("lora_dropout", 0.0),
            UseRsLora = Get("use_rslora", false),
        };
        try
        {
            config.Validate();
        }
        catch (InvalidConfigException e)
        {
            throw new InvalidFileException($"{path}: {e.Message}", e);
        }
        return config;
    }

    private static bool NeedsRopePermutation(ModelSpec spec, WeightSlot slot) =>
        spec.UsesRope && spec.RopeStyle == RopeStyle.Interleaved && slot is WeightSlot.Q or WeightSlot.K;

    private static int Heads(ModelSpec spec, WeightSlot slot) => slot == WeightSlot.Q ? spec.Heads : spec.KvHeads;

    /// <summary>
    /// Rows of m [heads * d, cols] reordered within each head's first rot rows: Meta (interleaved) row 2i + j is
    /// Hugging Face row j * rot/2 + i (toHf), or back.
    /// </summary>
    internal static float[] PermuteRows(float[] m, int cols, int heads, int d, int rot, bool toHf)
    {
        var outRows = (float[])m.Clone();
        int half = rot / 2;
        for (int h = 0; h < heads; h++)
        {
            for (int i = 0; i < half; i++)
            {
                for (int j = 0; j < 2; j++)
                {
                    int meta = h * d + 2 * i + j, hf = h * d + j * half + i;
                    int from = toHf ? meta : hf, to = toHf ? hf : meta;
                    Array.Copy(m, from * cols, outRows, to * cols, cols);
                }
            }
        }
        return outRows;
    }
}
