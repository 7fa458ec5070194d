// `quill eval` through the real CLI: ppl on the llama2.c stories260K model writes its table, the JSON report and one
// JSONL line per window; bad input (a malformed task file, a text too short) is one line on stderr and exit code 1.
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
}
