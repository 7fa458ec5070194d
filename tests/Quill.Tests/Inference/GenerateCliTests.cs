// `quill generate` / `quill chat` as a user meets them: a checkpoint made by `quill train` generates text (stdout
// holds only the generation, stderr the throughput); greedy output equals the library's; chat answers and obeys
// /reset, /system and /quit; --adapter merges a PEFT LoRA adapter first (greedy output equals the library's merged
// model and differs from the base); bad input is one line on stderr and exit code 1.
using Quill.Tests.Cli;
using Quill.Tests.Support;
using Quill.Tests.Training;

namespace Quill.Tests.Inference;

public sealed class GenerateCliTests
{
    [Fact]
    public void A_checkpoint_from_quill_train_generates_text()
    {
        string dir = TrainerTests.PrepareStories(20_000);
        string cfg = Path.Combine(dir, "tiny.json");
        File.WriteAllText(cfg, """
            { "model": { "arch": "gpt2", "vocab_size": 64, "n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 32 },
              "train": { "batch_size": 2, "max_steps": 3, "learning_rate": 0.003, "warmup_steps": 1, "eval_every": 10, "eval_batches": 1, "checkpoint_every": 3 } }
            """);
        string run = Path.Combine(dir, "run");
        var train = CliProcess.Run("train", "--config", cfg, "--data", Path.Combine(dir, "data"), "--out", run, "--max-steps", "3");
        Assert.True(train.Exit == 0, train.Err);

        var gen = CliProcess.Run("generate", "--model", run, "--prompt", "Once", "--max-tokens", "20", "--temperature", "0");
        Assert.True(gen.Exit == 0, gen.Err);
        Assert.True(gen.Out.Length > 0, "nothing generated");
        Assert.DoesNotContain("tokens/s", gen.Out);
        Assert.Contains("decode:", gen.Err);
        Assert.Contains("tokens/s", gen.Err);

        // stdout is exactly what the library generates greedily (prompt excluded, no extra newline)
        using var model = Quill.Inference.ModelLoader.Load(run);
        var g = new Quill.Inference.Generator(new Quill.Inference.InferenceEngine(model));
        var opts = new Quill.Inference.GenerationOptions { MaxTokens = 20, Sampling = new() { Temperature = 0 } };
        string expected = string.Concat(g.Generate(g.EncodePrompt("Once"), opts).Select(t => t.Text));
        Assert.Equal(expected, gen.Out);

        var chat = RunWithInput("hello\n/system be brief\nhi again\n/reset\n/quit\n", "chat", "--model", run, "--max-tokens", "5", "--temperature", "0");
        Assert.True(chat.Exit == 0, chat.Err);
        Assert.Contains("system prompt set", chat.Err);
        Assert.Contains("conversation cleared", chat.Err);
    }

