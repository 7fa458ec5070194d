// The trainer's gradient sums start while the backward still runs: a stand-in for two ranks (rank 0 of 2; its sums
// are identities) records when each parameter's gradient sum is started. Needs no MPI.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
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

        public Func<Memory<float>, string> Name { get; set; } = _ => "?";

        public int Rank => 0;

        public int Size => 2;

        public double WaitSeconds => 0;

        public long PayloadBytes => 0;

        public void StartSum(Memory<float> buffer) => Events.Add("start " + Name(buffer));

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
    public void Each_layer_s_gradients_start_summing_when_the_backward_leaves_it_and_the_embedding_last()
    {
        string dir = TrainerTests.PrepareStories(20_000);
        var run = TrainerTests.TinyRun(1);
        run.Model = new ModelConfig { Arch = "llama", VocabSize = 64, NLayer = 2, NHead = 4, NKvHead = 2, NEmbd = 32, BlockSize = 32 };
        var ranks = new RecordingRanks();
        using var trainer = new Trainer(run, new TrainOptions(Path.Combine(dir, "data"), Path.Combine(dir, "run")) { Ranks = ranks });
        var ps = trainer.Model.Parameters.Trainable.ToArray();
        ranks.Name = m => ps.First(p => Unsafe.AreSame(ref MemoryMarshal.GetReference(p.Grad!.Span), ref MemoryMarshal.GetReference(m.Span))).Name;
        trainer.Run();

        var events = ranks.Events;
        int wait = events.IndexOf("wait");
        Assert.Equal(events.Count - 1, wait); // one step: every sum is waited for once, before the update
        var started = events.Where(e => e.StartsWith("start ", StringComparison.Ordinal)).Select(e => e[6..]).ToList();
        Assert.Equal(ps.Select(p => p.Name).Order(StringComparer.Ordinal), started.Order(StringComparer.Ordinal)); // each once

        int At(string name) => events.IndexOf("start " + name);
        int lastProgress = events.LastIndexOf("progress");
        // head and final norm first, then layer 1, then layer 0, each batch followed by a progress call made from
        // inside the backward (there are three marks: after the head, after layer 1, after layer 0)
        Assert.Equal(3, events.Count(e => e == "progress"));
        Assert.True(At("lm_head.weight") < At("model.layers.1.self_attn.q_proj.weight"));
        Assert.True(At("model.layers.1.mlp.down_proj.weight") < At("model.layers.0.self_attn.q_proj.weight"));
        Assert.True(At("model.layers.0.input_layernorm.weight") < lastProgress);
        // the embedding is finished only by the end of the backward
        Assert.True(At("model.embed_tokens.weight") > lastProgress);
    }
}
