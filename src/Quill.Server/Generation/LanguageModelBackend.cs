// An IBatchModel over a training-side LanguageModel (a Quill checkpoint): every step recomputes the sequence's whole
// window with Forward and keeps the last position's logits. No KV cache, so a step costs O(T); each sequence runs
// on its own, which makes batched results equal to solo results by construction. The KV-cache engine
// (EngineBackend) replaces it where available; this one stays for models the engine does not load.
// Does not handle: sequences longer than block_size (the context length is block_size).
// Glossary: T tokens in the sequence, V vocabulary.
using Quill.Autograd;
using Quill.Models;

namespace Quill.Server.Generation;

/// <summary>Runs a <see cref="LanguageModel"/> by full recomputation per token.</summary>
public sealed class LanguageModelBackend : IBatchModel
{
    private readonly LanguageModel model;
    private readonly Graph graph = new(recording: false);

    public LanguageModelBackend(LanguageModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        this.model = model;
    }

    public int VocabSize => model.Config.VocabSize;

    public int ContextLength => model.Config.BlockSize;

    public string Description => $"{model.Config.Arch} {model.Config.NLayer}x{model.Config.NEmbd} (recompute)";

    public IModelSequence NewSequence() => new Sequence();

    public void Prefill(IModelSequence sequence, ReadOnlySpan<int> tokens, Span<float> logits)
    {
        var s = (Sequence)sequence;
        if (s.Length + tokens.Length > ContextLength)
            throw new QuillException($"{s.Length + tokens.Length} tokens do not fit the context of {ContextLength}; shorten the prompt.");
        s.Tokens.AddRange(tokens.ToArray());
        Run(s, logits);
    }

    public void Decode(IReadOnlyList<IModelSequence> sequences, ReadOnlySpan<int> tokens, Span<float> logits)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        int v = VocabSize;
        for (int b = 0; b < sequences.Count; b++)
        {
            var s = (Sequence)sequences[b];
            if (s.Length >= ContextLength) throw new QuillException($"sequence {b} has filled its context of {ContextLength} tokens.");
            s.Tokens.Add(tokens[b]);
            Run(s, logits.Slice(b * v, v));
        }
    }

    /// <summary>logits [V] of the last position of the sequence's tokens [T].</summary>
    private void Run(Sequence s, Span<float> logits)
    {
        int t = s.Tokens.Count, v = VocabSize;
        graph.Reset();
        var all = model.Forward(graph, s.Tokens.ToArray(), 1, t); // [1, T, V]
        all.Span.Slice((t - 1) * v, v).CopyTo(logits);
    }

    public void Dispose()
    {
    }

    private sealed class Sequence : IModelSequence
    {
        public List<int> Tokens { get; } = [];

        public int Length => Tokens.Count;

        public void Dispose()
        {
        }
    }
}
