// HellaSwag: the whole validation file parses (10,042 tasks), and on a fixed small model (a character-level GPT-2,
// fixtures/hellaswag, from make_hellaswag_fixture.py) Quill's acc and acc_norm on the first 200 tasks equal an
// independent float64 PyTorch computation of lm-evaluation-harness's scoring; each ending's log-likelihood agrees
// closely. Also: the harness's preprocessing of its JSONL rows, and malformed files named by line.
using System.Text.Json;
using Quill.Evaluation;
using Quill.Inference;
using Quill.Tests.Support;

namespace Quill.Tests.Evaluation;

public sealed class HellaSwagTests
{
    private const string Val = "eval/hellaswag_val_full.txt";
    private static readonly string Fixture = Path.Combine(AppContext.BaseDirectory, "fixtures", "hellaswag");

    [TestDataFact(Val)]
    public void The_whole_validation_file_parses()
    {
        var items = HellaSwag.Read(TestData.PathOf(Val));
        Assert.Equal(10042, items.Count);
        Assert.All(items, i => Assert.Equal(4, i.Choices.Count));
        Assert.Equal("Roof shingle removal: A man is sitting on a roof. he", items[0].Context);
        Assert.Equal(3, items[0].Gold);
        Assert.Equal("starts pulling up roofing on a roof.", items[0].Choices[3]);
        Assert.Equal(4, items.Select(i => i.Gold).Distinct().Count());
    }

    [TestDataFact(Val)]
    public void Acc_and_acc_norm_equal_an_independent_pytorch_reference_on_200_tasks()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixture, "reference.json")));
        var reference = doc.RootElement;
        int tasks = reference.GetProperty("tasks").GetInt32();
        using var model = ModelLoader.Load(Path.Combine(Fixture, "hf"));
        model.Tokenizer = TinyModels.Tokenizer();
        Assert.Equal([1, 95, 0], model.Tokenizer.Encode(" ~\n"));

        var items = HellaSwag.Read(TestData.PathOf(Val), limit: tasks);
        var result = MultipleChoice.Run(model, "hellaswag", items);
        var want = reference.GetProperty("items").EnumerateArray().ToArray();
        int nearTies = 0;
        for (int t = 0; t < tasks; t++)
        {
            double[] lls = [.. want[t].GetProperty("loglikelihoods").EnumerateArray().Select(x => x.GetDouble())];
            for (int i = 0; i < 4; i++)
                Assert.True(Math.Abs(result.Outcomes[t].LogLikelihoods[i] - lls[i]) < 1e-3 * Math.Max(1, Math.Abs(lls[i])),
                    $"task {t + 1} ending {i}: {result.Outcomes[t].LogLikelihoods[i]} vs PyTorch {lls[i]}");
            double[] norm = [.. lls.Select((x, i) => x / items[t].Choices[i].Length)];
            if (Margin(lls) < 1e-3 || Margin(norm) < 1e-5) nearTies++;
        }
        Assert.True(nearTies <= 2, $"{nearTies} tasks within float32 noise of a tie: the model is too undecided for this test");
        Assert.Equal(want.Select(w => w.GetProperty("pick").GetInt32()), result.Outcomes.Select(o => o.Pick));
        Assert.Equal(want.Select(w => w.GetProperty("pick_norm").GetInt32()), result.Outcomes.Select(o => o.PickNorm));
        Assert.Equal(reference.GetProperty("acc").GetDouble(), result.Acc, 1e-12);
        Assert.Equal(reference.GetProperty("acc_norm").GetDouble(), result.AccNorm, 1e-12);
        Assert.NotEqual(result.Outcomes.Select(o => o.Pick), result.Outcomes.Select(o => o.PickNorm)); // the two metrics differ
    }

    private static double Margin(double[] x)
    {
        var s = x.OrderDescending().ToArray();
        return s[0] - s[1];
    }

    [Fact]
    public void Harness_jsonl_rows_are_preprocessed_as_the_harness_does()
    {
        string row = """{"ind": 24, "activity_label": "Roof shingle removal", "ctx_a": "A man is sitting on a roof.", "ctx_b": "he", "endings": ["is using wrap to wrap a pair of skis.", "[header] How to  remove [title] shingles.", "x", "y"], "label": "1"}""";
        var item = Assert.Single(HellaSwag.ParseJsonl(row + "\n", "h.jsonl"));
        Assert.Equal("Roof shingle removal: A man is sitting on a roof. He", item.Context);
        Assert.Equal(" How to remove. shingles.", item.Choices[1]); // strip comes first, so the space before "[header]"'s removal stays
        Assert.Equal(1, item.Gold);
        Assert.Equal("24", item.Id);
        Assert.Equal("Hello world", HellaSwag.Capitalize("hELLO WORLD"));
    }

    [Fact]
    public void Malformed_files_name_the_line()
    {
        var e = Assert.Throws<InvalidFileException>(() => HellaSwag.ParseText("ctx\n1\na\nb\nc\nd\nctx2\n7\na\nb\nc\nd\n", "h.txt"));
        Assert.StartsWith("h.txt:8:", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<InvalidFileException>(() => HellaSwag.ParseText("ctx\n1\na\nb\n", "h.txt"));
        Assert.Contains("not a whole number of 6-line tasks", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<InvalidFileException>(() => HellaSwag.ParseJsonl("{\"activity_label\": \"a\", \"ctx_a\": \"b\", \"ctx_b\": \"c\", \"endings\": [\"x\", \"y\"], \"label\": 0}\n{oops\n", "h.jsonl"));
        Assert.StartsWith("h.jsonl:2:", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<InvalidFileException>(() => HellaSwag.ParseJsonl("{\"activity_label\": \"a\", \"ctx_a\": \"b\", \"endings\": [\"x\", \"y\"], \"label\": 0}\n", "h.jsonl"));
        Assert.Contains("ctx_b", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<InvalidFileException>(() => HellaSwag.ParseJsonl("{\"activity_label\": \"a\", \"ctx_a\": \"b\", \"ctx_b\": \"c\", \"endings\": [\"x\", \"y\"], \"label\": 5}\n", "h.jsonl"));
        Assert.StartsWith("h.jsonl:1:", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_model_without_a_tokenizer_says_the_task_needs_one()
    {
        using var model = TinyModels.Inference();
        model.Tokenizer = null;
        var e = Assert.Throws<InvalidConfigException>(() => MultipleChoice.Run(model, "hellaswag", [new ChoiceItem("a", ["b", "c"], 0)]));
        Assert.Contains("'hellaswag' task needs one", e.Message, StringComparison.Ordinal);
    }
}
