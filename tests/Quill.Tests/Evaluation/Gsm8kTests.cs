// GSM8K's answer extraction and exact_match as lm-evaluation-harness defines them, on hand-made generations; the
// k-shot prompt's layout; the shipped test file reads whole; a malformed line is named; and the whole task runs on a
// tiny model (every generation is scored, whatever it says). MMLU-style items: layout, letters, bad lines.
using Quill.Evaluation;
using Quill.Tests.Support;

namespace Quill.Tests.Evaluation;

public sealed class Gsm8kTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("quill-gsm-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Theory]
    [InlineData("She makes 9 * 2 = $<<9*2=18>>18 every day.\n#### 18", "18", "18")]
    [InlineData("The answer is $1,234.56.", "[invalid]", "$1,234.56.")]
    [InlineData("First 5 apples, then 7", "[invalid]", "7")]
    [InlineData("#### -3\nand then 12 more", "-3", "12")]
    [InlineData("#### 1,000 #### 2", "1,000", "2")]
    [InlineData("no numbers at all", "[invalid]", "[invalid]")]
    public void Extraction_follows_strict_match_and_flexible_extract(string generation, string strict, string flexible)
    {
        Assert.Equal(strict, Gsm8k.StrictExtract(generation));
        Assert.Equal(flexible, Gsm8k.FlexibleExtract(generation));
    }

    [Fact]
    public void Exact_match_ignores_commas_dollars_the_worked_answer_and_a_final_period()
    {
        string reference = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips.\n#### 1,072";
        Assert.Equal("1072", Gsm8k.Normalize(reference));
        Assert.True(Gsm8k.Matches("$1,072.", reference));
        Assert.True(Gsm8k.Matches("1072", reference));
        Assert.False(Gsm8k.Matches("1072.5", reference));
        Assert.False(Gsm8k.Matches("[invalid]", reference));
    }

    [Fact]
    public void The_prompt_is_k_solved_examples_then_the_question()
    {
        var shots = new[] { new MathProblem("1+1?", "1+1=2\n#### 2"), new MathProblem("2+2?", "#### 4") };
        Assert.Equal("Question: 1+1?\nAnswer: 1+1=2\n#### 2\n\nQuestion: 2+2?\nAnswer: #### 4\n\nQuestion: 3+3?\nAnswer:",
            Gsm8k.Prompt(shots, new MathProblem("3+3?", "#### 6")));
    }

    [TestDataFact("eval/gsm8k_test.jsonl")]
    public void The_test_file_reads_whole()
    {
        var problems = Gsm8k.Read(TestData.PathOf("eval/gsm8k_test.jsonl"));
        Assert.Equal(1319, problems.Count);
        Assert.Equal("18", Gsm8k.Normalize(problems[0].Answer));
        Assert.All(problems, p => Assert.Matches(@"^-?[0-9.]+$", Gsm8k.Normalize(p.Answer)));
    }

    [Fact]
    public void A_malformed_line_is_named()
    {
        string path = Path.Combine(dir, "g.jsonl");
        File.WriteAllText(path, "{\"question\": \"q\", \"answer\": \"#### 1\"}\n\n{\"question\": \"q\"}\n");
        var e = Assert.Throws<InvalidFileException>(() => Gsm8k.Read(path));
        Assert.StartsWith(path + ":3:", e.Message, StringComparison.Ordinal);
        Assert.Contains("answer", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_task_runs_end_to_end_on_a_tiny_model()
    {
        using var model = TinyModels.Inference(blockSize: 256);
        var problems = new[] { new MathProblem("What is 2+2?", "#### 4"), new MathProblem("What is 3+3?", "#### 6") };
        var r = Gsm8k.Run(model, problems, [new MathProblem("What is 1+1?", "#### 2")], "test", maxTokens: 16);
        Assert.Equal(2, r.Outcomes.Count);
        Assert.All(r.Outcomes, o => Assert.Equal(Gsm8k.StrictExtract(o.Generation), o.Strict));
        Assert.All(r.Outcomes, o => Assert.DoesNotContain("Question:", o.Generation, StringComparison.Ordinal));
        var report = r.ToReport("tiny", []);
        Assert.Equal(2, report.Items.Count);
        Assert.Equal(1, report.Settings["shots"]);
    }

    [Fact]
    public void Mmlu_items_are_laid_out_as_the_harness_does_and_bad_lines_named()
    {
        string path = Path.Combine(dir, "m.jsonl");
        File.WriteAllText(path, "{\"question\": \"2+2?\", \"choices\": [\"3\", \"4\"], \"answer\": \"B\", \"subject\": \"high_school_math\"}\n"
            + "{\"question\": \"Sky?\", \"choices\": [\"blue\", \"green\", \"red\"], \"answer\": 0}\n");
        var items = Mmlu.Read(path);
        Assert.Equal("The following are multiple choice questions (with answers) about high school math.\n\n2+2?\nA. 3\nB. 4\nAnswer:", items[0].Context);
        Assert.Equal(["A", "B"], items[0].Choices);
        Assert.Equal(1, items[0].Gold);
        Assert.Equal("Sky?\nA. blue\nB. green\nC. red\nAnswer:", items[1].Context);
        Assert.Equal(0, items[1].Gold);
        File.WriteAllText(path, "{\"question\": \"q\", \"choices\": [\"a\", \"b\"], \"answer\": \"C\"}\n");
        var e = Assert.Throws<InvalidFileException>(() => Mmlu.Read(path));
        Assert.StartsWith(path + ":1:", e.Message, StringComparison.Ordinal);

        using var model = TinyModels.Inference(blockSize: 256);
        File.WriteAllText(path, "{\"question\": \"2+2?\", \"choices\": [\"3\", \"4\"], \"answer\": 1}\n");
        var result = MultipleChoice.Run(model, "mmlu", Mmlu.Read(path));
        Assert.Equal(2, Assert.Single(result.Outcomes).TokenCounts[0]); // " A": the delimiter and the letter, one character token each
    }
}
