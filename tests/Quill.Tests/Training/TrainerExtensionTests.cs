// The trainer beyond pretraining from scratch: parameter groups with their own learning rate and weight decay, a
// pluggable batch source whose negative targets are masked out of the loss, and bit-exact resume of a run that
// started from a given model with frozen parameters.
using Quill.Autograd;
using Quill.Models;
using Quill.Tensors;
using Quill.Training;

namespace Quill.Tests.Training;

public sealed class TrainerExtensionTests
{
    [Fact]
    public void Parameter_groups_set_learning_rate_and_weight_decay_per_parameter()
    {
        string dir = TrainerTests.PrepareStories(20_000);
        var cfg = TrainerTests.TinyRun(5);
        cfg.Train.ParamGroups = [new ParamGroupConfig { Match = "*wte*", LrScale = 0f }, new ParamGroupConfig { Match = "*ln_*", WeightDecay = 0.5f, LrScale = 2f }];
        using var trainer = new Trainer(cfg, new TrainOptions(Path.Combine(dir, "data"), Path.Combine(dir, "run")));
        var ps = trainer.Optimizer.Parameters;
        int wte = ps.ToList().FindIndex(p => p.Name == "transformer.wte.weight");
        int ln = ps.ToList().FindIndex(p => p.Name == "transformer.h.0.ln_1.weight");
        int fc = ps.ToList().FindIndex(p => p.Name == "transformer.h.0.mlp.c_fc.weight");
        Assert.Equal((0f, 2f, 1f), (trainer.Optimizer.LrScaleOf(wte), trainer.Optimizer.LrScaleOf(ln), trainer.Optimizer.LrScaleOf(fc)));
        Assert.Equal((0f, 0.5f, 0.1f), (trainer.Optimizer.WeightDecayOf(wte), trainer.Optimizer.WeightDecayOf(ln), trainer.Optimizer.WeightDecayOf(fc)));
        float[] embedding = ps[wte].ToArray(), fcBefore = ps[fc].ToArray();
        trainer.Run();
        Assert.Equal(embedding, ps[wte].ToArray()); // lr_scale 0: untouched, though it has a gradient
        Assert.NotEqual(fcBefore, ps[fc].ToArray());
    }

    /// <summary>Token windows whose first half of targets is masked (as a prompt would be in fine-tuning).</summary>
    private sealed class MaskedSource(IBatchSource inner) : IBatchSource
    {
        public void Fill(Rng rng, int b, int t, int[] inputs, int[] targets)
        {
            inner.Fill(rng, b, t, inputs, targets);
            for (int s = 0; s < b; s++)
            {
                for (int p = 0; p < t / 2; p++) targets[s * t + p] = -1;
            }
        }

        public bool CanSample(int t) => inner.CanSample(t);
    }

    [Fact]
    public void A_batch_source_plugs_in_and_its_masked_targets_do_not_count()
    {
        string dir = TrainerTests.PrepareStories(20_000);
        var cfg = TrainerTests.TinyRun(3);
        using var plain = new Trainer(cfg, new TrainOptions(Path.Combine(dir, "data"), Path.Combine(dir, "plain")));
        var masked = new MaskedSource(plain.Validation!);
        using var trainer = new Trainer(cfg, new TrainOptions(Path.Combine(dir, "data"), Path.Combine(dir, "masked")), trainSource: masked, valSource: masked);
        int b = cfg.Train.BatchSize, t = cfg.Model.BlockSize;

        // Evaluate = the mean over batches of the cross-entropy of the unmasked positions only
        var rng = new Rng(Rng.Mix(cfg.Train.Seed, 0xE7A1));
        var inputs = new int[b * t];
        var targets = new int[b * t];
        double expected = 0;
        for (int i = 0; i < cfg.Train.EvalBatches; i++)
        {
            masked.Fill(rng, b, t, inputs, targets);
            var logits = trainer.Model.Forward(new Graph(recording: false), inputs, b, t).ToArray();
            int v = cfg.Model.VocabSize, counted = 0;
            double ce = 0;
            for (int r = 0; r < b * t; r++)
            {
                if (targets[r] < 0) continue;
                var row = logits.AsSpan(r * v, v);
                double max = double.NegativeInfinity, z = 0;
                foreach (float x in row) max = Math.Max(max, x);
                foreach (float x in row) z += Math.Exp(x - max);
                ce += max + Math.Log(z) - row[targets[r]];
                counted++;
            }
            Assert.Equal(b * t / 2, counted);
            expected += ce / counted;
        }
        expected /= cfg.Train.EvalBatches;
        Assert.Equal(expected, trainer.Evaluate(masked), 4);
        Assert.NotEqual(trainer.Evaluate(masked), trainer.Evaluate(plain.Validation!), 3);
        Assert.Equal(3, trainer.Run().Steps);
    }

    [Fact]
    public void A_run_from_a_given_model_with_frozen_weights_resumes_bit_for_bit()
    {
        string dir = TrainerTests.PrepareStories(30_000);
        string data = Path.Combine(dir, "data");
        var start = LanguageModel.Create(new ModelConfig { Arch = "qwen2", VocabSize = 64, NLayer = 2, NHead = 4, NKvHead = 2, NEmbd = 32, HeadDimOverride = 16, BlockSize = 32 }, seed: 9);
        LanguageModel Copy() => LanguageModel.FromWeights(start.ToWeights());
        var cfg = TrainerTests.TinyRun(12);
        cfg.Train.Trainable = ["*norm*", "*q_proj*"];
        using (var full = new Trainer(cfg, new TrainOptions(data, Path.Combine(dir, "full")), Copy())) full.Run();
        using (var first = new Trainer(cfg, new TrainOptions(data, Path.Combine(dir, "split"), StopAfterSteps: 7), Copy())) first.Run();
        using (var second = new Trainer(cfg, new TrainOptions(data, Path.Combine(dir, "split"), Resume: true), Copy())) second.Run();
        foreach (string f in new[] { "model.safetensors", "optimizer.safetensors" })
            Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "full", "checkpoint", f)), File.ReadAllBytes(Path.Combine(dir, "split", "checkpoint", f)));
        var saved = Checkpoint.LoadModel(Path.Combine(dir, "full"), out var savedCfg);
        Assert.Equal("qwen2", savedCfg.Model.Arch);
        Assert.Equal(16, saved.Spec.HeadDim);
        Assert.True(saved.Spec.QkvBias);
    }
}
