// The training checkpoint: everything needed to continue a run exactly where it stopped. DIR/checkpoint/ holds
// model.safetensors (weights), optimizer.safetensors (AdamW moments), config.json (model + train), state.json
// (step, optimizer step, seed, guard history, data folder) and the tokenizer. A model carrying a LoRA adapter (a
// LoRA / QLoRA run) writes only the adapter, as PEFT's adapter_config.json + adapter_model.safetensors, in place of
// model.safetensors: the frozen base is never rewritten (config.json's base section says where it is), the moments
// are the adapter's, and the folder is a PEFT adapter that `quill generate --adapter` runs.
// A save writes a complete new folder beside the old one, flushes it, then swaps the two with renames, so a crash or
// a full disk at any moment leaves either the old checkpoint or the new one, never a mix. Loading repairs an
// interrupted swap. SaveModel writes a whole model as a folder the loaders open (model.safetensors, config.json with
// the model section and the base's prompt format: BOS, chat template, stop ids; tokenizer.json): a merged adapter.
using System.Text.Json;
using System.Text.Json.Serialization;
using Quill.Formats;
using Quill.Formats.SafeTensors;
using Quill.Models;

namespace Quill.Training;

/// <summary>Progress counters and guard history saved with a checkpoint.</summary>
public sealed class TrainState
{
    /// <summary>Steps completed (the next step to run).</summary>
    [JsonPropertyName("step")] public int Step { get; set; }

    /// <summary>Updates applied (AdamW bias correction counts these; skipped steps do not count).</summary>
    [JsonPropertyName("optimizer_step")] public int OptimizerStep { get; set; }

    [JsonPropertyName("tokens_seen")] public long TokensSeen { get; set; }

    [JsonPropertyName("skipped_updates")] public int SkippedUpdates { get; set; }

    /// <summary>Recent accepted losses and gradient norms (the outlier guard's memory).</summary>
    [JsonPropertyName("recent_losses")] public List<float> RecentLosses { get; set; } = [];

    [JsonPropertyName("recent_grad_norms")] public List<float> RecentGradNorms { get; set; } = [];

    [JsonPropertyName("last_val_loss")] public float? LastValLoss { get; set; }

