// The IBatchModel over Quill's inference engine: one KvCache per sequence (taken from a pool, so a busy server
// does not allocate a cache per request), prompts prefilled as one batch, and decode steps run through
// InferenceEngine.DecodeBatch so every weight is read once for a group of sequences. Groups hold at most
// WeightMatrix.SmallM sequences: up to that size the engine uses its matrix-vector kernels, whose result for each
// sequence is bit-for-bit the one it computes alone, which keeps "same seed, same text" true under any batching.
// Does not handle: paged or shared-prefix caches; caches are sized for the full context.
// Glossary: B sequences in a call, V vocabulary.
using Quill.Tensors;

namespace Quill.Inference.Batching;

/// <summary>Runs an <see cref="InferenceModel"/> with KV caches and batched decode.</summary>
public sealed class EngineBackend : IBatchModel
{
    private readonly InferenceModel model;
    private readonly InferenceEngine engine;
    private readonly Stack<KvCache> pool = new();
    private readonly bool ownsModel;

    /// <param name="model">The model to run.</param>
    /// <param name="contextLength">Positions per sequence (0: the model's context, capped at 4096).</param>
    /// <param name="ownsModel">Dispose the model with the backend.</param>
    public EngineBackend(InferenceModel model, int contextLength = 0, bool ownsModel = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        this.model = model;
        this.ownsModel = ownsModel;
        engine = new InferenceEngine(model, contextLength);
    }

    /// <summary>Sequences advanced by one DecodeBatch call at most (larger batches run in groups of this size).</summary>
    public static int GroupSize => WeightMatrix.SmallM;

    public InferenceModel Model => model;

    public int VocabSize => model.Spec.VocabSize;

    public int ContextLength => engine.ContextLength;

    public string Description => $"{model.Spec.Arch} {model.Spec.Layers}x{model.Spec.Dim}, context {engine.ContextLength}";

    public IModelSequence NewSequence()
    {
        KvCache cache;
        lock (pool) cache = pool.Count > 0 ? pool.Pop() : engine.CreateCache();
        cache.Reset();
        return new Sequence(this, cache);
    }

    public void Prefill(IModelSequence sequence, ReadOnlySpan<int> tokens, Span<float> logits)
    {
        var s = (Sequence)sequence;
        engine.Forward(s.Cache, tokens, logits);
    }

    public void Decode(IReadOnlyList<IModelSequence> sequences, ReadOnlySpan<int> tokens, Span<float> logits)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        int v = VocabSize;
        for (int start = 0; start < sequences.Count; start += GroupSize)
        {
            int n = Math.Min(GroupSize, sequences.Count - start);
            var caches = new KvCache[n];
            for (int i = 0; i < n; i++) caches[i] = ((Sequence)sequences[start + i]).Cache;
            engine.DecodeBatch(caches, tokens.Slice(start, n), logits.Slice(start * v, n * v));
        }
    }

    public void Dispose()
    {
        lock (pool) pool.Clear();
        if (ownsModel) model.Dispose();
    }

    private sealed class Sequence(EngineBackend owner, KvCache cache) : IModelSequence
    {
        private bool returned;

        public KvCache Cache { get; } = cache;

        public int Length => Cache.Length;

        public void Dispose()
        {
            if (returned) return;
            returned = true;
            lock (owner.pool) owner.pool.Push(Cache);
        }
    }
}
