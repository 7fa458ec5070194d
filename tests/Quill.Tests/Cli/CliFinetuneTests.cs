// `quill finetune` as a user meets it: stories260K (llama2.c, no chat template: the pinned Alpaca layout) fine-tuned
// on a handful of Alpaca lines for a few steps; the data report counts the skipped empty reply, and the checkpoint
// generates the trained reply for the trained prompt and stops at the EOS it learned. With --method lora the
// checkpoint is a PEFT adapter that `generate --adapter` runs and `finetune merge` folds into a model folder that
// generates the same text on its own; --method qlora trains beside a GGUF Q4_0 base kept as stored and resumes from
// what its checkpoint records. Bad input is one line.
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

    [TestDataFact("llama2c/stories260K.bin", "llama2c/tok512.bin")]
    public void Lora_from_the_command_line_runs_with_generate_adapter_and_merges_into_a_model_folder()
    {
        string dir = Directory.CreateTempSubdirectory("quill-finetune-lora").FullName;
        string data = Path.Combine(dir, "data.jsonl"), cfg = Path.Combine(dir, "ft.yaml"), run = Path.Combine(dir, "run"), merged = Path.Combine(dir, "merged");
        File.WriteAllText(data, Lines());
        File.WriteAllText(cfg, "train:\n  batch_size: 4\n  seq_len: 256\n  max_steps: 60\n  learning_rate: 0.01\n  warmup_steps: 2\n  eval_every: 0\n  checkpoint_every: 0\n");
        string[] stories = ["--tokenizer", TestData.PathOf("llama2c/tok512.bin")];
        var ft = CliProcess.Run(["finetune", "--base", TestData.PathOf("llama2c/stories260K.bin"), .. stories, "--data", data, "--out", run, "--config", cfg, "--val-fraction", "0",
            "--method", "lora", "--lora-targets", "all-linear"]);
        Assert.True(ft.Exit == 0, ft.Err);
        Assert.Contains("method lora (weights widened to f32, frozen)", ft.Err);
        Assert.Contains("adapter: r 8, alpha 16, dropout 0, scaling 2, q_proj k_proj v_proj o_proj gate_proj up_proj down_proj (35 modules", ft.Err);
        Assert.Contains("done: 60 steps", ft.Err);
        Assert.Contains($"adapter: {Path.Combine(run, "checkpoint")} (PEFT", ft.Out);
        Assert.False(File.Exists(Path.Combine(run, "checkpoint", "model.safetensors")));

        string[] greedy = ["--temperature", "0", "--max-tokens", "40", "--prompt", Prompt];
        var withAdapter = CliProcess.Run(["generate", "--model", TestData.PathOf("llama2c/stories260K.bin"), .. stories, "--adapter", run, .. greedy]);
        Assert.True(withAdapter.Exit == 0, withAdapter.Err);
        Assert.StartsWith("Once upon a time, there was a little cat named Tom.", withAdapter.Out.Trim());

        var merge = CliProcess.Run(["finetune", "merge", "--base", TestData.PathOf("llama2c/stories260K.bin"), .. stories, "--adapter", run, "--out", merged]);
        Assert.True(merge.Exit == 0, merge.Err);
        Assert.Contains("merged: ", merge.Err);
        var fromMerged = CliProcess.Run(["generate", "--model", merged, .. greedy]); // no other argument: tokenizer and BOS rule come with it
        Assert.True(fromMerged.Exit == 0, fromMerged.Err);
        Assert.Equal(withAdapter.Out, fromMerged.Out);

        var onItsOwn = CliProcess.Run(["generate", "--model", run, .. greedy]);
        Assert.Equal(1, onItsOwn.Exit);
        Assert.Contains("holds a LoRA adapter, not a whole model; run it on its base", Assert.Single(onItsOwn.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
    }

    [TestDataFact("llama2c/stories260K.bin", "llama2c/tok512.bin")]
    public void Qlora_on_a_gguf_q4_0_base_trains_and_resumes_from_what_its_checkpoint_records()
    {
        string dir = Directory.CreateTempSubdirectory("quill-finetune-qlora").FullName;
        string data = Path.Combine(dir, "data.jsonl"), cfg = Path.Combine(dir, "ft.yaml"), run = Path.Combine(dir, "run");
        string gguf = Quill.Tests.Models.QLoraTests.WriteGguf(dir, Quill.Quantization.GgmlType.Q4_0);
        File.WriteAllText(data, Lines());
        File.WriteAllText(cfg, "train:\n  batch_size: 4\n  seq_len: 256\n  max_steps: 20\n  learning_rate: 0.01\n  warmup_steps: 2\n  eval_every: 0\n  checkpoint_every: 0\nlora:\n  method: qlora\n  rank: 4\n  alpha: 8\n  target_modules: [q_proj, v_proj]\n");
        var ft = CliProcess.Run("finetune", "--base", gguf, "--tokenizer", TestData.PathOf("llama2c/tok512.bin"), "--data", data, "--out", run, "--config", cfg, "--val-fraction", "0", "--max-steps", "10");
        Assert.True(ft.Exit == 0, ft.Err);
        Assert.Contains("method qlora (base matrices 31 Q4_0, 5 F32, not widened", ft.Err); // 30 projections + the tied table; down_proj rows of 172 are F32 in the file
        Assert.Contains("adapter: r 4, alpha 8, dropout 0, scaling 2, q_proj v_proj (10 modules", ft.Err);
        Assert.Contains("done: 10 steps", ft.Err);

        // --resume without --base or --tokenizer: the checkpoint records them
        var resumed = CliProcess.Run("finetune", "--data", data, "--out", run, "--config", cfg, "--val-fraction", "0", "--max-steps", "14", "--resume");
        Assert.True(resumed.Exit == 0, resumed.Err);
        Assert.Contains($"base: {gguf} (llama), method qlora", resumed.Err);
        Assert.Contains("done: 14 steps", resumed.Err);
    }

    [TestDataFact("llama2c/stories260K.bin", "llama2c/tok512.bin", "gguf-models/llama-2-tiny-random.gguf")]
    public void Merging_an_adapter_onto_another_base_is_one_line()
    {
        string dir = Directory.CreateTempSubdirectory("quill-merge").FullName;
        using (var open = Quill.Inference.ModelLoader.Load(TestData.PathOf("llama2c/stories260K.bin"), TestData.PathOf("llama2c/tok512.bin")))
            Quill.Models.LanguageModel.FromWeights(open.Weights).AddLora(new Quill.Models.LoraConfig()).Save(Path.Combine(dir, "adapter"));
        var r = CliProcess.Run("finetune", "merge", "--base", TestData.PathOf("gguf-models/llama-2-tiny-random.gguf"), "--adapter", Path.Combine(dir, "adapter"), "--out", Path.Combine(dir, "merged"));
        Assert.Equal(1, r.Exit);
        string line = Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("the adapter was made for another model", line);
        Assert.False(Directory.Exists(Path.Combine(dir, "merged")));
    }

    [Theory]
    [InlineData("--method bogus", "--method bogus is not a fine-tuning method; use full, lora, qlora, dpo, ipo, orpo or simpo.")]
    [InlineData("--lora-rank 4", "--lora-* / --rslora / --qlora-type go with --method lora or qlora")]
    [InlineData("--method lora --lora-rank 0", "lora r must be at least 1 (got 0)")]
    [InlineData("--method lora --lora-targets c_attn", "lora target module 'c_attn' is not a projection of llama2.c; use some of: q_proj")]
    [InlineData("--method qlora --qlora-type q4_k", "stories260K.bin: no weight matrix has rows of whole Q4_K blocks (256 values")]
    [InlineData("--method qlora --qlora-type f16", "lora.quant_type 'f16' is not a block type")]
    [InlineData("--data /nonexistent.jsonl", "/nonexistent.jsonl: file not found")]
    [InlineData("--early-stop 0", "--early-stop takes the number of evaluations without improvement to stop after, at least 1 (got 0).")]
    [InlineData("--early-stop-threshold 0.1", "--early-stop-threshold goes with --early-stop N")]
    [InlineData("--early-stop 2 --val-fraction 0", "early stopping watches the validation loss, but this run has no validation data")]
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
