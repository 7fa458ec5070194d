// Training rows from rendered SFT examples, padding layout: each row holds one example from its first token,
// inputs = ids[0..L-2] and targets = ids[1..L-1] where trained (else -1), then pad inputs with target -1 to T.
// Attention is causal, so padding after an example changes nothing the example's tokens see, and pad targets never
// count: a padded row trains exactly what the example alone would. Examples are drawn uniformly with replacement by
// the generator the trainer seeds per (seed, step, micro-batch), so a step's rows depend only on its number and a
// resumed run draws the same rows (an "epoch" is N draws on average, not a permutation).
// Does not handle: packing several examples into a row. Quill's attention kernels (Kernels/Attention*.cs,
// Autograd/Ops/AttentionOp.cs) take only the causal mask and positions are the row index, so packed examples would
// attend to one another and see shifted RoPE positions; packing needs a block-diagonal (per-document) mask and
// per-document positions in the kernel, the op and the model's forward. Until then rows are padded (TODO).
// Glossary: B rows per micro-batch, T tokens per row, L tokens of an example (at most T + 1).
using Quill.Data.Sft;
using Quill.Tensors;

namespace Quill.Training;

/// <summary>One rendered SFT example per row, padded; masked and pad targets are -1.</summary>
public sealed class SftBatchSource : IBatchSource
{
    private readonly IReadOnlyList<SftTokens> examples;
    private readonly int padId;
    private readonly int longest;

    /// <param name="examples">Rendered examples (truncated to the context already).</param>
    /// <param name="padId">The input id written after an example (any valid id: its target is masked).</param>
    public SftBatchSource(IReadOnlyList<SftTokens> examples, int padId = 0)
    {
        ArgumentNullException.ThrowIfNull(examples);
        ArgumentOutOfRangeException.ThrowIfNegative(padId);
        this.examples = examples;
        this.padId = padId;
        longest = examples.Count == 0 ? 0 : examples.Max(e => e.Ids.Length);
    }

    /// <summary>The examples rows are drawn from.</summary>
    public int Count => examples.Count;

    /// <summary>True when there are examples and each fits a row of t inputs (at most t + 1 tokens).</summary>
    public bool CanSample(int t) => examples.Count > 0 && longest <= t + 1;

    public void Fill(Rng rng, int b, int t, int[] inputs, int[] targets)
    {
        ArgumentNullException.ThrowIfNull(rng);
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(targets);
        if (!CanSample(t)) throw new ArgumentException($"an example of {longest} tokens does not fit rows of {t} inputs (or there are none).");
        for (int row = 0; row < b; row++)
        {
            var e = examples[(int)rng.NextInt64(examples.Count)];
            WriteRow(e, inputs.AsSpan(row * t, t), targets.AsSpan(row * t, t), padId);
        }
    }

    /// <summary>One example's row: its inputs and trained targets, then pad inputs with masked targets.</summary>
    public static void WriteRow(SftTokens e, Span<int> inputs, Span<int> targets, int padId)
    {
        ArgumentNullException.ThrowIfNull(e);
        int n = e.Ids.Length;
        for (int j = 0; j < inputs.Length; j++)
        {
            inputs[j] = j < n ? e.Ids[j] : padId;
            targets[j] = j + 1 < n && e.Trained[j + 1] ? e.Ids[j + 1] : -1;
        }
    }
}
