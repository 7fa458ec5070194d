// Where the trainer's batches come from, and which targets count. A batch source fills inputs and targets [B * T]
// from a generator the trainer seeds with (seed, step, micro-batch), so a resumed run draws the same batches; a
// target below zero is masked out of the loss (prompt tokens in fine-tuning, padding). TokenBatchSource draws
// windows from prepared token shards (pretraining and continued pretraining); SftBatchSource gives padded rows of
// fine-tuning examples; PreferenceBatchSource gives rows of preference pairs (chosen rows, then rejected).
// Glossary: B sequences per micro-batch, T tokens per sequence.
using Quill.Data;
using Quill.Tensors;

namespace Quill.Training;

/// <summary>Supplies training or validation batches.</summary>
public interface IBatchSource
{
    /// <summary>Fills inputs and targets [B * T]; targets &lt; 0 are ignored by the loss.</summary>
    void Fill(Rng rng, int b, int t, int[] inputs, int[] targets);

    /// <summary>True when sequences of t tokens (plus the next-token target) can be drawn.</summary>
    bool CanSample(int t);
}

/// <summary>Random windows of a prepared token split (every target counts).</summary>
public sealed class TokenBatchSource(TokenDataset split, int vocabSize) : IBatchSource
{
    public TokenDataset Split => split;

    public void Fill(Rng rng, int b, int t, int[] inputs, int[] targets) => split.SampleBatch(rng, b, t, inputs, targets, vocabSize);

    public bool CanSample(int t) => split.CanSample(t);
}
