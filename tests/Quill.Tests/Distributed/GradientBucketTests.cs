// The trainer's gradient sums start while the backward still runs: a stand-in for two ranks (rank 0 of 2; its sums
// are identities) records when each bucket's sum is started. Needs no MPI.
using Quill.Models;
using Quill.Tests.Training;
using Quill.Training;

namespace Quill.Tests.Distributed;

public sealed class GradientBucketTests
{
    /// <summary>Rank 0 of 2 that sums with nobody: records StartSum / Progress / WaitAll in order.</summary>
    private sealed class RecordingRanks : ICollectives
    {
        public List<string> Events { get; } = [];

        public int Rank => 0;

        public int Size => 2;

        public double WaitSeconds => 0;

        public long PayloadBytes => 0;

        public void StartSum(Memory<float> buffer) => Events.Add($"start {buffer.Length}");

        public void Progress() => Events.Add("progress");

        public void WaitAll() => Events.Add("wait");

        public void Sum(Span<double> values)
        {
        }

        public void ReduceScatterSum(ReadOnlySpan<float> send, Span<float> receive) => throw new NotSupportedException();

        public void AllGather(ReadOnlySpan<float> send, Span<float> receive) => throw new NotSupportedException();

        public void Gather(ReadOnlySpan<float> send, Span<float> receive) => throw new NotSupportedException();
    }

    [Fact]
    public void Each_layer_s_gradients_start_summing_as_one_bucket_when_the_backward_leaves_it_and_the_embedding_last()
    {
        string dir = TrainerTests.PrepareStories(20_000);
        var run = TrainerTests.TinyRun(1);
        run.Model = new ModelConfig { Arch = "llama", VocabSize = 64, NLayer = 2, NHead = 4, NKvHead = 2, NEmbd = 32, BlockSize = 32 };
        var ranks = new RecordingRanks();
        using var trainer = new Trainer(run, new TrainOptions(Path.Combine(dir, "data"), Path.Combine(dir, "run")) { Ranks = ranks });
        var ps = trainer.Model.Parameters.Trainable.ToArray();
        long Size(Func<string, bool> which) => ps.Where(p => which(p.Name)).Sum(p => (long)p.Length);
        long head = Size(n => n is "lm_head.weight" or "model.norm.weight");
        long layer1 = Size(n => n.StartsWith("model.layers.1.", StringComparison.Ordinal));
        long layer0 = Size(n => n.StartsWith("model.layers.0.", StringComparison.Ordinal));
        long embed = Size(n => n == "model.embed_tokens.weight");
        Assert.Equal(ps.Sum(p => (long)p.Length), head + layer1 + layer0 + embed);
        trainer.Run();

        // One step: the head's bucket starts at the first mark (after the head's backward), each layer's at its own
        // mark, each followed by a test of the pending sums from inside the backward; the embedding's when the
        // backward has ended; one wait before the update.
        Assert.Equal(
            [$"start {head}", "progress", $"start {layer1}", "progress", $"start {layer0}", "progress", $"start {embed}", "wait"],
            ranks.Events);
    }
}
