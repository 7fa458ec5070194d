// One entry for exporting any model Quill loads (a Quill run or checkpoint, a merged fine-tune, a Hugging Face
// folder, a GGUF file, a llama2.c checkpoint) to GGUF (GgufExport), a Hugging Face folder (HfExport) or a llama2.c
// legacy .bin (Llama2cExport): the format by name or from the output path (*.gguf: gguf, *.bin: llama2c, else hf),
// the type by name. With no type given the matrices keep
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
    Llama2c,
}

/// <summary>Exports models to GGUF and Hugging Face folders.</summary>
public static class ModelExport
{
    /// <summary>"gguf", "hf" or "llama2c"; null or empty: guessed from the output path (*.gguf GGUF, *.bin llama2.c).</summary>
    public static ExportFormat ParseFormat(string? name, string outPath) => (name ?? "").ToLowerInvariant() switch
    {
        "" when (outPath ?? "").EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) => ExportFormat.Gguf,
        "" when (outPath ?? "").EndsWith(".bin", StringComparison.OrdinalIgnoreCase) => ExportFormat.Llama2c,
        "" => ExportFormat.HuggingFace,
        "gguf" => ExportFormat.Gguf,
        "hf" or "huggingface" or "safetensors" => ExportFormat.HuggingFace,
        "llama2c" or "llama2.c" => ExportFormat.Llama2c,
        _ => throw new InvalidConfigException($"--format '{name}' is unknown; use gguf, hf or llama2c."),
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
        if (format == ExportFormat.Llama2c)
        {
            if (!string.IsNullOrEmpty(dtype) && !dtype.Equals("f32", StringComparison.OrdinalIgnoreCase))
                throw new InvalidConfigException($"--dtype '{dtype}' is not a llama2.c type; its legacy .bin holds float32 only (leave --dtype out or pass f32).");
            if (Directory.Exists(outPath)) throw new QuillException($"{outPath} is a folder; --out for --format llama2c names a file (e.g. model.bin).");
            return Llama2cExport.Write(model, outPath);
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