    [Fact]
    public void An_adapter_runs_beside_the_model_unmerged()
    {
        // a Qwen2 (with its tokenizer) and a LoRA adapter on all of its projections, B made non-zero
        string hf = Path.Combine(AppContext.BaseDirectory, "fixtures", "arch", "qwen2", "hf");
        string dir = Directory.CreateTempSubdirectory("quill-adapter-").FullName;
        try
        {
            string adapter = Path.Combine(dir, "adapter");
            using (var loaded = Quill.Inference.ModelLoader.Load(hf))
            {
                var lm = Quill.Models.LanguageModel.FromWeights(loaded.Weights);
                var lora = lm.AddLora(new Quill.Models.LoraConfig { Rank = 4, TargetModules = [Quill.Models.LoraConfig.AllLinear] });
                foreach (var m in lora.Modules) new Quill.Tensors.Rng(3).FillNormal(m.B.Span, 0.5);
                lora.Save(adapter);
            }

            var gen = CliProcess.Run("generate", "--model", hf, "--adapter", adapter, "--prompt", "Once", "--max-tokens", "12", "--temperature", "0");
            Assert.True(gen.Exit == 0, gen.Err);

            using var plain = Quill.Inference.ModelLoader.Load(hf);
            using var merged = plain.WithLoraAdapter(adapter);
            using var unmerged = Quill.Inference.ModelLoader.Load(hf).WithAdapter(adapter);
            string Greedy(Quill.Inference.InferenceModel model)
            {
                var g = new Quill.Inference.Generator(new Quill.Inference.InferenceEngine(model));
                var opts = new Quill.Inference.GenerationOptions { MaxTokens = 12, Sampling = new() { Temperature = 0 } };
                return string.Concat(g.Generate(g.EncodePrompt("Once"), opts).Select(t => t.Text));
            }
            Assert.Equal(Greedy(unmerged), gen.Out);
            Assert.Equal(Greedy(merged), gen.Out); // the same text as the merged model (logits equal to 1e-5: UnmergedAdapterTests)
            Assert.NotEqual(Greedy(plain), gen.Out); // the adapter changed what the model says

            var bad = CliProcess.Run("generate", "--model", hf, "--adapter", Path.Combine(dir, "nope"), "--prompt", "Once");
            Assert.Equal(1, bad.Exit);
            string line = Assert.Single(bad.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Contains("not found", line);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static (int Exit, string Out, string Err) RunWithInput(string input, params string[] args)
    {
        using var p = System.Diagnostics.Process.Start(CliProcess.StartInfo(args))!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.StandardInput.Write(input);
        p.StandardInput.Close();
        if (!p.WaitForExit(120_000))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException("quill " + string.Join(' ', args) + " did not finish");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    [TestDataFact("llama2c/stories260K.bin", "llama2c/tok512.bin")]
    public void Llama2c_model_with_explicit_tokenizer_streams_greedy_text()
    {
        var r = CliProcess.Run("generate", "--model", TestData.PathOf("llama2c/stories260K.bin"), "--tokenizer", TestData.PathOf("llama2c/tok512.bin"),
            "--prompt", "Zoo", "--temperature", "0", "--max-tokens", "59");
        Assert.True(r.Exit == 0, r.Err);
        // expected_outputs.json c64 case: "Zoo was a little girl named Lily. ..." (the prompt itself not printed)
        Assert.StartsWith(" was a little girl named Lily.", r.Out, StringComparison.Ordinal);
    }

    [TestDataFact("llama2c/stories260K.bin", "llama2c/tok512.bin")]
    public void A_tiny_temperature_is_greedy_and_nan_weights_are_one_line()
    {
        // issue 19: --temperature 1e-45 crashed with IndexOutOfRangeException in Sampler.SampleTopP
        string[] common = ["generate", "--model", TestData.PathOf("llama2c/stories260K.bin"), "--tokenizer", TestData.PathOf("llama2c/tok512.bin"), "--prompt", "Zoo", "--max-tokens", "40"];
        var greedy = CliProcess.Run([.. common, "--temperature", "0"]);
        Assert.True(greedy.Exit == 0, greedy.Err);
        var tiny = CliProcess.Run([.. common, "--temperature", "1e-45", "--top-p", "0.9", "--seed", "3"]);
        Assert.True(tiny.Exit == 0, tiny.Err);
        Assert.Equal(greedy.Out, tiny.Out);

        // the same model with every weight NaN (a corrupt file): one line naming the problem, exit code 1
        string dir = Directory.CreateTempSubdirectory("quill-nan-").FullName;
        try
        {
            byte[] bytes = File.ReadAllBytes(TestData.PathOf("llama2c/stories260K.bin"));
            for (int i = 28; i + 4 <= bytes.Length; i += 4) BitConverter.GetBytes(float.NaN).CopyTo(bytes, i);
            string nan = Path.Combine(dir, "nan.bin");
            File.WriteAllBytes(nan, bytes);
            common[2] = nan;
            var r = CliProcess.Run([.. common, "--temperature", "0.8"]);
            Assert.Equal(1, r.Exit);
            string line = Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("error: ", StringComparison.Ordinal));
            Assert.Contains("NaN logit", line, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", r.Err, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("generate --model /nonexistent.gguf --prompt hi", "not found")]
    [InlineData("generate --model /nonexistent.gguf --prompt hi --temperature -1", "--temperature")]
    public void Bad_input_is_one_line_and_exit_code_one(string args, string expected)
    {
        var r = CliProcess.Run(args.Split(' '));
        Assert.Equal(1, r.Exit);
        string line = Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: ", line);
        Assert.Contains(expected, line);
    }
}
