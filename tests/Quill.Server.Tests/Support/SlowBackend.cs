// Wraps a backend and sleeps before every prefill and decode step, so tests can hold sequences in flight long
// enough to observe queueing, batching and cancellation without depending on how fast the machine is. It can also
// poison sequences: one whose prompt holds PoisonToken gets NaN logits at every decode step (as a corrupt model
// gives), so a test can watch that sequence fail while the rest of its batch goes on.
using Quill.Inference;
using Quill.Inference.Batching;

namespace Quill.Server.Tests.Support;

internal sealed class SlowBackend(IBatchModel inner, int delayMs) : IBatchModel
{
    /// <summary>Milliseconds slept per call; may be changed while running.</summary>
    public int DelayMs { get; set; } = delayMs;

    private readonly HashSet<IModelSequence> poisoned = [];

    /// <summary>A token id that poisons the sequences whose prompt holds it (-1: none).</summary>
    public int PoisonToken { get; set; } = -1;

    /// <summary>Largest batch seen by Decode.</summary>
    public int MaxBatchSeen { get; private set; }

    public int VocabSize => inner.VocabSize;

    public int ContextLength => inner.ContextLength;

    public string Description => inner.Description + " (slowed)";

    public IModelSequence NewSequence() => inner.NewSequence();

    public void Prefill(IModelSequence sequence, ReadOnlySpan<int> tokens, Span<float> logits)
    {
        if (DelayMs > 0) Thread.Sleep(DelayMs);
        if (PoisonToken >= 0 && tokens.Contains(PoisonToken)) poisoned.Add(sequence);
        inner.Prefill(sequence, tokens, logits);
    }

    public void Decode(IReadOnlyList<IModelSequence> sequences, ReadOnlySpan<int> tokens, Span<float> logits)
    {
        MaxBatchSeen = Math.Max(MaxBatchSeen, sequences.Count);
        if (DelayMs > 0) Thread.Sleep(DelayMs);
        inner.Decode(sequences, tokens, logits);
        for (int b = 0; b < sequences.Count; b++)
        {
            if (poisoned.Contains(sequences[b])) logits.Slice(b * VocabSize, VocabSize).Fill(float.NaN);
        }
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
