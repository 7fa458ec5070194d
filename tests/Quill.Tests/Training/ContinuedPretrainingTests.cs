// Continued pretraining of open models (quill train --init): a real small model (stories260K, as GGUF F32 and
// GGUF Q8_0) and a HF folder (Qwen2, BF16, sharded) start training where the inference engine stands: the step-0
// validation loss equals the mean cross-entropy the engine computes on the same validation tokens (for Q8_0,
// within the engine's 8-bit activation rounding, as llama.cpp multiplies those weights), 50 steps lower
// it, and the checkpoint keeps the architecture and loads for generation. Freezing all but the norms allocates no
// gradient or optimizer memory for the frozen weights and leaves them bit for bit unchanged.
using Quill.Data;
using Quill.Formats;
using Quill.Inference;
using Quill.Models;
using Quill.Quantization;
using Quill.Tensors;
using Quill.Tests.Cli;
using Quill.Tests.Support;
using Quill.Training;

namespace Quill.Tests.Training;

public sealed class ContinuedPretrainingTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("quill-init-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static string QwenHf => Path.Combine(AppContext.BaseDirectory, "fixtures", "arch", "qwen2", "hf");

    /// <summary>stories260K written as GGUF in type; its tokenizer is tok512.bin.</summary>
    private string StoriesGguf(GgmlType type)
    {
        string path = Path.Combine(dir, $"stories260K-{type}.gguf");
        using var m = ModelLoader.Load(TestData.PathOf("llama2c/stories260K.bin"));
        GgufExport.Write(m, path, TensorTypePlan.Uniform(type));
        return path;
    }

    private string Prepare(string tokenizer)
    {
        string text = Path.Combine(dir, "stories.txt");
        if (!File.Exists(text)) File.WriteAllText(text, StoryCorpus.Generate(60_000, 7));
        string data = Path.Combine(dir, "data-" + Path.GetFileName(tokenizer));
        DatasetPreparer.Prepare(new PrepareOptions([text], tokenizer, data));
        return data;
    }

    private static RunConfig Run(int seqLen) => new()
    {
        Train = new TrainConfig { BatchSize = 4, SeqLen = seqLen, MaxSteps = 50, LearningRate = 2e-3f, WarmupSteps = 5, EvalEvery = 50, EvalBatches = 4, CheckpointEvery = 50 },
    };

    /// <summary>The mean over the trainer's validation batches of each batch's mean cross-entropy, from the inference engine.</summary>
    private static double EngineValLoss(InferenceModel model, Trainer trainer, RunConfig run)
    {
        var engine = new InferenceEngine(model);
        int b = run.Train.BatchSize, t = run.Train.SeqLen, v = model.Spec.VocabSize;
        var inputs = new int[b * t];
        var targets = new int[b * t];
        var logits = new float[t * v];
        var rng = new Rng(Rng.Mix(run.Train.Seed, 0xE7A1)); // the trainer's validation windows
        double sum = 0;
        for (int batch = 0; batch < run.Train.EvalBatches; batch++)
        {
            trainer.Validation!.Fill(rng, b, t, inputs, targets);
            double ce = 0;
            for (int s = 0; s < b; s++)
            {
                engine.Forward(engine.CreateCache(), inputs.AsSpan(s * t, t), logits, allLogits: true);
                for (int p = 0; p < t; p++)
                {
                    var row = logits.AsSpan(p * v, v);
                    double max = double.NegativeInfinity, z = 0;
                    foreach (float x in row) max = Math.Max(max, x);
                    foreach (float x in row) z += Math.Exp(x - max);
                    ce += max + Math.Log(z) - row[targets[s * t + p]];
                }
            }
            sum += ce / (b * t);
        }
        return sum / run.Train.EvalBatches;
    }

    public static TheoryData<string> Forms() => new("gguf-f32", "gguf-q8_0", "hf-qwen2");

    [TestDataTheory("llama2c/stories260K.bin", "llama2c/tok512.bin")]
    [MemberData(nameof(Forms))]
    public void Starts_where_the_engine_stands_and_50_steps_lower_the_loss(string form)
    {
        string model, tokenizer;
        switch (form)
        {
            case "hf-qwen2":
                model = tokenizer = QwenHf;
                break;
            default:
                model = StoriesGguf(form == "gguf-f32" ? GgmlType.F32 : GgmlType.Q8_0);
                tokenizer = TestData.PathOf("llama2c/tok512.bin");
                break;
        }
        string data = Prepare(tokenizer), run = Path.Combine(dir, "run-" + form);
        var cfg = Run(seqLen: 48);
        using var loaded = ModelLoader.Load(model);
        Assert.Equal(form == "gguf-q8_0", loaded.Layers[0].Wq!.Type == GgmlType.Q8_0);
        var lm = LanguageModel.FromWeights(loaded.Weights);
        using var trainer = new Trainer(cfg, new TrainOptions(data, run), lm);
        double engine = EngineValLoss(loaded, trainer, cfg);
        var result = trainer.Run();
        Assert.NotNull(trainer.InitialValLoss);
        // the trainer widens Q8_0 weights to f32 and keeps f32 activations; the engine multiplies Q8_0 weights as
        // llama.cpp does, with the activations quantized to 8 bits (measured 1.0e-3 apart here), so Q8_0 gets 3e-3
        double tol = form == "gguf-q8_0" ? 3e-3 : 1e-4;
        Assert.True(Math.Abs(trainer.InitialValLoss!.Value - engine) <= tol * engine, $"{form}: step-0 val loss {trainer.InitialValLoss} vs the engine's {engine}");
        Assert.True(result.ValLoss < trainer.InitialValLoss - 0.05f, $"{form}: val loss {trainer.InitialValLoss} -> {result.ValLoss} after 50 steps");

        // the checkpoint keeps the architecture and runs in the engine as the trained model computes
        var saved = ModelConfig.ReadCheckpointConfig(Path.Combine(run, CheckpointFiles.FolderName, CheckpointFiles.ConfigFile));
        Assert.Equal(form == "hf-qwen2" ? "qwen2" : "llama", saved.Arch);
        Assert.Equal(loaded.Spec with { Arch = saved.Arch, RopeFreqFactors = null }, saved.ToSpec() with { RopeFreqFactors = null });
        using var back = ModelLoader.Load(run);
        Assert.NotNull(back.Tokenizer);
        int[] prompt = back.Tokenizer!.Encode("Once upon a time");
        var logits = new float[prompt.Length * back.Spec.VocabSize];
        var e = new InferenceEngine(back);
        e.Forward(e.CreateCache(), prompt, logits, allLogits: true);
        var train = lm.Forward(new Quill.Autograd.Graph(recording: false), prompt, 1, prompt.Length).ToArray();
        for (int i = 0; i < logits.Length; i++) Assert.True(Math.Abs(logits[i] - train[i]) <= 1e-4 * (1 + Math.Abs(train[i])), $"{form}: logit {i}");
    }

    [TestDataFact("llama2c/stories260K.bin", "llama2c/tok512.bin")]
    public void Cli_continues_a_gguf_and_the_result_generates_and_a_vocabulary_mismatch_is_one_line()
    {
        string gguf = StoriesGguf(GgmlType.Q8_0), tok = TestData.PathOf("llama2c/tok512.bin");
        string data = Prepare(tok), run = Path.Combine(dir, "cli-run");
        var r = CliProcess.Run("train", "--init", gguf, "--data", data, "--out", run, "--max-steps", "20");
        Assert.True(r.Exit == 0, r.Err);
        Assert.Contains("step 0 | val ", r.Err);
        Assert.Contains("weights Q8_0", r.Err);
        var g = CliProcess.Run("generate", "--model", run, "--prompt", "Once upon a time", "--max-tokens", "24", "--seed", "2");
        Assert.True(g.Exit == 0, g.Err);
        // the continuation (stories260K after 20 more steps still writes words: "..., there was a little girl named Lily")
        string[] words = g.Out.Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries);
        Assert.True(words.Length >= 5, g.Out);

        string charData = Prepare("char");
        var bad = CliProcess.Run("train", "--init", gguf, "--tokenizer", tok, "--data", charData, "--out", Path.Combine(dir, "bad"));
        Assert.Equal(1, bad.Exit);
        string line = Assert.Single(bad.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("prepare the data with the model's tokenizer", line);
    }

    [Fact]
    public void Training_only_the_norms_allocates_nothing_for_frozen_weights_and_leaves_them_unchanged()
    {
        string data = Prepare(QwenHf);
        using var loaded = ModelLoader.Load(QwenHf);
        var lm = LanguageModel.FromWeights(loaded.Weights);
        var before = lm.Parameters.ToDictionary(p => p.Name, p => p.ToArray());
        var cfg = Run(seqLen: 32);
        cfg.Train.Trainable = ["*norm*"];
        cfg.Train.MaxSteps = 10;
        using var trainer = new Trainer(cfg, new TrainOptions(data, Path.Combine(dir, "norms")), lm);
        long normValues = lm.Parameters.Where(p => p.Name.Contains("norm", StringComparison.Ordinal)).Sum(p => (long)p.Length);
        Assert.True(normValues > 0 && normValues < lm.Parameters.ElementCount / 10);
        Assert.Equal(12 * normValues, trainer.TrainingStateBytes); // 4 bytes of gradient + 8 of moments per trainable value
        Assert.All(lm.Parameters.Where(p => !p.Name.Contains("norm", StringComparison.Ordinal)), p => Assert.Null(p.Grad));
        Assert.Equal(lm.Parameters.Count(p => p.Name.Contains("norm", StringComparison.Ordinal)), trainer.Optimizer.Parameters.Count);
        trainer.Run();
        foreach (var p in lm.Parameters)
        {
            bool same = before[p.Name].AsSpan().SequenceEqual(p.ToArray());
            Assert.True(p.Name.Contains("norm", StringComparison.Ordinal) ? !same : same, $"{p.Name} {(same ? "unchanged" : "changed")}");
            Assert.True(p.Name.Contains("norm", StringComparison.Ordinal) || p.Grad == null, $"{p.Name} got a gradient buffer");
        }
        // the optimizer state in the checkpoint holds the trainable parameters only
        using var opt = Quill.Formats.SafeTensors.SafeTensorsFile.Open(Path.Combine(dir, "norms", "checkpoint", "optimizer.safetensors"));
        Assert.All(opt.Names, n => Assert.Contains("norm", n));
    }

    [Fact]
    public void A_pattern_that_matches_nothing_is_refused_in_one_line()
    {
        string data = Prepare(QwenHf);
        using var loaded = ModelLoader.Load(QwenHf);
        var cfg = Run(seqLen: 32);
        cfg.Train.Trainable = ["*lora*"];
        var e = Assert.Throws<InvalidConfigException>(() => new Trainer(cfg, new TrainOptions(data, Path.Combine(dir, "none")), LanguageModel.FromWeights(loaded.Weights)));
        Assert.Contains("matches no parameter name", e.Message);
    }
}
