// Opens the weights of a Quill checkpoint folder as ModelWeights: config.json's "model" section gives the spec, and
// model.safetensors (memory-mapped) is read through the checkpoint's name table (TensorNames.ForQuillCheckpoint).
// Used by the inference loader and by `quill train --init`; the trainer's resume reads weights by parameter name.
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
}
