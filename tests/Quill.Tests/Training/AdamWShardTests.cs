// ZeRO-1's optimizer shards without MPI: three shards of the flat trainable vector (the last one padded), each
// stepping its slice from its slice of the gradient, make the whole optimizer's update bit for bit (weight-decayed
// matrices and undecayed norms cut mid-tensor), and their moments gathered side by side are the checkpoint the whole
// optimizer writes, which a shard reads back as its slice.
using Quill.Formats.SafeTensors;
using Quill.Models;
using Quill.Training;

namespace Quill.Tests.Training;

public sealed class AdamWShardTests
{
    [Fact]
    public void Three_shards_step_and_save_exactly_as_the_whole_optimizer()
    {
        var run = TrainerTests.TinyRun(1);
        run.Train.WeightDecay = 0.1f;
        var whole = LanguageModel.Create(run.Model, 7);
        whole.Parameters.EnableGrads();
        var sharded = LanguageModel.Create(run.Model, 7);
        sharded.Parameters.EnableGrads();
        var full = new AdamWOptimizer(whole.Parameters, run.Train);
        long n = full.FlatLength;
        const int ranks = 3;
        int shard = (int)((n + ranks - 1) / ranks);
        Assert.NotEqual(0, n % ranks); // the last shard is padded
        var shards = Enumerable.Range(0, ranks).Select(r => new AdamWOptimizer(sharded.Parameters, run.Train, (long)r * shard, shard)).ToArray();
        Assert.All(shards, s => Assert.Equal(8L * shard, s.StateBytes));
        Assert.Equal(8L * n, full.StateBytes);

        var rng = new Random(3);
        var flatGrad = new float[shard * ranks];
        for (int step = 0; step < 3; step++)
        {
            int at = 0;
            foreach (var p in whole.Parameters.Trainable)
            {
                var g = p.Grad!.Span;
                for (int i = 0; i < g.Length; i++) g[i] = (float)(rng.NextDouble() - 0.5);
                g.CopyTo(flatGrad.AsSpan(at));
                at += g.Length;
            }
            full.Step(1e-2f, 0.7f);
            for (int r = 0; r < ranks; r++) shards[r].StepShard(1e-2f, 0.7f, flatGrad.AsSpan(r * shard, shard));
        }
        foreach (var (a, b) in whole.Parameters.Zip(sharded.Parameters)) Assert.Equal(a.Span.ToArray(), b.Span.ToArray());

        // gathered moments -> the whole optimizer's file, read back by another shard layout
        float[] allM = new float[shard * ranks], allV = new float[shard * ranks];
        for (int r = 0; r < ranks; r++)
        {
            shards[r].ShardMoments.M.Span.CopyTo(allM.AsSpan(r * shard));
            shards[r].ShardMoments.V.Span.CopyTo(allV.AsSpan(r * shard));
        }
        shards[0].SetGatheredState(allM, allV);
        string dir = Directory.CreateTempSubdirectory("quill-shard").FullName;
        string fromWhole = Path.Combine(dir, "whole.safetensors"), fromShards = Path.Combine(dir, "shards.safetensors");
        SafeTensorsWriter.Write(fromWhole, full.StateTensors());
        SafeTensorsWriter.Write(fromShards, shards[0].StateTensors());
        Assert.Equal(File.ReadAllBytes(fromWhole), File.ReadAllBytes(fromShards));
        int half = (int)((n + 1) / 2);
        var second = new AdamWOptimizer(sharded.Parameters, run.Train, half, half);
        second.LoadState(fromWhole);
        Assert.Equal(allM.AsSpan(half, (int)(n - half)).ToArray(), second.ShardMoments.M.Span[..(int)(n - half)].ToArray());
        Assert.Equal(allV.AsSpan(half, (int)(n - half)).ToArray(), second.ShardMoments.V.Span[..(int)(n - half)].ToArray());
    }
}
