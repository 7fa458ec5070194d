// Where a Quill checkpoint's files lie, and how an interrupted save is repaired. A run folder DIR holds
// DIR/checkpoint/ with model.safetensors (weights), optimizer.safetensors (AdamW moments of the trainable
// parameters), config.json ("model" and "train" sections), state.json and tokenizer.json. A save writes
// checkpoint.tmp/ and swaps it in with renames (old -> checkpoint.old, tmp -> checkpoint), so at any moment one
// complete checkpoint exists; Repair finishes or undoes a swap a crash interrupted. An adapter run (LoRA / QLoRA)
// keeps the frozen base where it is: its checkpoint holds PEFT's adapter_config.json + adapter_model.safetensors in
// place of model.safetensors (the folder is a PEFT adapter), with optimizer, config (lora and base sections), state
// and tokenizer as above.
// Does not handle: reading the weights (Models, Inference) or writing them (Training.Checkpoint).
namespace Quill.Formats;

/// <summary>File names and location of Quill checkpoints.</summary>
public static class CheckpointFiles
{
    public const string FolderName = "checkpoint";
    public const string ModelFile = "model.safetensors";
    public const string OptimizerFile = "optimizer.safetensors";
    public const string ConfigFile = "config.json";
    public const string StateFile = "state.json";
    public const string TokenizerFile = "tokenizer.json";

    /// <summary>
    /// The optional config.json section of a saved model (a merged adapter) with the base's prompt format: add_bos,
    /// chat_template, extra_stop_ids. Without it a Quill model runs without BOS and with the plain chat layout.
    /// </summary>
    public const string InferenceSection = "inference";

    /// <summary>An adapter checkpoint's weights (PEFT's file name), in place of ModelFile.</summary>
    public const string AdapterFile = "adapter_model.safetensors";

    /// <summary>
    /// The checkpoint folder inside dir (a run folder or a checkpoint folder), or null: config.json with
    /// model.safetensors, or with adapter_model.safetensors (an adapter run's). Repairs an interrupted swap first.
    /// </summary>
    public static string? Locate(string dir)
    {
        ArgumentNullException.ThrowIfNull(dir);
        if (IsCheckpoint(dir)) return dir;
        if (Directory.Exists(dir)) Repair(dir);
        string inner = Path.Combine(dir, FolderName);
        return IsCheckpoint(inner) ? inner : null;
    }

    /// <summary>True when a checkpoint folder holds an adapter (adapter_model.safetensors) rather than a whole model.</summary>
    public static bool IsAdapter(string ckptDir) => !File.Exists(Path.Combine(ckptDir, ModelFile)) && File.Exists(Path.Combine(ckptDir, AdapterFile));

    private static bool IsCheckpoint(string dir) =>
        File.Exists(Path.Combine(dir, ConfigFile)) && (File.Exists(Path.Combine(dir, ModelFile)) || File.Exists(Path.Combine(dir, AdapterFile)));

    /// <summary>Puts back a checkpoint whose swap was interrupted; deletes an unfinished new one.</summary>
    public static void Repair(string outDir)
    {
        string final = Path.Combine(outDir, FolderName), temp = final + ".tmp", old = final + ".old";
        if (!Directory.Exists(final) && Directory.Exists(old)) Directory.Move(old, final);
        TryDelete(temp);
        if (Directory.Exists(final)) TryDelete(old);
    }

    /// <summary>Deletes a folder, leaving it for the next Repair when the OS refuses.</summary>
    public static void TryDelete(string dir)
    {
        try
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
            // Left for the next Repair.
        }
    }
}
