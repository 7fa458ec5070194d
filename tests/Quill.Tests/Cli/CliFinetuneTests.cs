// `quill finetune` as a user meets it: stories260K (llama2.c, no chat template: the pinned Alpaca layout) fine-tuned
// on a handful of Alpaca lines for a few steps; the data report counts the skipped empty reply, and the checkpoint
// generates the trained reply for the trained prompt and stops at the EOS it learned. Bad input is one line.
using Quill.Tests.Support;

namespace Quill.Tests.Cli;

public class CliFinetuneTests
{
    private const string Prompt = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nTell a story about a cat.\n\n### Response:\n";

    private static string Lines() => """
        {"instruction": "Tell a story about a cat.", "output": "Once upon a time, there was a little cat named Tom. Tom liked to play in the sun."}
        {"instruction": "Tell a story about a dog.", "output": "Once upon a time, there was a big dog named Max. Max liked to run in the park."}
        {"instruction": "Tell a story about a bird.", "output": "Once upon a time, there was a small bird named Lily. Lily liked to sing in the tree."}
        {"instruction": "Tell a story about a bear.", "input": "The bear is hungry.", "output": "Once upon a time, there was a hungry bear named Ben. Ben found some honey."}
        {"instruction": "Tell a story about a frog.", "output": ""}
        """;

    [TestDataFact("llama2c/stories260K.bin", "llama2c/tok512.bin")]
    public void Finetuning_stories260K_on_alpaca_lines_gives_a_checkpoint_that_answers_and_stops()
    {
        string dir = Directory.CreateTempSubdirectory("quill-finetune").FullName;
        string data = Path.Combine(dir, "data.jsonl"), cfg = Path.Combine(dir, "ft.yaml"), run = Path.Combine(dir, "run");
        File.WriteAllText(data, Lines());
        File.WriteAllText(cfg, "train:\n  batch_size: 4\n  seq_len: 256\n  max_steps: 40\n  learning_rate: 0.001\n  warmup_steps: 2\n  eval_every: 0\n  checkpoint_every: 0\n");
        var ft = CliProcess.Run("finetune", "--base", TestData.PathOf("llama2c/stories260K.bin"), "--tokenizer", TestData.PathOf("llama2c/tok512.bin"),
            "--data", data, "--out", run, "--config", cfg, "--val-fraction", "0");
        Assert.True(ft.Exit == 0, ft.Err);
        Assert.True(ft.Err.Contains("4 alpaca; layout alpaca (pinned, torchtune); 4 train / 0 held out", StringComparison.Ordinal), ft.Err);
        Assert.Contains("1 skipped (empty reply)", ft.Err);
        Assert.Contains("done: 40 steps", ft.Err);
        Assert.True(File.Exists(Path.Combine(run, "checkpoint", "tokenizer.json")));

        var gen = CliProcess.Run("generate", "--model", run, "--temperature", "0", "--max-tokens", "60", "--prompt", Prompt);
        Assert.True(gen.Exit == 0, gen.Err);
        Assert.StartsWith("Once upon a time, there was a little cat", gen.Out.Trim());
        Assert.Contains("(stop)", gen.Err); // it ended on the EOS, not at --max-tokens
    }

    [Theory]
    [InlineData("--method lora", "--method lora is not available")]
    [InlineData("--data /nonexistent.jsonl", "/nonexistent.jsonl: file not found")]
    public void Bad_input_is_one_line(string extra, string expected)
    {
        if (!TestData.Exists("llama2c/stories260K.bin")) return;
        string dir = Directory.CreateTempSubdirectory("quill-finetune").FullName;
        string data = Path.Combine(dir, "data.jsonl");
        File.WriteAllText(data, Lines());
        var args = new List<string> { "finetune", "--base", TestData.PathOf("llama2c/stories260K.bin"), "--tokenizer", TestData.PathOf("llama2c/tok512.bin"), "--out", Path.Combine(dir, "run") };
        if (!extra.StartsWith("--data", StringComparison.Ordinal)) args.AddRange(["--data", data]);
        args.AddRange(extra.Split(' '));
        var r = CliProcess.Run([.. args]);
        Assert.Equal(1, r.Exit);
        string line = Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: ", line);
        Assert.Contains(expected, line);
    }
}
