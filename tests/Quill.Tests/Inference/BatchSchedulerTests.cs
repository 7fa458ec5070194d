// Continuous batching without a web server: a BatchScheduler over an EngineBackend runs several jobs together, a
// job's text depends only on its prompt and seed (not on what shares its batch), limits end jobs with "length",
// stop strings end them with "stop" through the same TextAssembler as the Generator, a full queue refuses with
// QueueFullException and a prompt as long as the context with ContextLengthException, and a sequence whose logits
// turn NaN fails alone while the rest of its batch finishes (issue 19: one bad sequence ended every one).
using Quill.Inference;
using Quill.Inference.Batching;
using Quill.Tests.Support;

namespace Quill.Tests.Inference;

public sealed class BatchSchedulerTests
{
    private static GenerationRequest Request(int[] prompt, ulong seed, int maxTokens = 12, string[]? stops = null) => new()
    {
        Prompt = prompt,
        Sampling = new SamplingOptions { Seed = seed, PenaltyWindow = 0 },
        MaxTokens = maxTokens,
        StopStrings = stops ?? [],
    };

    [Fact]
    public async Task Jobs_batched_together_give_the_text_each_gives_alone()
    {
        using var model = TinyModels.Inference();
        var tok = model.Tokenizer!;
        int[] prompt = tok.Encode("Once upon a time");
        using var scheduler = new BatchScheduler(new EngineBackend(model, ownsModel: false), tok, new SchedulerOptions(MaxBatch: 4, MaxQueue: 8));
        var alone = await scheduler.Submit([Request(prompt, 1)])[0].CollectAsync();
        var jobs = scheduler.Submit([Request(prompt, 2), Request(prompt, 1), Request(tok.Encode("Hello"), 3)]);
        var results = await Task.WhenAll(jobs.Select(j => j.CollectAsync()));
        Assert.Equal(FinishReason.Length, alone.Finish);
        Assert.Equal(alone.Text, results[1].Text);
        Assert.All(jobs, j => Assert.Equal(12, j.CompletionTokens));
        Assert.Equal(prompt.Length, jobs[0].PromptTokens);
    }

    [Fact]
    public async Task A_stop_string_ends_a_job_before_it()
    {
        using var model = TinyModels.Inference();
        var tok = model.Tokenizer!;
        int[] prompt = tok.Encode("Once upon a time");
        using var scheduler = new BatchScheduler(new EngineBackend(model, ownsModel: false), tok, new SchedulerOptions(2, 2));
        var free = await scheduler.Submit([Request(prompt, 5, maxTokens: 20)])[0].CollectAsync();
        string stop = free.Text.Substring(4, 2);
        var stopped = await scheduler.Submit([Request(prompt, 5, maxTokens: 20, stops: [stop])])[0].CollectAsync();
        Assert.Equal(FinishReason.Stop, stopped.Finish);
        Assert.Equal(free.Text[..free.Text.IndexOf(stop, StringComparison.Ordinal)], stopped.Text);
    }

    [Fact]
    public void Refusals_are_quill_exceptions_naming_the_fix()
    {
        using var model = TinyModels.Inference(blockSize: 16);
        var tok = model.Tokenizer!;
        using var scheduler = new BatchScheduler(new EngineBackend(model, ownsModel: false), tok, new SchedulerOptions(MaxBatch: 1, MaxQueue: 1));
        var tooLong = Assert.Throws<ContextLengthException>(() => scheduler.Submit([Request(tok.Encode(new string('a', 16)), 1)]));
        Assert.Equal("prompt", tooLong.Field);
        Assert.Contains("shorten", tooLong.Message, StringComparison.Ordinal);
        int[] prompt = tok.Encode("a");
        var full = Assert.Throws<QueueFullException>(() => scheduler.Submit([Request(prompt, 1), Request(prompt, 2), Request(prompt, 3)]));
        Assert.Contains("retry", full.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_sequence_with_nan_logits_fails_alone_and_the_batch_goes_on()
    {
        using var model = TinyModels.Inference();
        var tok = model.Tokenizer!;
        var backend = new PoisonedBackend(new EngineBackend(model, ownsModel: false), tok.Encode("!")[0]);
        using var scheduler = new BatchScheduler(backend, tok, new SchedulerOptions(MaxBatch: 8, MaxQueue: 8));
        int[] prompt = tok.Encode("Once upon a time");
        var alone = await scheduler.Submit([Request(prompt, 1)])[0].CollectAsync();
        var requests = Enumerable.Range(0, 8).Select(i => Request(i == 3 ? tok.Encode("!poison") : prompt, 1)).ToArray();
        requests[5] = requests[5] with { Sampling = requests[5].Sampling with { Temperature = 1e-45f, TopP = 0.9f } };
        var jobs = scheduler.Submit(requests);
        var results = await Task.WhenAll(jobs.Select(async j =>
        {
            try
            {
                return (await j.CollectAsync()).Text;
            }
            catch (NonFiniteLogitsException ex)
            {
                return "failed: " + ex.Message;
            }
        }));
        Assert.StartsWith("failed: the model produced a NaN logit", results[3], StringComparison.Ordinal);
        Assert.True(backend.MaxBatchSeen >= 4, $"largest batch {backend.MaxBatchSeen}: the poisoned sequence never shared a step");
        var greedy = await scheduler.Submit([Request(prompt, 1) with { Sampling = new SamplingOptions { Temperature = 0, PenaltyWindow = 0 } }])[0].CollectAsync();
        for (int i = 0; i < 8; i++)
        {
            if (i == 3) continue;
            Assert.Equal(i == 5 ? greedy.Text : alone.Text, results[i]);
            Assert.Equal(12, jobs[i].CompletionTokens);
        }
    }

    /// <summary>Gives NaN logits at every decode step to sequences whose prompt starts with the marker token.</summary>
    private sealed class PoisonedBackend(IBatchModel inner, int marker) : IBatchModel
    {
        private readonly HashSet<IModelSequence> poisoned = [];

        public int MaxBatchSeen { get; private set; }

        public int VocabSize => inner.VocabSize;

        public int ContextLength => inner.ContextLength;

        public string Description => inner.Description;

        public IModelSequence NewSequence() => inner.NewSequence();

        public void Prefill(IModelSequence sequence, ReadOnlySpan<int> tokens, Span<float> logits)
        {
            if (tokens[0] == marker) poisoned.Add(sequence);
            inner.Prefill(sequence, tokens, logits);
        }

        public void Decode(IReadOnlyList<IModelSequence> sequences, ReadOnlySpan<int> tokens, Span<float> logits)
        {
            MaxBatchSeen = Math.Max(MaxBatchSeen, sequences.Count);
            inner.Decode(sequences, tokens, logits);
            for (int b = 0; b < sequences.Count; b++)
            {
                if (poisoned.Contains(sequences[b])) logits.Slice(b * VocabSize, VocabSize).Fill(float.NaN);
            }
        }

        public void Dispose() => inner.Dispose();
    }
}
