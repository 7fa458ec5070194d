// LoRA and QLoRA fine-tuning through the library Finetuner on stories260K (llama2.c, f32) and its GGUF Q8_0 / Q4_0
// exports: the loss falls and only adapter tensors change; a QLoRA base keeps its block type and owns almost no float
// memory while training; each checkpoint is the adapter alone (PEFT files, adapter moments, the lora and base sections,
// no model.safetensors); a run split 7 + 5 steps ends with the same adapter and optimizer bytes as 12 straight; and a
// merged model folder (Checkpoint.SaveModel) gives, through the inference engine, the logits of the base with the
// adapter unmerged and keeps the base's BOS rule.
using System.Text.Json.Nodes;
using Quill.Autograd;
using Quill.Formats.SafeTensors;
using Quill.Inference;
using Quill.Models;
using Quill.Quantization;
using Quill.Tests.Models;
using Quill.Tests.Support;
using Quill.Training;

namespace Quill.Tests.Training;

public sealed class AdapterFinetuneTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("quill-adapter-ft-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static string Stories => TestData.PathOf("llama2c/stories260K.bin");

    private static string Tok => TestData.PathOf("llama2c/tok512.bin");

    private string Data()
    {
        string path = Path.Combine(dir, "data.jsonl");
        File.WriteAllText(path, """
            {"instruction": "Tell a story about a cat.", "output": "Once upon a time, there was a little cat named Tom. Tom liked to play in the sun."}
            {"instruction": "Tell a story about a dog.", "output": "Once upon a time, there was a big dog named Max. Max liked to run in the park."}
            {"instruction": "Tell a story about a bird.", "output": "Once upon a time, there was a small bird named Lily. Lily liked to sing in the tree."}
            {"instruction": "Tell a story about a bear.", "input": "The bear is hungry.", "output": "Once upon a time, there was a hungry bear named Ben. Ben found some honey."}
            """);
        return path;
    }

    private static RunConfig Config() => new()
    {
        Train = new TrainConfig { BatchSize = 2, SeqLen = 128, MaxSteps = 12, LearningRate = 5e-3f, WarmupSteps = 2, EvalEvery = 0, CheckpointEvery = 0 },
    };

    /// <summary>A finetuner for a method on a base file; the returned model must stay open while it trains (QLoRA views it).</summary>
    private (Finetuner Ft, InferenceModel Open) Make(string basePath, FinetuneMethod method, string run, int? stop = null, bool resume = false, GgmlType quant = GgmlType.Q4_0)
    {
        var open = ModelLoader.Load(basePath, basePath.EndsWith(".bin", StringComparison.Ordinal) ? Tok : null);
        var options = new FinetuneOptions(Data(), Path.Combine(dir, run))
        {
            Method = method, QuantType = quant, ValFraction = 0, StopAfterSteps = stop, Resume = resume,
            Lora = new LoraConfig { Rank = 4, Alpha = 8, Dropout = 0.1f, TargetModules = [LoraConfig.AllLinear] },
            Base = new BaseModelConfig { Model = basePath, Tokenizer = Tok },
        };
        var lm = Finetuner.BaseModel(open.Weights, options);
        var tok = open.Tokenizer ?? Quill.Tokenization.TokenizerLoader.Load(Tok);
        return (new Finetuner(new FinetuneBase(lm, tok, null, open.AddBos, open.ExtraStopIds), Config(), options), open);
    }

    private static float FirstLoss(string run) => JsonNode.Parse(File.ReadLines(Path.Combine(run, "metrics.jsonl")).First())!["loss"]!.GetValue<float>();

    [TestDataFact("llama2c/stories260K.bin", "llama2c/tok512.bin")]
    public void Lora_lowers_the_loss_changes_only_the_adapter_and_checkpoints_the_adapter_alone()
    {
        var (ft, open) = Make(Stories, FinetuneMethod.Lora, "lora");
        using (open)
        using (ft)
        {
            var lm = ft.Trainer.Model;
            var before = lm.Parameters.Where(p => p.Name.Contains(".lora_", StringComparison.Ordinal) == false).Select(p => (p.Name, p.ToArray())).ToList();
            Assert.Equal(5 * 7, lm.Lora!.Modules.Count);
            Assert.Equal(12 * lm.Lora.ElementCount, ft.Trainer.TrainingStateBytes); // gradients and moments of A and B only
            var result = ft.Run();
            Assert.True(result.LastLoss < FirstLoss(Path.Combine(dir, "lora")) - 0.3, $"loss {FirstLoss(Path.Combine(dir, "lora"))} -> {result.LastLoss}");
            foreach (var (name, values) in before) Assert.Equal(values, lm.Parameters[name].ToArray());
            Assert.All(lm.Lora.Modules, m => Assert.Contains(m.B.ToArray(), v => v != 0f));

            string ckpt = result.CheckpointDir;
            Assert.Equal(["adapter_config.json", "adapter_model.safetensors", "config.json", "optimizer.safetensors", "state.json", "tokenizer.json"],
                Directory.GetFiles(ckpt).Select(Path.GetFileName).Order(StringComparer.Ordinal));
            using (var opt = SafeTensorsFile.Open(Path.Combine(ckpt, "optimizer.safetensors")))
            {
                Assert.Equal(4 * 5 * 7, opt.Names.Count()); // m and v of A and B per module
                Assert.All(opt.Names, n => Assert.Contains(".lora_", n, StringComparison.Ordinal));
            }
            var cfg = JsonNode.Parse(File.ReadAllText(Path.Combine(ckpt, "config.json")))!;
            Assert.Equal("lora", cfg["lora"]!["method"]!.GetValue<string>());
            Assert.Equal(7, cfg["lora"]!["target_modules"]!.AsArray().Count);
            Assert.Equal(Stories, cfg["base"]!["model"]!.GetValue<string>());
            Assert.Equal(Stories, JsonNode.Parse(File.ReadAllText(Path.Combine(ckpt, "adapter_config.json")))!["base_model_name_or_path"]!.GetValue<string>());

            // the checkpoint is a PEFT adapter: loaded onto a fresh base it runs as the trained model
            var again = LanguageModel.FromWeights(open.Weights);
            again.LoadLora(Path.Combine(dir, "lora")); // the run folder works too
            int[] tokens = [.. Enumerable.Range(0, 24).Select(i => (i * 29 + 1) % 512)];
            Assert.Equal(lm.Forward(new Graph(recording: false), tokens, 1, 24).ToArray(), again.Forward(new Graph(recording: false), tokens, 1, 24).ToArray());
        }
    }

    [TestDataFact("llama2c/stories260K.bin", "llama2c/tok512.bin")]
    public void Qlora_on_a_gguf_q8_0_base_trains_without_widening_the_base()
    {
        string gguf = QLoraTests.WriteGguf(dir, GgmlType.Q8_0);
        var (ft, open) = Make(gguf, FinetuneMethod.QLora, "qlora");
        using (open)
        using (ft)
        {
            var lm = ft.Trainer.Model;
            Assert.Equal(GgmlType.Q8_0, lm.Parameters["model.layers.1.self_attn.k_proj.weight"].DType);
            Assert.Equal(GgmlType.Q8_0, lm.Parameters["model.embed_tokens.weight"].DType);
            long f32 = 4 * lm.Spec.ParameterCount();
            long owned = lm.Parameters.OwnedBytes;
            var result = ft.Run();
            Assert.True(result.LastLoss < FirstLoss(Path.Combine(dir, "qlora")) - 0.3, $"loss {FirstLoss(Path.Combine(dir, "qlora"))} -> {result.LastLoss}");
            Assert.Equal(owned, lm.Parameters.OwnedBytes);
            Assert.True(owned < f32 / 5, $"the QLoRA model owns {owned} bytes of floats; the f32 base alone is {f32}");
            Assert.Equal("qlora", JsonNode.Parse(File.ReadAllText(Path.Combine(result.CheckpointDir, "config.json")))!["lora"]!["method"]!.GetValue<string>());
        }
    }

    [TestDataFact("llama2c/stories260K.bin", "llama2c/tok512.bin")]
    public void Qlora_nf4_on_a_float_base_saves_the_same_peft_adapter_as_lora()
    {
        var (lora, loraOpen) = Make(Stories, FinetuneMethod.Lora, "lora");
        using (loraOpen)
        using (lora) lora.Run();
        var (ft, open) = Make(Stories, FinetuneMethod.QLora, "nf4", quant: GgmlType.NF4);
        using (open)
        using (ft)
        {
            var lm = ft.Trainer.Model;
            Assert.Equal(GgmlType.NF4, lm.Parameters["model.layers.1.self_attn.k_proj.weight"].DType);
            var result = ft.Run();
            Assert.True(result.LastLoss < FirstLoss(Path.Combine(dir, "nf4")) - 0.3, $"loss {FirstLoss(Path.Combine(dir, "nf4"))} -> {result.LastLoss}");
            string a = Path.Combine(dir, "lora", "checkpoint"), b = result.CheckpointDir;
            Assert.Equal(File.ReadAllText(Path.Combine(a, "adapter_config.json")), File.ReadAllText(Path.Combine(b, "adapter_config.json")));
            using (var fa = SafeTensorsFile.Open(Path.Combine(a, "adapter_model.safetensors")))
            using (var fb = SafeTensorsFile.Open(Path.Combine(b, "adapter_model.safetensors")))
            {
                Assert.Equal(fa.Names.Order(StringComparer.Ordinal), fb.Names.Order(StringComparer.Ordinal));
                Assert.Equal(fa.Metadata, fb.Metadata);
                foreach (string n in fa.Names)
                {
                    Assert.Equal(fa.GetInfo(n).Shape, fb.GetInfo(n).Shape);
                    Assert.Equal(fa.GetInfo(n).Dtype, fb.GetInfo(n).Dtype);
                }
            }
            Assert.Equal("nf4", JsonNode.Parse(File.ReadAllText(Path.Combine(b, "config.json")))!["lora"]!["quant_type"]!.GetValue<string>());
            // it runs on the f32 base as any PEFT adapter does
            var again = LanguageModel.FromWeights(open.Weights);
            again.LoadLora(Path.Combine(dir, "nf4"));
            Assert.Equal(lm.Lora!.ElementCount, again.Lora!.ElementCount);
        }
    }

    public static TheoryData<string, FinetuneMethod> ResumeCases() => new()
    {
        { "f32", FinetuneMethod.Lora },
        { "f32", FinetuneMethod.QLora },   // quantized to Q4_0 in memory
        { "nf4", FinetuneMethod.QLora },   // quantized to NF4 in memory
        { "Q4_0", FinetuneMethod.QLora },  // a GGUF Q4_0 viewed in place
    };

    [TestDataTheory("llama2c/stories260K.bin", "llama2c/tok512.bin")]
    [MemberData(nameof(ResumeCases))]
    public void A_run_split_7_plus_5_equals_12_straight(string stored, FinetuneMethod method)
    {
        string basePath = stored is "f32" or "nf4" ? Stories : QLoraTests.WriteGguf(dir, GgmlType.Q4_0);
        void Run(string run, int? stop = null, bool resume = false)
        {
            var (ft, open) = Make(basePath, method, run, stop, resume, stored == "nf4" ? GgmlType.NF4 : GgmlType.Q4_0);
            using (open)
            using (ft) ft.Run();
        }
        Run("straight");
        Run("split", stop: 7);
        Assert.Equal(7, Checkpoint.LoadState(Path.Combine(dir, "split", "checkpoint")).Step);
        Run("split", resume: true);
        Assert.Equal(12, Checkpoint.LoadState(Path.Combine(dir, "split", "checkpoint")).Step);
        foreach (string f in new[] { "adapter_model.safetensors", "optimizer.safetensors", "adapter_config.json" })
            Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "straight", "checkpoint", f)), File.ReadAllBytes(Path.Combine(dir, "split", "checkpoint", f)));
    }

    [TestDataTheory("llama2c/stories260K.bin", "llama2c/tok512.bin")]
    [InlineData(FinetuneMethod.Lora)]
    [InlineData(FinetuneMethod.QLora)]
    public void A_merged_model_folder_gives_the_logits_of_base_plus_adapter_through_the_engine(FinetuneMethod method)
    {
        // QLoRA's adapter is merged into the dequantized GGUF base it was trained beside
        string basePath = method == FinetuneMethod.Lora ? Stories : QLoraTests.WriteGguf(dir, GgmlType.Q8_0);
        var (ft, open) = Make(basePath, method, "run");
        using (open)
        using (ft)
        {
            ft.Run();
            int[] tokens = [.. Enumerable.Range(0, 40).Select(i => (i * 31 + 7) % 512)];
            float[] unmerged = ft.Trainer.Model.Forward(new Graph(recording: false), tokens, 1, tokens.Length).ToArray();

            var lm = LanguageModel.FromWeights(open.Weights);
            lm.LoadLora(Path.Combine(dir, "run"));
            string folder = Path.Combine(dir, "merged");
            Checkpoint.SaveModel(folder, lm.MergeLora(), open.Tokenizer ?? Quill.Tokenization.TokenizerLoader.Load(Tok), new PromptFormat(open.AddBos, null, []));
            Assert.Equal(["config.json", "model.safetensors", "tokenizer.json"], Directory.GetFiles(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal));

            Assert.NotNull(Checkpoint.LoadModel(folder, out var saved)); // quill sample opens it too
            Assert.Equal(open.AddBos, saved.Inference!.AddBos);

            using var merged = ModelLoader.Load(folder);
            Assert.Equal(open.AddBos, merged.AddBos); // the base's BOS rule (llama2.c: BOS first) is the merged folder's
            Assert.True(merged.AddBos); // llama2.c's rule; the GGUF export of the base carries it too (tokenizer.ggml.add_bos_token)
            Assert.NotNull(merged.Tokenizer);
            var engine = new InferenceEngine(merged);
            var logits = new float[tokens.Length * 512];
            engine.Forward(engine.CreateCache(), tokens, logits, allLogits: true);
            // what `quill generate --model BASE --adapter RUN` runs: the same merge in memory, bit for bit
            using (var adapted = open.WithLoraAdapter(Path.Combine(dir, "run")))
            {
                var e2 = new InferenceEngine(adapted);
                var want = new float[logits.Length];
                e2.Forward(e2.CreateCache(), tokens, want, allLogits: true);
                Assert.Equal(want, logits);
            }
            // and the base with the adapter unmerged (the training forward): merging rounds W + s B A once per weight
            // and the engine's kernels sum in another order than the trainer's; both f32 roundings, measured 9e-7 of
            // the logit scale for the f32 and the Q8_0 base
            double scale = unmerged.Max(Math.Abs), worst = 0;
            for (int i = 0; i < logits.Length; i++) worst = Math.Max(worst, Math.Abs(logits[i] - unmerged[i]));
            Assert.True(worst <= 1e-5 * scale, $"{method}: the merged folder's logits differ from base + adapter by {worst:G3} (logit scale {scale:G3})");
        }
    }

    [TestDataFact("llama2c/stories260K.bin", "llama2c/tok512.bin")]
    public void Methods_refuse_a_base_made_for_another_and_a_merged_folder_refuses_to_overwrite()
    {
        using var open = ModelLoader.Load(Stories, Tok);
        var lora = new FinetuneOptions(Data(), Path.Combine(dir, "x")) { Method = FinetuneMethod.QLora };
        var e = Assert.Throws<InvalidConfigException>(() => new Finetuner(new FinetuneBase(LanguageModel.FromWeights(open.Weights), open.Tokenizer!, null, true, []), Config(), lora));
        Assert.Contains("method qlora needs a base", e.Message, StringComparison.Ordinal);
        var q = new FinetuneOptions(Data(), Path.Combine(dir, "y")) { Method = FinetuneMethod.Lora };
        e = Assert.Throws<InvalidConfigException>(() => new Finetuner(new FinetuneBase(LanguageModel.QuantizedBase(open.Weights), open.Tokenizer!, null, true, []), Config(), q));
        Assert.Contains("use method qlora", e.Message, StringComparison.Ordinal);

        string folder = Path.Combine(dir, "full");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "keep.txt"), "x");
        var q2 = Assert.Throws<QuillException>(() => Checkpoint.SaveModel(folder, LanguageModel.FromWeights(open.Weights), null));
        Assert.Contains("not empty", q2.Message, StringComparison.Ordinal);
        Assert.Equal(["keep.txt"], Directory.GetFiles(folder).Select(Path.GetFileName));
    }

    [TestDataFact("llama2c/stories260K.bin", "llama2c/tok512.bin")]
    public void A_full_fine_tune_checkpoint_records_the_prompt_format_it_was_trained_with()
    {
        var open = ModelLoader.Load(Stories, Tok);
        var options = new FinetuneOptions(Data(), Path.Combine(dir, "full")) { Method = FinetuneMethod.Full, ValFraction = 0 };
        var template = Quill.Tokenization.ChatTemplates.ChatTemplate.Get("chatml");
        var cfg = Config();
        cfg.Train.MaxSteps = 1;
        using (var ft = new Finetuner(new FinetuneBase(Finetuner.BaseModel(open.Weights, options), open.Tokenizer!, template, true, [7]), cfg, options))
        {
            open.Dispose();
            ft.Run();
        }
        using var tuned = ModelLoader.Load(Path.Combine(dir, "full"));
        Assert.True(tuned.AddBos);
        Assert.Equal([7], tuned.ExtraStopIds);
        Assert.Equal("chatml", Quill.Tokenization.ChatTemplates.ChatTemplate.FromMetadata(tuned.ChatTemplate, tuned.Spec.Arch)?.Name);
        // without it the checkpoint would chat in the plain transcript it was never trained on
        Assert.Null(Quill.Tokenization.ChatTemplates.ChatTemplate.FromMetadata(null, tuned.Spec.Arch));
    }
}
