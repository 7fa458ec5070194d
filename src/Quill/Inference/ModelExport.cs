// One entry for exporting any model Quill loads (a Quill run or checkpoint, a merged fine-tune, a Hugging Face
// folder, a GGUF file, a llama2.c checkpoint) to GGUF (GgufExport) or a Hugging Face folder (HfExport): the format
// by name or from the output path (*.gguf: gguf, else hf), the type by name. With no type given the matrices keep
// the type they have (a Quill run stays F32), so an export of a float model is exact.
// Does not handle: exporting a LoRA adapter on its own (the loader refuses an adapter folder and says how to merge).
using Quill.Formats.SafeTensors;
using Quill.Quantization;

namespace Quill.Inference;

/// <summary>Output formats of <see cref="ModelExport"/>.</summary>
public enum ExportFormat
{
    Gguf,
    HuggingFace,
}

/// <summary>Exports models to GGUF and Hugging Face folders.</summary>
public static class ModelExport
{
    /// <summary>"gguf" or "hf"; null or empty: guessed from the output path (*.gguf is GGUF).</summary>
    public static ExportFormat ParseFormat(string? name, string outPath) => (name ?? "").ToLowerInvariant() switch
    {
        "" => (outPath ?? "").EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) ? ExportFormat.Gguf : ExportFormat.HuggingFace,
        "gguf" => ExportFormat.Gguf,
        "hf" or "huggingface" or "safetensors" => ExportFormat.HuggingFace,
        _ => throw new InvalidConfigException($"--format '{name}' is unknown; use gguf or hf."),
    };

    /// <summary>The type every matrix of the model has, or F32 when they differ (a mixed or block-typed model).</summary>
    public static GgmlType StoredType(InferenceModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var types = model.Layers.SelectMany(l => l.Matrices()).Append(model.TokenEmbedding).Select(m => m.Type).Distinct().ToList();
        return types.Count == 1 ? types[0] : GgmlType.F32;
    }

    /// <summary>Exports <paramref name="model"/> to <paramref name="outPath"/>; <paramref name="dtype"/> null keeps the stored type.</summary>
    public static ExportReport Export(InferenceModel model, string outPath, ExportFormat format, string? dtype, IProgress<ExportProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(outPath);
        if (format == ExportFormat.Gguf)
        {
            if (Directory.Exists(outPath)) throw new QuillException($"{outPath} is a folder; --out for --format gguf names a file (e.g. model.gguf).");
            var plan = TensorTypePlan.Parse(string.IsNullOrEmpty(dtype) ? StoredType(model).ToString() : dtype);
            return GgufExport.Write(model, outPath, plan, progress);
        }
        var st = (string.IsNullOrEmpty(dtype) ? StoredType(model).ToString() : dtype).ToLowerInvariant() switch
        {
            "f32" => SafeTensorDtype.F32,
            "f16" => SafeTensorDtype.F16,
            "bf16" => SafeTensorDtype.BF16,
            _ when string.IsNullOrEmpty(dtype) => SafeTensorDtype.F32,
            _ => throw new InvalidConfigException($"--dtype '{dtype}' is not a Hugging Face type; use f32, f16 or bf16 (quantized types: --format gguf)."),
        };
        return HfExport.Write(model, outPath, st, progress);
    }
}
