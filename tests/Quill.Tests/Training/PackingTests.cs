// Packed SFT rows (train.packing): several examples per row, each attending only within itself with its positions
// restarting at its start. A packed row must train exactly what the same examples train one per padded row: the same
// loss and gradients (RoPE and learned positions), the same logits per example, the same step under accumulation
// (the loss is the mean over the step's unmasked targets); a packed run resumes bit for bit (SftBatchSourceTests).
using Quill.Autograd;
using Quill.Data.Sft;
using Quill.Models;
using Quill.Tensors;
using Quill.Training;

namespace Quill.Tests.Training;

public sealed class PackingTests
{
    private const int T = 16, V = 32;

    private static SftTokens Example(int line, int[] ids, int promptLength) =>
        new(line, ids, [.. ids.Select((_, i) => i >= promptLength)]);

    /// <summary>Examples of 2..T+1 tokens, replies trained after a prompt of 1..3 tokens.</summary>
    private static List<SftTokens> Examples(int count, ulong seed, int maxLength = 9)
    {
        var rng = new Rng(seed);
        var list = new List<SftTokens>();
        for (int i = 0; i < count; i++)
        {
            int n = 2 + (int)rng.NextInt64(maxLength - 1);
            int[] ids = [.. Enumerable.Range(0, n).Select(_ => 1 + (int)rng.NextInt64(V - 1))];
            list.Add(Example(i + 1, ids, Math.Min(n - 1, 1 + (int)rng.NextInt64(3))));
        }
        return list;
    }

    private static ModelConfig Tiny(string arch) => new() { Arch = arch, VocabSize = V, NLayer = 2, NHead = 2, NEmbd = 16, BlockSize = T };

    /// <summary>The documents of packed rows: (row, start, length) of each, in order.</summary>
    private static List<(int Row, int Start, int Length)> Segments(int[] docStarts, int b)
    {
        var list = new List<(int, int, int)>();
        for (int r = 0; r < b; r++)
        {
            for (int i = 0; i < T;)
            {
                int j = i + 1;
                while (j < T && docStarts[r * T + j] == i) j++;
                list.Add((r, i, j - i));
                i = j;
            }
        }
        return list;
    }

    /// <summary>Each document of packed rows alone in a padded row: the same inputs and targets from position 0, pad 0 after.</summary>
    private static (int[] X, int[] Y, int Rows) Unpack(int[] x, int[] y, int[] docStarts, int b)
    {
        var segs = Segments(docStarts, b);
        int[] px = new int[segs.Count * T], py = new int[segs.Count * T];
        Array.Fill(py, -1);
        for (int k = 0; k < segs.Count; k++)
        {
            var (r, s, n) = segs[k];
            Array.Copy(x, r * T + s, px, k * T, n);
            Array.Copy(y, r * T + s, py, k * T, n);
        }
        return (px, py, segs.Count);
    }

    private static (int[] X, int[] Y, int[] Starts) Packed(SftBatchSource source, int b, ulong seed)
    {
        int[] x = new int[b * T], y = new int[b * T], s = new int[b * T];
        source.Fill(new Rng(seed), b, T, x, y, s);
        return (x, y, s);
    }

    private static float[][] Grads(LanguageModel m) => [.. m.Parameters.Select(p => p.Grad!.ToArray())];

    private static double MaxDiff(float[][] a, float[][] b)
    {
        double d = 0;
        for (int i = 0; i < a.Length; i++)
            for (int j = 0; j < a[i].Length; j++) d = Math.Max(d, Math.Abs(a[i][j] - b[i][j]));
        return d;
    }

