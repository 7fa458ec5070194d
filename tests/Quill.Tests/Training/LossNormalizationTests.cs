// A step's loss is the mean over every unmasked target of all its micro-batches (torchtune PR #1875,
// wave2-facts 1.3): accumulating micro-batches with different numbers of masked targets gives the gradients of one
// batch holding them all, where the old mean of per-micro-batch means does not; and for pretraining (every target
// counted) the trainer is bit for bit the old loop (seed 1 / accum per micro-batch).
using Quill.Autograd;
using Quill.Data;
using Quill.Models;
using Quill.Tensors;
using Quill.Training;

namespace Quill.Tests.Training;

public sealed class LossNormalizationTests
{
    private const int B = 2, T = 8, Accum = 4, V = 32;

    /// <summary>Four fixed micro-batches, handed out in turn (one step; a test double, so stateful is fine).</summary>
    private sealed class FixedSource(int[][] inputs, int[][] targets) : IBatchSource
    {
        private int next;

        public void Fill(Rng rng, int b, int t, int[] x, int[] y)
        {
            inputs[next % inputs.Length].CopyTo(x, 0);
            targets[next % targets.Length].CopyTo(y, 0);
            next++;
        }

        public bool CanSample(int t) => true;
    }

    private static ModelConfig Tiny() => new() { Arch = "llama", VocabSize = V, NLayer = 1, NHead = 2, NEmbd = 16, BlockSize = T };

    /// <summary>Micro-batches whose unmasked targets number 1, 16, 5 and 9.</summary>
    private static (int[][] X, int[][] Y) Batches()
    {
        var rng = new Rng(42);
        int[] kept = [1, 16, 5, 9];
        var xs = new int[Accum][];
        var ys = new int[Accum][];
        for (int m = 0; m < Accum; m++)
        {
            xs[m] = new int[B * T];
            ys[m] = new int[B * T];
            for (int i = 0; i < B * T; i++)
            {
                xs[m][i] = (int)rng.NextInt64(V);
                ys[m][i] = i >= B * T - kept[m] ? (int)rng.NextInt64(V) : -1; // the last kept[m] targets count
            }
        }
        return (xs, ys);
    }

    private static RunConfig Run(int steps) => new()
    {
        Model = Tiny(),
        Train = new TrainConfig { BatchSize = B, SeqLen = T, TokensPerStep = Accum * B * T, MaxSteps = steps, LearningRate = 1e-3f, WarmupSteps = 0, EvalEvery = 0, CheckpointEvery = 0 },
    };

    private static float[][] Grads(LanguageModel m) => [.. m.Parameters.Select(p => p.Grad!.ToArray())];

    private static double RelativeError(float[][] a, float[][] b)
    {
        double diff = 0, norm = 0;
        for (int i = 0; i < a.Length; i++)
        {
            for (int j = 0; j < a[i].Length; j++)
            {
                diff += Math.Pow(a[i][j] - b[i][j], 2);
                norm += Math.Pow(b[i][j], 2);
            }
        }
        return Math.Sqrt(diff / norm);
    }

    [Fact]
    public void Accumulated_micro_batches_with_different_masks_match_one_batch_holding_them_all()
    {
        var (xs, ys) = Batches();
        var start = LanguageModel.Create(Tiny(), seed: 5);
        string dir = Directory.CreateTempSubdirectory("quill-norm").FullName;
        using var trainer = new Trainer(Run(1), new TrainOptions(null, dir), LanguageModel.FromWeights(start.ToWeights()), new FixedSource(xs, ys));
        Assert.Equal(Accum, trainer.MicroBatchesPerStep);
        float reported = float.NaN;
        trainer.Run(new SyncReport(p => reported = p.Loss));
        var accumulated = Grads(trainer.Model); // AdamW reads the gradients and leaves them

        // One batch of 4 B rows holding all micro-batches: CrossEntropyOp's mean is the global mean.
        var one = LanguageModel.FromWeights(start.ToWeights());
        one.Parameters.EnableGrads();
        var g = new Graph();
        var loss = one.Loss(g, [.. xs.SelectMany(x => x)], [.. ys.SelectMany(y => y)], Accum * B, T);
        g.Backward(loss);
        var whole = Grads(one);
        Assert.True(RelativeError(accumulated, whole) < 1e-6, $"relative error {RelativeError(accumulated, whole):E2}");
        Assert.Equal(loss.Item(), reported, 5);

        // The old normalisation (each micro-batch's mean, seeded 1 / accum) is measurably different here.
        var old = LanguageModel.FromWeights(start.ToWeights());
        old.Parameters.EnableGrads();
        for (int m = 0; m < Accum; m++)
        {
            g.Reset();
            g.Backward(old.Loss(g, xs[m], ys[m], B, T), 1f / Accum);
        }
        Assert.True(RelativeError(Grads(old), whole) > 0.05, $"old normalisation only {RelativeError(Grads(old), whole):E2} away");
    }

    [Fact]
    public void Pretraining_steps_are_bit_for_bit_the_per_micro_batch_mean_loop()
    {
        string dir = TrainerTests.PrepareStories(20_000);
        string data = Path.Combine(dir, "data");
        var cfg = TrainerTests.TinyRun(3);
        var losses = new List<float>();
        using var trainer = new Trainer(cfg, new TrainOptions(data, Path.Combine(dir, "run")));
        Assert.Equal(2, trainer.MicroBatchesPerStep);
        trainer.Run(new SyncReport(p => losses.Add(p.Loss)));

        // The loop as it was before token-weighted normalisation.
        var c = trainer.Config;
        var model = LanguageModel.Create(c.Model, c.Train.Seed);
        model.Parameters.FreezeAllBut(c.Train.Trainable);
        model.Parameters.EnableGrads();
        var opt = new AdamWOptimizer(model.Parameters, c.Train);
        using var split = new TokenDataset(data, "train");
        var source = new TokenBatchSource(split, c.Model.VocabSize);
        int b = c.Train.BatchSize, t = c.Model.BlockSize, accum = trainer.MicroBatchesPerStep;
        var x = new int[b * t];
        var y = new int[b * t];
        var graph = new Graph();
        for (int step = 0; step < 3; step++)
        {
            model.Parameters.ZeroGrads();
            double sum = 0;
            for (int micro = 0; micro < accum; micro++)
            {
                source.Fill(new Rng(Rng.Mix(c.Train.Seed, (ulong)step, (ulong)micro)), b, t, x, y);
                graph.Reset();
                var loss = model.Loss(graph, x, y, b, t, Rng.Mix(c.Train.Seed ^ 0xD409_0D0D, (ulong)step, (ulong)micro));
                sum += loss.Item();
                graph.Backward(loss, 1f / accum);
            }
            graph.Reset();
            Assert.Equal((float)(sum / accum), losses[step]);
            float norm = (float)opt.GradNorm();
            opt.Step(LrSchedule.At(c.Train, step, c.Train.MaxSteps), AdamWOptimizer.ClipScale(norm, c.Train.GradClip));
        }
        for (int i = 0; i < model.Parameters.Count; i++)
            Assert.Equal(model.Parameters[i].ToArray(), trainer.Model.Parameters[i].ToArray());
    }

    private sealed class SyncReport(Action<TrainProgress> f) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => f(value);
    }
}
