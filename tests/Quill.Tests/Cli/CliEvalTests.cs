// `quill eval` through the real CLI: ppl on the llama2.c stories260K model writes its table, the JSON report and one
// JSONL line per window; bad input (a malformed task file, a text too short) is one line on stderr and exit code 1;
// `quill train --eval-task ppl` writes eval_ppl / eval_nll / eval_bpb into metrics.jsonl and eval_nll into loss.svg.
using System.Text.Json;
using Quill.Tests.Support;

namespace Quill.Tests.Cli;

public sealed class CliEvalTests : IDisposable
{
    private const string Model = "llama2c/stories260K.bin", Tok = "llama2c/tok512.bin", Text = "corpora/tinystories_val_prefix.txt";
    private readonly string dir = Directory.CreateTempSubdirectory("quill-cli-eval-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [TestDataFact(Model, Tok, Text)]
    public void Ppl_prints_the_estimate_and_writes_the_report_and_items()
    {
        string report = Path.Combine(dir, "r.json");
        var (exit, stdout, stderr) = CliProcess.Run("eval", "ppl", "--model", TestData.PathOf(Model), "--tokenizer", TestData.PathOf(Tok),
            "--data", TestData.PathOf(Text), "--context", "64", "--limit", "3", "--threads", "1", "--out", report);
        Assert.True(exit == 0, stderr);
        Assert.Matches(@"Final estimate: PPL = \d+\.\d{4} \+/- \d+\.\d{5}", stdout);
        Assert.Contains("ETA", stderr, StringComparison.Ordinal);
        using var doc = JsonDocument.Parse(File.ReadAllText(report));
        var root = doc.RootElement;
        Assert.Equal("ppl", root.GetProperty("task").GetString());
        Assert.Equal(64, root.GetProperty("settings").GetProperty("context").GetInt32());
        var ppl = root.GetProperty("metrics")[0];
        Assert.Equal("ppl", ppl.GetProperty("name").GetString());
        Assert.True(ppl.GetProperty("value").GetDouble() is > 1 and < 512);
        Assert.Equal(2, ppl.GetProperty("ci95").GetArrayLength());
        string[] items = File.ReadAllLines(Path.Combine(dir, "r.items.jsonl"));
        Assert.Equal(3, items.Length);
        Assert.Equal(31, JsonDocument.Parse(items[0]).RootElement.GetProperty("scored").GetInt32()); // 64 - 1 - 32
    }

    [TestDataFact(Model, Tok)]
    public void Bad_input_is_one_line_and_exit_code_1()
    {
        string bad = Path.Combine(dir, "h.txt");
        File.WriteAllText(bad, "context\n9\na\nb\nc\nd\n");
        var (exit, _, stderr) = CliProcess.Run("eval", "hellaswag", "--model", TestData.PathOf(Model), "--tokenizer", TestData.PathOf(Tok), "--data", bad);
        Assert.Equal(1, exit);
        Assert.Equal($"error: {bad}:2: the gold ending must be 0, 1, 2 or 3 (got '9'); each task is 6 lines: context, gold, four endings.", stderr.Trim());

        string shortText = Path.Combine(dir, "short.txt");
        File.WriteAllText(shortText, "Once upon a time.");
        (exit, _, stderr) = CliProcess.Run("eval", "ppl", "--model", TestData.PathOf(Model), "--tokenizer", TestData.PathOf(Tok), "--data", shortText);
        Assert.Equal(1, exit);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.Contains("needs at least 1024", stderr, StringComparison.Ordinal);
    }

    [TestDataFact("corpora/tinyshakespeare.txt")]
    public void Train_with_eval_task_records_perplexity_in_metrics_and_plot()
    {
        string text = File.ReadAllText(TestData.PathOf("corpora/tinyshakespeare.txt"));
        File.WriteAllText(Path.Combine(dir, "train.txt"), text[..100_000]);
        File.WriteAllText(Path.Combine(dir, "held.txt"), text[80_000..100_000]); // within the char vocabulary of the training text
        var (exit, _, err) = CliProcess.Run("prepare", "--input", Path.Combine(dir, "train.txt"), "--out", Path.Combine(dir, "data"));
        Assert.True(exit == 0, err);
        string run = Path.Combine(dir, "run");
        (exit, _, err) = CliProcess.Run("train", "--preset", "tiny", "--data", Path.Combine(dir, "data"), "--out", run, "--max-steps", "6", "--threads", "1",
            "--eval-task", "ppl", "--eval-data", Path.Combine(dir, "held.txt"), "--eval-every", "4", "--eval-context", "64", "--eval-windows", "2");
        Assert.True(exit == 0, err);
        var lines = File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var evaluated = lines.Where(l => l.TryGetProperty("eval_ppl", out _)).Select(l => l.GetProperty("step").GetInt32()).ToList();
        Assert.Equal([4, 6], evaluated); // every 4 steps and the last
        var last = lines[^1];
        Assert.Equal(Math.Exp(last.GetProperty("eval_nll").GetDouble()), last.GetProperty("eval_ppl").GetDouble(), 1e-5 * last.GetProperty("eval_ppl").GetDouble()); // written as float
        Assert.True(last.GetProperty("eval_ppl").GetDouble() < 62, "after a few steps a char model beats the uniform guess over its vocabulary");
        Assert.Contains("eval NLL", File.ReadAllText(Path.Combine(run, "loss.svg")), StringComparison.Ordinal);

        // a held-out text with characters the run's tokenizer lacks: one warning, and the run still finishes
        File.WriteAllText(Path.Combine(dir, "odd.txt"), text[80_000..100_000] + "\u00e9\u00e9");
        (exit, _, err) = CliProcess.Run("train", "--preset", "tiny", "--data", Path.Combine(dir, "data"), "--out", run + "2", "--max-steps", "2", "--threads", "1",
            "--eval-task", "ppl", "--eval-data", Path.Combine(dir, "odd.txt"), "--eval-every", "1");
        Assert.True(exit == 0, err);
        Assert.Single(err.Split('\n'), l => l.StartsWith("warning: --eval-task ppl is off for this run", StringComparison.Ordinal));

        (exit, _, err) = CliProcess.Run("train", "--preset", "tiny", "--data", Path.Combine(dir, "data"), "--out", run + "3", "--max-steps", "2", "--eval-task", "hellaswag", "--eval-data", "x");
        Assert.Equal(1, exit);
        Assert.Contains("training runs ppl or bpb", err, StringComparison.Ordinal);
    }
}
