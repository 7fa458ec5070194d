using Quill.Data.Cleaning;

namespace Quill.Tests.Data.Cleaning;

// Runs the real `quill data clean` in a child process (the CLI wiring: flags, exit codes, one-line errors).
public class DataCliTests
{
    private static (int Code, string Out, string Err) Quill(params string[] args) => Cli.CliProcess.Run(args);

    [Fact]
    public void Clean_writes_output_and_report_and_user_errors_are_one_line()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["a.txt"], TextSamples.Good(1) + "\n\n" + TextSamples.Good(2) + "\n\n" + TextSamples.Good(1));
        var ok = Quill("data", "clean", "--input", dir["a.txt"], "--out", dir["out"], "--txt-split", "paragraph", "--threads", "1");
        Assert.True(ok.Code == 0, ok.Err);
        Assert.Contains("exact_duplicate", ok.Out, StringComparison.Ordinal);
        Assert.Equal(2, CleanJsonl.ReadTexts(dir["out/clean.jsonl"]).Count());
        Assert.Equal(1, CleanReport.Load(dir["out/report.json"]).RemovedBy("exact_duplicate"));

        var bad = Quill("data", "clean", "--input", dir["a.txt"], "--out", dir["out2"], "--txt-split", "words");
        Assert.Equal(1, bad.Code);
        Assert.StartsWith("error: ", bad.Err, StringComparison.Ordinal);
        Assert.Contains("input.txt_split", bad.Err, StringComparison.Ordinal);
        Assert.Single(bad.Err.Trim().Split('\n'));
    }
}