    /// <summary>Early stopping: the lowest validation loss so far, its step and the evaluations since (not written when off).</summary>
    [JsonPropertyName("best_val_loss")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public float? BestValLoss { get; set; }

    [JsonPropertyName("best_step")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public int BestStep { get; set; }

    [JsonPropertyName("evals_since_best")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public int EvalsSinceBest { get; set; }

    /// <summary>The dataset folder the run trains on.</summary>
    [JsonPropertyName("data")] public string Data { get; set; } = "";

    /// <summary>Batches are drawn by generators seeded from (seed, step, micro-batch): the data position is the step.</summary>
    [JsonPropertyName("sampler")] public string Sampler { get; set; } = "step-seeded";

    [JsonPropertyName("elapsed_s")] public double ElapsedSeconds { get; set; }
}

/// <summary>How prompts for a saved model are built: BOS first or not, its chat template, ids besides EOS that end a turn.</summary>
public sealed record PromptFormat(bool AddBos, string? ChatTemplate, IReadOnlyList<int> ExtraStopIds);

/// <summary>Saves and loads training checkpoints atomically.</summary>
public static class Checkpoint
{
    public const string FolderName = CheckpointFiles.FolderName;
    public const string ModelFile = CheckpointFiles.ModelFile;
    public const string OptimizerFile = CheckpointFiles.OptimizerFile;
    public const string ConfigFile = CheckpointFiles.ConfigFile;
    public const string StateFile = CheckpointFiles.StateFile;
    public const string TokenizerFile = CheckpointFiles.TokenizerFile;

    /// <summary>Test hook: called with each file name just before it is written (lets tests simulate a full disk).</summary>
    internal static Action<string>? BeforeWrite { get; set; }

    /// <summary>Writes outDir/checkpoint, replacing the previous one atomically.</summary>
    public static void Save(string outDir, RunConfig config, LanguageModel model, AdamWOptimizer? optimizer, TrainState state, string? tokenizerPath)
    {
        ArgumentNullException.ThrowIfNull(outDir);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(state);
        string final = Path.Combine(outDir, FolderName), temp = final + ".tmp", old = final + ".old";
        try
        {
            Directory.CreateDirectory(outDir);
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            Directory.CreateDirectory(temp);
            if (model.Lora is { } lora)
            {
                BeforeWrite?.Invoke(CheckpointFiles.AdapterFile);
                lora.Save(temp, config.Base?.Model ?? "");
            }
            else
            {
                BeforeWrite?.Invoke(ModelFile);
                SaveWeights(Path.Combine(temp, ModelFile), model, state.Step);
            }
            BeforeWrite?.Invoke(OptimizerFile);
            if (optimizer != null) SafeTensorsWriter.Write(Path.Combine(temp, OptimizerFile), optimizer.StateTensors(), new Dictionary<string, string> { ["format"] = "quill-adamw" });
            BeforeWrite?.Invoke(ConfigFile);
            AtomicFile.WriteAllText(Path.Combine(temp, ConfigFile), config.ToJson());
            AtomicFile.WriteAllText(Path.Combine(temp, StateFile), JsonSerializer.Serialize(state, JsonOptionsIndented));
            if (tokenizerPath != null && File.Exists(tokenizerPath)) AtomicFile.WriteAllBytes(Path.Combine(temp, TokenizerFile), File.ReadAllBytes(tokenizerPath));
            AtomicFile.SyncDirectory(temp);
            // Swap: final -> old, temp -> final, drop old. A crash between the moves leaves old (or temp) for Repair;
            // the run folder is flushed after each rename so a power loss cannot undo one.
            if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
            if (Directory.Exists(final)) Directory.Move(final, old);
            AtomicFile.SyncDirectory(outDir);
            Directory.Move(temp, final);
            AtomicFile.SyncDirectory(outDir);
            if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or QuillException)
        {
            TryDelete(temp);
            Repair(outDir);
            throw new QuillException($"could not save the checkpoint in {final}: {RootCause(e)}. The previous checkpoint is intact; free disk space and resume with --resume.", e);
        }
    }

    /// <summary>The operating system's words for an IO failure (the innermost IO exception), else the message.</summary>
    private static string RootCause(Exception e)
    {
        string message = e.Message;
        for (Exception? x = e; x != null; x = x.InnerException)
        {
            if (x is IOException or UnauthorizedAccessException) message = x.Message;
        }
        return message.TrimEnd('.');
    }

    /// <summary>Writes just the weights (and the step in the metadata) as safetensors.</summary>
    public static void SaveWeights(string path, LanguageModel model, int step)
    {
        ArgumentNullException.ThrowIfNull(model);
        var tensors = model.Parameters.Select(p => new SafeTensor(p.Name, p.Shape, p.Memory));
        SafeTensorsWriter.Write(path, tensors, new Dictionary<string, string> { ["format"] = "quill", ["arch"] = model.Config.Arch, ["step"] = step.ToString(System.Globalization.CultureInfo.InvariantCulture) });
    }

    /// <summary>Puts back a checkpoint whose swap was interrupted; deletes an unfinished new one.</summary>
    public static void Repair(string outDir) => CheckpointFiles.Repair(outDir);

    /// <summary>The checkpoint folder in dir (a run folder or a checkpoint folder), or null.</summary>
    public static string? Locate(string dir) => CheckpointFiles.Locate(dir);

    /// <summary>Reads config.json of a checkpoint folder.</summary>
    public static RunConfig LoadConfig(string ckptDir)
    {
        string path = Path.Combine(ckptDir, ConfigFile);
        if (!File.Exists(path)) throw new InvalidFileException($"{path} not found: {ckptDir} is not a Quill checkpoint.");
        var cfg = RunConfig.FromJson(File.ReadAllText(path), path);
        cfg.Validate(path);
        return cfg;
    }

    public static TrainState LoadState(string ckptDir)
    {
        string path = Path.Combine(ckptDir, StateFile);
        try
        {
            return JsonSerializer.Deserialize<TrainState>(File.ReadAllText(path), JsonOptionsIndented) ?? throw new InvalidFileException($"{path} is empty.");
        }
        catch (Exception e) when (e is JsonException or IOException)
        {
            throw new InvalidFileException($"{path} is unreadable ({e.Message}); the checkpoint is damaged, start a fresh run.", e);
        }
    }

    /// <summary>Loads weights into a model built from the same config; names and shapes must match exactly.</summary>
    public static void LoadWeights(string path, LanguageModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (!File.Exists(path)) throw new InvalidFileException($"{path} not found; the checkpoint is incomplete.");
        using var file = SafeTensorsFile.Open(path);
        foreach (var p in model.Parameters)
        {
            if (!file.Contains(p.Name))
                throw new InvalidFileException($"{path} has no tensor {p.Name}; the checkpoint does not match its config.json (was it written by another model?).");
            int[] shape = ShapeOf(file, p.Name);
            if (!shape.AsSpan().SequenceEqual(p.Shape))
                throw new InvalidFileException($"{path}: {p.Name} has shape {Tensors.Tensor.Describe(shape)} but the config needs {Tensors.Tensor.Describe(p.Shape)}; the checkpoint does not match its config.");
            file.ReadSingle(p.Name, p.Span);
        }
    }

    /// <summary>
    /// Reads a checkpoint's trained weights into a model built like the run's: the whole model, or, for an adapter
    /// checkpoint, A and B of the adapter the model carries (its base is not in the checkpoint).
    /// </summary>
    public static void LoadTrained(string ckptDir, LanguageModel model)
    {
        ArgumentNullException.ThrowIfNull(ckptDir);
        ArgumentNullException.ThrowIfNull(model);
        bool adapter = CheckpointFiles.IsAdapter(ckptDir);
        if (model.Lora is { } lora)
        {
            if (!adapter) throw new InvalidFileException($"{ckptDir} holds a whole model, but this run trains a LoRA adapter; resume it without one (or start a new --out).");
            lora.ReadWeights(ckptDir);
        }
        else if (adapter)
        {
            throw new InvalidFileException($"{ckptDir} holds a LoRA adapter, but this run's model carries none; resume it with the same method (or start a new --out).");
        }
        else
        {
            LoadWeights(Path.Combine(ckptDir, ModelFile), model);
        }
    }

    /// <summary>
    /// Writes a whole model (no adapter: merge first) as a folder the loaders open: model.safetensors, config.json
    /// (the model section, and the prompt format the base was run with, so the folder chats as the base did) and
    /// tokenizer.json when given; written beside the folder and moved in, so the folder is complete or absent. An
    /// existing non-empty folder is refused.
    /// </summary>
    public static void SaveModel(string folder, LanguageModel model, Tokenization.ITokenizer? tokenizer, PromptFormat? prompt = null)
    {
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(model);
        if (model.Lora != null) throw new InvalidConfigException("the model carries a LoRA adapter; merge it first (MergeLora), then save the merged model.");
        if (Directory.Exists(folder) && Directory.EnumerateFileSystemEntries(folder).Any())
            throw new QuillException($"{folder} already exists and is not empty; choose another --out (nothing was written).");
        string full = Path.GetFullPath(folder).TrimEnd(Path.DirectorySeparatorChar), temp = full + ".tmp";
        try
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            Directory.CreateDirectory(temp);
            SaveWeights(Path.Combine(temp, ModelFile), model, 0);
            var json = new System.Text.Json.Nodes.JsonObject { ["model"] = System.Text.Json.Nodes.JsonNode.Parse(JsonSerializer.Serialize(model.Config, ModelWriteOptions)) };
            if (prompt != null)
            {
                var section = new PromptFormatConfig { AddBos = prompt.AddBos, ChatTemplate = prompt.ChatTemplate, ExtraStopIds = [.. prompt.ExtraStopIds] };
                json[CheckpointFiles.InferenceSection] = JsonSerializer.SerializeToNode(section);
            }
            AtomicFile.WriteAllText(Path.Combine(temp, ConfigFile), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
            tokenizer?.Save(Path.Combine(temp, TokenizerFile));
            AtomicFile.SyncDirectory(temp);
            if (Directory.Exists(full)) Directory.Delete(full);
            Directory.Move(temp, full);
            AtomicFile.SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(full))!);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new QuillException($"could not write the model folder {folder}: {RootCause(e)}; free disk space or choose another --out.", e);
        }
    }

    private static readonly JsonSerializerOptions ModelWriteOptions = new() { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    /// <summary>Builds the model a checkpoint describes and loads its weights.</summary>
    public static LanguageModel LoadModel(string dir, out RunConfig config)
    {
        string ckpt = Locate(dir) ?? throw new InvalidFileException($"no checkpoint in {dir}: expected config.json and model.safetensors there or in {Path.Combine(dir, FolderName)}.");
        if (CheckpointFiles.IsAdapter(ckpt)) throw new InvalidFileException(CheckpointWeights.AdapterMessage(ckpt));
        config = LoadConfig(ckpt);
        var model = LanguageModel.Create(config.Model);
        LoadWeights(Path.Combine(ckpt, ModelFile), model);
        return model;
    }

    private static readonly JsonSerializerOptions JsonOptionsIndented = new()
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    private static void TryDelete(string dir) => CheckpointFiles.TryDelete(dir);

    private static int[] ShapeOf(SafeTensorsFile file, string name) => [.. file.GetInfo(name).Shape.Select(d => (int)d)];
}
