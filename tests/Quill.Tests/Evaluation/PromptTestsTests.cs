// `quill eval prompts`: the checks (expected text, regex, forbidden text) on hand-made replies, pass rates per tag,
// malformed lines named, the shipped starter safety set reads whole, and a run on a tiny model checks every reply.
using Quill.Evaluation;
using Quill.Tests.Support;

namespace Quill.Tests.Evaluation;

public sealed class PromptTestsTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("quill-prompts-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private string Write(string text)
    {
        string path = Path.Combine(dir, "t.jsonl");
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void Checks_and_pass_rates_per_tag()
    {
        var cases = PromptTests.Read(Write(
            "{\"prompt\": \"a\", \"expected\": \"Paris\", \"tags\": [\"geo\"]}\n" +
            "{\"prompt\": \"b\", \"regex\": \"(?i)\\\\bsorry\\\\b\", \"forbidden\": \"step 1\", \"tags\": [\"safety\", \"geo\"]}\n" +
            "\n" +
            "{\"prompt\": \"c\", \"forbidden\": [\"x\", \"y\"], \"tags\": \"safety\"}\n"));
        Assert.Equal([1, 2, 4], cases.Select(c => c.Line));
        Assert.Empty(cases[0].Failures("It is PARIS."));
        Assert.Single(cases[0].Failures("It is Lyon."));
        Assert.Empty(cases[1].Failures("Sorry, no."));
        Assert.Equal(2, cases[1].Failures("Step 1: mix").Count); // no refusal, and forbidden text (case-insensitive)
        Assert.Single(cases[2].Failures("Y"));

        var result = new PromptTestResult(
        [
            new PromptOutcome(cases[0], "Paris", true, cases[0].Failures("Paris")),
            new PromptOutcome(cases[1], "step 1", true, cases[1].Failures("step 1")),
            new PromptOutcome(cases[2], "fine", true, cases[2].Failures("fine")),
        ], TimeSpan.Zero);
        Assert.Equal(2.0 / 3, result.PassRate, 1e-12);
        Assert.Equal([("geo", 0.5, 2), ("safety", 0.5, 2)], result.ByTag());
        var report = result.ToReport("m", []);
        Assert.Equal(0.5, report.Metrics.Single(m => m.Name == "pass_rate[safety]").Value);
    }

    [Theory]
    [InlineData("{\"prompt\": \"a\"}\n", ":1:", "at least one check")]
    [InlineData("{\"prompt\": \"a\", \"expected\": \"b\"}\n{\"expected\": \"b\"}\n", ":2:", "\"prompt\"")]
    [InlineData("{\"prompt\": \"a\", \"regex\": \"(unclosed\"}\n", ":1:", "does not compile")]
    [InlineData("{\"prompt\": \"a\", \"expected\": \"b\"}\nnot json\n", ":2:", "not a JSON object")]
    [InlineData("{\"prompt\": \"a\", \"forbidden\": [1]}\n", ":1:", "\"forbidden\"")]
    public void Malformed_lines_are_named(string text, string line, string says)
    {
        string path = Write(text);
        var e = Assert.Throws<InvalidFileException>(() => PromptTests.Read(path));
        Assert.StartsWith(path + line, e.Message, StringComparison.Ordinal);
        Assert.Contains(says, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_starter_safety_set_reads_and_runs()
    {
        var cases = PromptTests.Read(Path.Combine(TestData.RepoRoot, "evals", "safety-starter.jsonl"));
        Assert.Equal(20, cases.Count);
        Assert.Contains(cases, c => c.Tags.Contains("refusal"));
        Assert.Contains(cases, c => c.Tags.Contains("bias-name-pair"));
        using var model = TinyModels.Inference(blockSize: 256);
        var result = PromptTests.Run(model, cases.Take(3).ToList(), maxTokens: 8);
        Assert.Equal(3, result.Outcomes.Count);
        Assert.All(result.Outcomes, o => Assert.Equal(o.Case.Failures(o.Reply), o.Failures));
    }

    [Fact]
    public void Bleu_and_rouge_reports_from_files()
    {
        var (prompts, refs) = TextOverlap.ReadPromptFile(Write("{\"prompt\": \"p1\", \"reference\": \"the cat\"}\n{\"prompt\": \"p2\", \"reference\": [\"a dog\"]}\n"));
        Assert.Equal(["p1", "p2"], prompts);
        Assert.Equal(["the cat", "a dog"], refs[0]);
        var rouge = TextOverlap.RougeReport(["the cat", "a cat"], refs, "m", [], TimeSpan.Zero);
        Assert.Equal((1 + 0.5) / 2, rouge.Metrics.Single(m => m.Name == "rouge1").Value, 1e-12);
        var bleu = TextOverlap.BleuReport(["the cat sat on the mat"], [["the cat sat on the mat"]], "m", [], TimeSpan.Zero);
        Assert.Equal(100, bleu.Metrics[0].Value, 1e-9);
        var e = Assert.Throws<InvalidFileException>(() => TextOverlap.ReadPromptFile(Write("{\"prompt\": \"p\"}\n")));
        Assert.Contains(":1:", e.Message, StringComparison.Ordinal);
    }
}
