// `quill imatrix --model M --data TEXT [--chunks N] [--ctx N] --out imatrix.gguf`: llama-imatrix on Quill's engine
// (Quill.Evaluation.ImatrixCollector): sums the squared inputs of every layer matrix product over chunks of the text
// and writes llama.cpp's imatrix file (GGUF, or the legacy layout when --out ends in .dat) for `quill quantize
// --imatrix` or llama-quantize --imatrix. Progress bar with the running perplexity and the time left.
using System.CommandLine;
using System.Globalization;
using Quill.Evaluation;
using Quill.Formats;
using Quill.Inference;

namespace Quill.Cli.Commands;

internal static class ImatrixCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "Model: a Quill run, a Hugging Face folder, a GGUF file or a llama2.c .bin.", Required = true };
        var data = new Option<string>("--data", "-f") { Description = "UTF-8 text to run (calibration text, e.g. held-out text in the model's domain).", Required = true };
        var chunks = new Option<int>("--chunks") { Description = "Most chunks to run (0: as many as the text holds).", DefaultValueFactory = _ => 0 };
        var ctx = new Option<int>("--ctx", "-c") { Description = "Tokens per chunk (llama-imatrix's -c; default 512, at most the model's context).", DefaultValueFactory = _ => 512 };
        var output = new Option<string>("--out", "-o") { Description = "The imatrix file to write (*.gguf: llama.cpp's GGUF imatrix; *.dat: its legacy layout).", Required = true };
        var cmd = new Command("imatrix", "Compute an importance matrix (mean squared activation per input column of every matrix) for quantize --imatrix.") { model, data, chunks, ctx, output };
        cmd.SetAction(r =>
        {
            string text = r.GetValue(data)!, outPath = r.GetValue(output)!;
            if (!File.Exists(text)) throw new InvalidFileException($"{text}: --data not found.");
            using var m = ModelLoader.Load(r.GetValue(model)!);
            int c = Math.Min(r.GetValue(ctx), m.Spec.MaxContext);
            int[] tokens = Perplexity.Tokenize(m, File.ReadAllText(text), "imatrix");
            var result = EvalCommand.Show("imatrix", p => ImatrixCollector.Collect(m, tokens, c, r.GetValue(chunks), Path.GetFileName(text), p));
            ImatrixFile.Write(result.Matrix, outPath);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"wrote {Path.GetFullPath(outPath)} ({result.Matrix.Entries.Count} matrices, {result.Chunks} chunks of {c} tokens = {result.Chunks * c:N0} tokens) in {result.Elapsed.TotalSeconds:F1}s; perplexity of the chunks' second halves {result.Perplexity:F4}"));
        });
        return cmd;
    }
}