    [Fact]
    public void Packing_lays_examples_in_the_order_drawn_and_masks_each_boundary()
    {
        // lengths 5, 4, 8 in T = 8 inputs: [5 | 3 of 4, its last token only a target], [8 ...]
        var a = Example(1, [1, 2, 3, 4, 5], 2);
        var b = Example(2, [6, 7, 8, 9], 1);
        var c = Example(3, [10, 11, 12, 13, 14, 15, 16, 17], 1);
        var source = new SftBatchSource([a, b, c], padId: 0, packing: true);
        int[] x = new int[3 * 8], y = new int[3 * 8], s = new int[3 * 8];
        var draws = new Queue<SftTokens>([a, b, c, c, a]);
        int drawn = source.Pack(draws.Dequeue, 3, 8, x, y, s);
        Assert.Equal([1, 2, 3, 4, 5, 6, 7, 8, /**/ 10, 11, 12, 13, 14, 15, 16, 17, /**/ 10, 11, 12, 13, 14, 15, 16, 17], x);
        Assert.Equal([-1, 3, 4, 5, -1, 7, 8, 9, /**/ 11, 12, 13, 14, 15, 16, 17, -1, /**/ 11, 12, 13, 14, 15, 16, 17, -1], y);
        Assert.Equal([0, 0, 0, 0, 0, 5, 5, 5, /**/ 0, 0, 0, 0, 0, 0, 0, 0, /**/ 0, 0, 0, 0, 0, 0, 0, 0], s);
        Assert.Equal(5, drawn); // the fifth draw (a) fits no row: put back

        // one pass in order: padded 3 rows of 8 with 5 + 4 + 8 tokens; packed 2 rows (5 + 3, then 8)
        var padded = source.Layout(8, packing: false);
        var packed = source.Layout(8, packing: true);
        Assert.Equal((3L, 17L), (padded.Rows, padded.Tokens));
        Assert.Equal((2L, 16L), (packed.Rows, packed.Tokens));
        Assert.Equal(1.0, packed.Efficiency);

        // the source's own draws: deterministic per seed, every row's documents well formed
        var many = new SftBatchSource(Examples(30, 9), padId: 0, packing: true);
        var p1 = Packed(many, 3, 7);
        var again = Packed(many, 3, 7);
        Assert.Equal([.. p1.X, .. p1.Y, .. p1.Starts], [.. again.X, .. again.Y, .. again.Starts]);
        Assert.NotEqual(p1.X, Packed(many, 3, 8).X);
        Assert.True(Segments(p1.Starts, 3).Count > 3, "rows of 16 hold several examples of 2..9 tokens");
        Quill.Kernels.AttentionMask.Documents(p1.Starts, 3, T); // throws when a row's starts are malformed
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("gpt2")]
    public void A_packed_row_has_the_loss_and_gradients_of_its_examples_one_per_padded_row(string arch)
    {
        var source = new SftBatchSource(Examples(40, 3), padId: 0, packing: true);
        var (x, y, starts) = Packed(source, 2, 11);
        var (px, py, rows) = Unpack(x, y, starts, 2);
        Assert.True(rows >= 4, $"only {rows} examples in two packed rows");
        var start = LanguageModel.Create(Tiny(arch), seed: 4);

        (float Loss, float[][] Grads) Run(int[] xs, int[] ys, int b, int[]? docs)
        {
            var m = LanguageModel.FromWeights(start.ToWeights());
            m.Parameters.EnableGrads();
            var g = new Graph();
            var loss = m.Loss(g, xs, ys, b, T, 0, docs);
            g.Backward(loss);
            return (loss.Item(), Grads(m));
        }
        var packed = Run(x, y, 2, starts);
        var padded = Run(px, py, rows, null);
        Assert.Equal(padded.Loss, packed.Loss, 1e-5);
        Assert.True(MaxDiff(packed.Grads, padded.Grads) < 1e-5, $"gradients differ by {MaxDiff(packed.Grads, padded.Grads):E2}");

        // without the documents the examples see each other and their positions run on: measurably different
        var leaky = Run(x, y, 2, null);
        Assert.True(Math.Abs(leaky.Loss - padded.Loss) > 1e-4, $"leaky loss {leaky.Loss} vs {padded.Loss}");
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("gpt2")]
    public void An_example_in_a_packed_row_gets_the_logits_it_gets_alone(string arch)
    {
        var source = new SftBatchSource(Examples(40, 5), padId: 0, packing: true);
        var (x, _, starts) = Packed(source, 2, 13);
        var model = LanguageModel.Create(Tiny(arch), seed: 6);
        var g = new Graph(recording: false);
        float[] all = model.Forward(g, x, 2, T, 0, starts).ToArray();
        float[] leaky = model.Forward(g, x, 2, T).ToArray();
        int later = 0;
        foreach (var (r, s, n) in Segments(starts, 2))
        {
            float[] alone = model.Forward(g, x.AsSpan(r * T + s, n).ToArray(), 1, n).ToArray();
            double d = 0, dl = 0;
            for (int i = 0; i < n * V; i++)
            {
                d = Math.Max(d, Math.Abs(alone[i] - all[(r * T + s) * V + i]));
                dl = Math.Max(dl, Math.Abs(alone[i] - leaky[(r * T + s) * V + i]));
            }
            Assert.True(d < 1e-5, $"row {r} example at {s}: logits differ by {d:E2}");
            if (s > 0)
            {
                later++;
                Assert.True(dl > 1e-4, $"row {r} example at {s}: the unmasked forward is the same ({dl:E2})");
            }
        }
        Assert.True(later > 0);
    }

