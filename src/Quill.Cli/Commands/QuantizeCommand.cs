// `quill quantize --model IN --type TYPE --out OUT.gguf [--imatrix FILE] [--eval-text FILE] [--eval-tokens N]`: writes
// a GGUF file with llama.cpp's tensor mix for TYPE (Quill.Inference.TensorTypePlan), its matrices weighted by an
// importance matrix when given (`quill imatrix` or llama-imatrix's file), with a progress bar over both cores, then
// prints the size, the weights' relative error and, given text, perplexity / KL divergence / top-token agreement
// of the quantized file against the original (Quill.Evaluation.QuantizationQuality).
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Quill.Evaluation;
using Quill.Formats;
using Quill.Inference;
using Spectre.Console;

namespace Quill.Cli.Commands;

internal static class QuantizeCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "Model to quantize: a Quill run, a Hugging Face folder, a GGUF file, a llama2.c .bin or hf.co/ORG/REPO[:QUANT] (see quill pull).", Required = true };
        var pull = ModelLocator.PullOption();
        var type = new Option<string>("--type", "-t") { Description = $"One of {string.Join(", ", TensorTypePlan.Names)} (q4_k_m / q5_k_m: llama.cpp's mixes).", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "The GGUF file to write.", Required = true };
        var evalText = new Option<string?>("--eval-text") { Description = "Held-out text: report perplexity, KL divergence and top-token agreement against the original." };
        var evalTokens = new Option<int>("--eval-tokens") { Description = "Tokens of --eval-text to score.", DefaultValueFactory = _ => 4096 };
        var imatrix = new Option<string?>("--imatrix") { Description = "Importance matrix (quill imatrix or llama-imatrix, GGUF or .dat): weight each column's rounding error by it." };
        var cmd = new Command("quantize", "Write a quantized GGUF file (llama.cpp's type mixes) and report its size and quality.") { model, type, output, imatrix, evalText, evalTokens, pull };
        cmd.SetAction(r =>
        {
            var plan = TensorTypePlan.Parse(r.GetValue(type)!);
            string outPath = r.GetValue(output)!;
            string? text = r.GetValue(evalText);
            int n = r.GetValue(evalTokens);
            if (text != null && !File.Exists(text)) throw new InvalidFileException($"{text}: --eval-text not found.");
            if (n < 2) throw new InvalidConfigException($"--eval-tokens must be at least 2 (got {n}).");
            string? imatrixPath = r.GetValue(imatrix);
            var importance = imatrixPath == null ? null : ImatrixFile.Read(imatrixPath);
            using var m = ModelLoader.Load(ModelLocator.Resolve(r.GetValue(model)!, r.GetValue(pull)));
            if (importance != null) ImatrixCollector.CheckFits(importance, m, imatrixPath!);
            var sw = Stopwatch.StartNew();
            ExportReport report = null!;
            if (!Rendering.Interactive)
            {
                report = GgufExport.Write(m, outPath, plan, importance: importance);
            }
            else
            {
                AnsiConsole.Progress().AutoClear(true)
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                    .Start(ctx =>
                    {
                        var task = ctx.AddTask("quantizing", maxValue: 1);
                        report = GgufExport.Write(m, outPath, plan, new SyncProgress<ExportProgress>(p =>
                        {
                            task.MaxValue = p.Total;
                            task.Value = p.Done;
                            task.Description = Markup.Escape(p.Tensor);
                        }), importance);
                        task.Value = task.MaxValue;
                    });
            }
            var took = sw.Elapsed;
            long f32Bytes = 4 * m.Spec.ParameterCount();
            Console.WriteLine(ExportCommand.Summary(report, ExportFormat.Gguf, took));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"size: {report.Bytes / 1e6:F2} MB, {(double)f32Bytes / report.Bytes:F2}x smaller than f32 ({report.Bytes * 8.0 / m.Spec.ParameterCount():F2} bits per weight); weights' relative RMS error {report.WeightError * 100:F2}%"));
            if (importance != null)
                Console.WriteLine($"importance matrix {Path.GetFileName(imatrixPath)}: {report.ImportanceWeighted} matrices quantized with its weights");
            if (text == null) return;
            if (m.Tokenizer == null) throw new InvalidFileException($"{r.GetValue(model)}: the model has no tokenizer, so --eval-text cannot be tokenized.");
            int[] ids = [.. m.Tokenizer.Encode(File.ReadAllText(text)).Take(n)];
            using var q = ModelLoader.Load(outPath);
            var quality = QuantizationQuality.Measure(m, q, ids);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"quality on {quality.Tokens:N0} tokens of {Path.GetFileName(text)}: perplexity {quality.PerplexityOriginal:F4} -> {quality.PerplexityQuantized:F4} ({Math.Round(quality.PerplexityChangePercent, 2) + 0.0:+0.00;-0.00}%), mean KL {quality.MeanKl:F5} nats, top token agrees {quality.TopTokenAgreement * 100:F1}%"));
        });
        return cmd;
    }
}
