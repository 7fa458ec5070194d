// Gemma 3 end to end through the CLI, as a user would take it: `quill train` a tiny gemma3 from a config (six layers,
// window 8 < block 64, so five layers slide and one is global), `quill generate` from the checkpoint (equal to the
// library's greedy output), `quill finetune --method lora` on it and `finetune merge`, then `quill export` of the
// merged model to GGUF, which llama.cpp continues greedily exactly as Quill does on a prompt longer than the window.
using Quill.Inference;
using Quill.Tests.Support;
using Quill.Tests.Training;

namespace Quill.Tests.Cli;

public sealed class CliGemmaTests
{
    [Fact]
    public void A_gemma3_trains_generates_fine_tunes_and_exports_for_llama_cpp()
    {
        string dir = TrainerTests.PrepareStories(30_000);
        try
        {
            string cfg = Path.Combine(dir, "gemma3.json");
            File.WriteAllText(cfg, """
                { "model": { "arch": "gemma3", "vocab_size": 64, "n_layer": 6, "n_head": 2, "n_kv_head": 1, "n_embd": 32, "head_dim": 16,
                             "mlp_hidden": 64, "block_size": 64, "sliding_window": 8, "rope_theta": 1000000 },
                  "train": { "batch_size": 4, "max_steps": 30, "learning_rate": 0.01, "warmup_steps": 3, "eval_every": 0, "checkpoint_every": 0 } }
                """);
            string run = Path.Combine(dir, "run");
            var train = CliProcess.Run("train", "--config", cfg, "--data", Path.Combine(dir, "data"), "--out", run);
            Assert.True(train.Exit == 0, train.Err);
            using (var m = ModelLoader.Load(run))
            {
                Assert.Equal([8, 8, 8, 8, 8, 0], Enumerable.Range(0, 6).Select(m.Spec.LayerWindow));
                Assert.True(m.Spec.QkNorm && m.Spec.PostNorms && m.Spec.EmbedScale);
            }

            const string prompt = "Once upon a time, there was a little";  // 37 characters: past the window
            var gen = CliProcess.Run("generate", "--model", run, "--prompt", prompt, "--max-tokens", "24", "--temperature", "0");
            Assert.True(gen.Exit == 0, gen.Err);
            using (var model = ModelLoader.Load(run))
            {
                var g = new Generator(new InferenceEngine(model));
                var opts = new GenerationOptions { MaxTokens = 24, Sampling = new() { Temperature = 0 } };
                Assert.Equal(string.Concat(g.Generate(g.EncodePrompt(prompt), opts).Select(t => t.Text)), gen.Out);
            }

            string sft = Path.Combine(dir, "sft.jsonl");
            string[] animals = ["cat", "dog", "bird", "fox"];
            File.WriteAllLines(sft, Enumerable.Range(0, 16).Select(i => $$"""{"prompt": "Tell me about the {{animals[i % 4]}}.\n", "completion": "The {{animals[i % 4]}} sat on a mat."}"""));
            string ftCfg = Path.Combine(dir, "ft.yaml");
            File.WriteAllText(ftCfg, "train:\n  batch_size: 4\n  seq_len: 48\n  max_steps: 6\n  learning_rate: 0.01\n  warmup_steps: 1\n  eval_every: 0\n  checkpoint_every: 0\n");
            string adapter = Path.Combine(dir, "lora");
            var ft = CliProcess.Run("finetune", "--base", run, "--data", sft, "--out", adapter, "--config", ftCfg, "--method", "lora", "--val-fraction", "0", "--lora-targets", "all-linear");
            Assert.True(ft.Exit == 0, ft.Err);
            string merged = Path.Combine(dir, "merged");
            var merge = CliProcess.Run("finetune", "merge", "--base", run, "--adapter", adapter, "--out", merged);
            Assert.True(merge.Exit == 0, merge.Err);

            string gguf = Path.Combine(dir, "gemma3.gguf");
            var export = CliProcess.Run("export", "--model", merged, "--out", gguf, "--dtype", "f32");
            Assert.True(export.Exit == 0, export.Err);
            using var quill = ModelLoader.Load(gguf);
            Assert.Equal("gemma3", quill.Spec.Arch);
            using var cpp = LlamaCpp.Open(gguf, f32Cache: true);
            int[] ids = cpp.Tokenize(prompt);
            Assert.True(ids.Length > 8, "the prompt should be longer than the window");
            Assert.Equal(cpp.Greedy(ids, 24), Inference.LlamaCppOracleTests.GreedyQuill(new InferenceEngine(quill), ids, 24, quill.Spec.VocabSize));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