    [Fact]
    public void Accumulated_packed_micro_batches_give_the_step_of_one_padded_batch_of_their_examples()
    {
        const int b = 2, accum = 4;
        var source = new SftBatchSource(Examples(40, 8, maxLength: 12), padId: 0, packing: true);
        var cfg = new RunConfig
        {
            Model = Tiny("llama"),
            Train = new TrainConfig { BatchSize = b, SeqLen = T, TokensPerStep = accum * b * T, MaxSteps = 1, LearningRate = 1e-3f, WarmupSteps = 0, EvalEvery = 0, CheckpointEvery = 0, Packing = true },
        };
        var start = LanguageModel.Create(cfg.Model, seed: 5);
        string dir = Directory.CreateTempSubdirectory("quill-pack-norm").FullName;
        using var trainer = new Trainer(cfg, new TrainOptions(null, dir), LanguageModel.FromWeights(start.ToWeights()), source);
        float reported = float.NaN;
        trainer.Run(new SyncReport(p => reported = p.Loss));
        var accumulated = Grads(trainer.Model);

        // the trainer's micro-batches, replayed, then every example of all of them one per padded row in one batch
        var xs = new List<int>();
        var ys = new List<int>();
        int rows = 0;
        var counts = new List<int>();
        for (int m = 0; m < accum; m++)
        {
            var (x, y, s) = Packed(source, b, Rng.Mix(cfg.Train.Seed, 0, (ulong)m));
            var (px, py, n) = Unpack(x, y, s, b);
            xs.AddRange(px);
            ys.AddRange(py);
            rows += n;
            counts.Add(y.Count(v => v >= 0));
        }
        Assert.True(counts.Distinct().Count() > 1, "micro-batches with equal target counts would not test the weighting");
        var one = LanguageModel.FromWeights(start.ToWeights());
        one.Parameters.EnableGrads();
        var g = new Graph();
        var loss = one.Loss(g, [.. xs], [.. ys], rows, T);
        g.Backward(loss);
        Assert.True(MaxDiff(accumulated, Grads(one)) < 1e-5, $"gradients differ by {MaxDiff(accumulated, Grads(one)):E2}");
        Assert.Equal(loss.Item(), reported, 1e-5);
    }

    [Fact]
    public void Packing_is_refused_where_rows_are_not_packed()
    {
        var cfg = new RunConfig
        {
            Model = Tiny("llama"),
            Train = new TrainConfig { BatchSize = 2, SeqLen = T, MaxSteps = 1, EvalEvery = 0, CheckpointEvery = 0, Packing = true },
        };
        string dir = Directory.CreateTempSubdirectory("quill-pack-refuse").FullName;
        var model = LanguageModel.Create(cfg.Model, seed: 1);
        // train.packing with padded rows (as with pretraining windows or preference pairs): a one-line config error
        var e = Assert.Throws<InvalidConfigException>(() => new Trainer(cfg, new TrainOptions(null, dir), model, new SftBatchSource(Examples(4, 1))));
        Assert.Contains("train.packing", e.Message);
        // a packing source with train.packing off would record a config that does not say how the run trained
        cfg.Train.Packing = false;
        Assert.Throws<ArgumentException>(() => new Trainer(cfg, new TrainOptions(null, dir), model, new SftBatchSource(Examples(4, 1), packing: true)));
    }

    private sealed class SyncReport(Action<TrainProgress> f) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => f(value);
    }
}
