// `quill export --model IN --out OUT [--format gguf|hf|llama2c] [--dtype TYPE] [--tokenizer FILE]`: loads any model Quill
// runs and writes it as GGUF (llama.cpp, Ollama, LM Studio), a Hugging Face folder (transformers) or a llama2.c .bin, with a progress
// bar and a one-line summary. All logic lives in Quill.Inference.ModelExport.
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Quill.Inference;
using Spectre.Console;

namespace Quill.Cli.Commands;

internal static class ExportCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "Model to export: a Quill run or checkpoint folder, a Hugging Face folder, a GGUF file, a llama2.c .bin or hf.co/ORG/REPO[:QUANT] (see quill pull).", Required = true };
        var pull = ModelLocator.PullOption();
        var output = new Option<string>("--out", "-o") { Description = "Output: a .gguf file, or a folder for --format hf.", Required = true };
        var format = new Option<string?>("--format", "-f") { Description = "gguf, hf or llama2c (default: gguf when --out ends in .gguf, llama2c for .bin, else hf)." };
        var dtype = new Option<string?>("--dtype") { Description = "Weight type: f32, f16, bf16 (both formats); q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k, q4_k_m, q5_k_m (gguf). Default: as stored." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer file to use instead of the model's own." };
        var adapter = new Option<string?>("--adapter") { Description = "A LoRA run or PEFT adapter folder trained on --model: write it as a GGUF LoRA adapter (general.type adapter) instead of the model." };
        var cmd = new Command("export", "Write a model as GGUF (llama.cpp), a Hugging Face folder (transformers) or a llama2.c .bin.") { model, output, format, dtype, tokenizer, adapter, pull };
        cmd.SetAction(r =>
        {
            string outPath = r.GetValue(output)!;
            var fmt = ModelExport.ParseFormat(r.GetValue(format), outPath);
            string? type = r.GetValue(dtype);
            using var m = ModelLoader.Load(ModelLocator.Resolve(r.GetValue(model)!, r.GetValue(pull)), r.GetValue(tokenizer));
            var sw = Stopwatch.StartNew();
            if (r.GetValue(adapter) is string adapterFolder)
            {
                if (fmt != ExportFormat.Gguf) throw new InvalidConfigException("--adapter writes a GGUF LoRA adapter; the adapter folder itself is already PEFT's Hugging Face form.");
                var a = GgufExport.WriteLoraAdapter(m, adapterFolder, outPath);
                Console.WriteLine($"wrote {a.Path} (GGUF LoRA adapter for {a.Architecture}, {a.Tensors} F32 tensors; {a.Bytes / 1e6:F2} MB) in {Rendering.Duration(sw.Elapsed)}");
                return;
            }
            ExportReport report = null!;
            if (!Rendering.Interactive)
            {
                report = ModelExport.Export(m, outPath, fmt, type);
            }
            else
            {
                AnsiConsole.Progress().AutoClear(true)
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                    .Start(ctx =>
                    {
                        var task = ctx.AddTask("exporting", maxValue: 1);
                        report = ModelExport.Export(m, outPath, fmt, type, new SyncProgress<ExportProgress>(p =>
                        {
                            task.MaxValue = p.Total;
                            task.Value = p.Done;
                            task.Description = Markup.Escape(p.Tensor);
                        }));
                        task.Value = task.MaxValue;
                    });
            }
            Console.WriteLine(Summary(report, fmt, sw.Elapsed));
            if (fmt == ExportFormat.Llama2c && report.TokenizerNote == null)
                Console.WriteLine($"wrote {Llama2cExport.TokenizerPath(outPath, m.Spec.VocabSize)} (llama2.c tokenizer)");
            if (report.TokenizerNote != null) Console.WriteLine($"note: no tokenizer written ({report.TokenizerNote}); pass --tokenizer to add one.");
        });
        return cmd;
    }

    internal static string Summary(ExportReport r, ExportFormat fmt, TimeSpan took)
    {
        string types = string.Join(", ", r.TensorTypes.OrderByDescending(kv => kv.Value).Select(kv => $"{kv.Value} {kv.Key}"));
        return string.Create(CultureInfo.InvariantCulture,
            $"wrote {r.Path} ({Kind(fmt)} {r.Architecture}, {r.Tensors} tensors: {types}; {r.Bytes / 1e6:F1} MB) in {Rendering.Duration(took)}");
    }

    private static string Kind(ExportFormat fmt) => fmt switch
    {
        ExportFormat.Gguf => "GGUF",
        ExportFormat.Llama2c => "legacy",
        _ => "Hugging Face",
    };
}
