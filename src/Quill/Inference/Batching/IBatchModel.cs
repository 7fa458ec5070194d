// The one thing batched generation (BatchScheduler, and so the server) needs from a model: run a prompt into a
// fresh sequence (prefill) and advance several sequences by one token each in one call (batched decode), writing
// next-token logits. The scheduler drives it from a single thread, so implementations need not be thread-safe. A
// backend promises that a sequence's logits do not depend on which other sequences share its decode call (the
// "same seed, same text" guarantee).
// Does not handle: sampling, detokenization, scheduling (see Inference.Sampler, Inference.TextAssembler,
// BatchScheduler).
// Glossary: B sequences in a decode call, V vocabulary (logit width).
namespace Quill.Inference.Batching;

/// <summary>A model's running state for one sequence (its KV cache, or its tokens so far).</summary>
public interface IModelSequence : IDisposable
{
    /// <summary>Positions consumed so far.</summary>
    int Length { get; }
}

/// <summary>A model that prefills one sequence and decodes many together.</summary>
public interface IBatchModel : IDisposable
{
    /// <summary>Width of a logits row.</summary>
    int VocabSize { get; }

    /// <summary>Positions a sequence can hold (prompt plus completion).</summary>
    int ContextLength { get; }

    /// <summary>Short description for logs and /v1/models ("quill-checkpoint gpt2 4x128", ...).</summary>
    string Description { get; }

    /// <summary>A new, empty sequence.</summary>
    IModelSequence NewSequence();

    /// <summary>Runs tokens at the sequence's next positions; logits [V] of the last one.</summary>
    void Prefill(IModelSequence sequence, ReadOnlySpan<int> tokens, Span<float> logits);

    /// <summary>One step for B sequences: tokens [B] (token b goes to sequences[b]); logits [B, V].</summary>
    void Decode(IReadOnlyList<IModelSequence> sequences, ReadOnlySpan<int> tokens, Span<float> logits);
}
