// Opens the weights of a Quill checkpoint folder as ModelWeights: config.json's "model" section gives the spec, and
// model.safetensors (memory-mapped) is read through the checkpoint's name table (TensorNames.ForQuillCheckpoint).
// Used by the inference loader and by `quill train --init`; the trainer's resume reads weights by parameter name.
// An adapter checkpoint (a LoRA run's: no model.safetensors) is refused in one line that says how to run or merge it.
// Does not handle: the tokenizer, optimizer state or training state (Inference.ModelLoader, Training.Checkpoint).
using Quill.Formats;
using Quill.Formats.SafeTensors;

namespace Quill.Models;

/// <summary>Reads a Quill checkpoint's weights.</summary>
public static class CheckpointWeights
{
    /// <summary>The config and mapped weights of the checkpoint in dir (a run folder or its checkpoint/).</summary>
    public static ModelWeights Open(string dir, out ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(dir);
        string ckpt = CheckpointFiles.Locate(dir) ?? throw new InvalidFileException($"no checkpoint in {dir}: expected config.json and model.safetensors.");
        if (CheckpointFiles.IsAdapter(ckpt)) throw new InvalidFileException(AdapterMessage(ckpt));
        config = ModelConfig.ReadCheckpointConfig(Path.Combine(ckpt, CheckpointFiles.ConfigFile));
        string path = Path.Combine(ckpt, CheckpointFiles.ModelFile);
        var files = SafeTensorsCollection.Open(path);
        try
        {
            var spec = config.ToSpec();
            return ModelBuilders.Build(new SafeTensorsSource(files, path), spec, TensorNames.ForQuillCheckpoint(spec), [files], spec.TiedEmbeddings);
        }
        catch
        {
            files.Dispose();
            throw;
        }
    }

    /// <summary>What to do with an adapter checkpoint where a whole model was expected: run it on its base, or merge it.</summary>
    internal static string AdapterMessage(string ckpt)
    {
        string? baseModel = null, tokenizer = null;
        try
        {
            baseModel = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(ckpt, PeftAdapterFiles.ConfigFile)))?["base_model_name_or_path"]?.GetValue<string>();
            string run = Path.Combine(ckpt, CheckpointFiles.ConfigFile); // a finetune checkpoint records the tokenizer given with the base
            if (File.Exists(run)) tokenizer = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(run))?["base"]?["tokenizer"]?.GetValue<string>();
        }
        catch (Exception e) when (e is IOException or System.Text.Json.JsonException or InvalidOperationException)
        {
            // the message below still says what the folder is
        }
        string b = (string.IsNullOrEmpty(baseModel) ? "BASE" : baseModel) + (tokenizer != null ? $" --tokenizer {tokenizer}" : "");
        return $"{ckpt} holds a LoRA adapter, not a whole model; run it on its base (--model {b} --adapter {ckpt}) or merge it (quill finetune merge --base {b} --adapter {ckpt} --out DIR).";
    }
}
