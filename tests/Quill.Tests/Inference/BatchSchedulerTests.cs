// Continuous batching without a web server: a BatchScheduler over an EngineBackend runs several jobs together, a
// job's text depends only on its prompt and seed (not on what shares its batch), limits end jobs with "length",
// stop strings end them with "stop" through the same TextAssembler as the Generator, a full queue refuses with
// QueueFullException and a prompt as long as the context with ContextLengthException.
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
}
