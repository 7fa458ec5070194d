// Wraps a backend and sleeps before every prefill and decode step, so tests can hold sequences in flight long
// enough to observe queueing, batching and cancellation without depending on how fast the machine is.
using Quill.Inference;
using Quill.Inference.Batching;

namespace Quill.Server.Tests.Support;

internal sealed class SlowBackend(IBatchModel inner, int delayMs) : IBatchModel
{
    /// <summary>Milliseconds slept per call; may be changed while running.</summary>
    public int DelayMs { get; set; } = delayMs;

    /// <summary>Largest batch seen by Decode.</summary>
    public int MaxBatchSeen { get; private set; }

    public int VocabSize => inner.VocabSize;

    public int ContextLength => inner.ContextLength;

    public string Description => inner.Description + " (slowed)";

    public IModelSequence NewSequence() => inner.NewSequence();

    public void Prefill(IModelSequence sequence, ReadOnlySpan<int> tokens, Span<float> logits)
    {
        if (DelayMs > 0) Thread.Sleep(DelayMs);
        inner.Prefill(sequence, tokens, logits);
    }

    public void Decode(IReadOnlyList<IModelSequence> sequences, ReadOnlySpan<int> tokens, Span<float> logits)
    {
        MaxBatchSeen = Math.Max(MaxBatchSeen, sequences.Count);
        if (DelayMs > 0) Thread.Sleep(DelayMs);
        inner.Decode(sequences, tokens, logits);
    }

    public void Dispose() => inner.Dispose();

    public static (ServedModel Model, SlowBackend Backend) Served(string name, int delayMs, int maxBatch, int maxQueue)
    {
        var model = TinyModels.Inference();
        var slow = new SlowBackend(new EngineBackend(model), delayMs);
        var chat = new ChatLayout(model.Tokenizer!, null, null, addBos: false);
        return (new ServedModel(name, slow, model.Tokenizer!, chat, new SchedulerOptions(maxBatch, maxQueue)), slow);
    }
}
