// Training rows from rendered SFT examples, in one of two layouts.
// Padding (default): each row holds one example from its first token, inputs = ids[0..L-1] and targets = ids[1..L-1]
// where trained (else -1), then pad inputs with target -1 to T. Attention is causal, so padding after an example
// changes nothing the example's tokens see, and pad targets never count: a padded row trains exactly what the example
// alone would.
// Packing: examples are laid one after another in the order drawn, each from where the previous one ended, while the
// next fits (its L tokens as inputs, or L - 1 when it ends the row exactly: its last token is then only a target);
// the one that does not fit opens the next row, and the micro-batch's draw that fits no row is put back. Each token's
// document start (docStarts [B, T]) goes with the row, so the model attends only within an example and restarts its
// positions there (Kernels.AttentionMask.Documents); an example's last token has target -1, so it never predicts the
// first of the next; the row's tail is padded as above and belongs to the last example. A packed example therefore
// trains exactly what it would alone in a padded row, with fewer pad positions computed.
// Examples are drawn uniformly with replacement by the generator the trainer seeds per (seed, step, micro-batch), so
// a step's rows depend only on its number and a resumed run draws the same rows (an "epoch" is N draws on average,
// not a permutation). Packing puts back the one draw per micro-batch that fits no row, so it leans slightly towards
// short examples; the share of the draws that is put back is small when a micro-batch holds many examples.
// Glossary: B rows per micro-batch, T tokens per row, L tokens of an example (at most T + 1).
using Quill.Data.Sft;
using Quill.Tensors;

namespace Quill.Training;

/// <summary>A batch source whose rows may hold several documents (packed examples).</summary>
public interface IPackedBatchSource : IBatchSource
{
    /// <summary>True when rows hold several documents: fill them with <see cref="Fill(Rng, int, int, int[], int[], int[])"/>.</summary>
    bool Packs { get; }

    /// <summary>Fills inputs, targets and docStarts [B * T] (where each token's document starts in its row).</summary>
    void Fill(Rng rng, int b, int t, int[] inputs, int[] targets, int[] docStarts);
}

/// <summary>How full rows of a layout are: rows, and the share of their input positions that hold example tokens.</summary>
/// <param name="Rows">Rows of seq_len inputs.</param>
/// <param name="Tokens">Input positions that hold an example's token (the rest is padding).</param>
/// <param name="SeqLen">Inputs per row.</param>
public readonly record struct RowFill(long Rows, long Tokens, int SeqLen)
{
    /// <summary>Share of input positions that are not padding.</summary>
    public double Efficiency => Rows == 0 ? 0 : (double)Tokens / (Rows * (double)SeqLen);
}

/// <summary>Rendered SFT examples as padded rows (one per row) or packed rows (several per row, none seeing another).</summary>
public sealed class SftBatchSource : IPackedBatchSource
{
    private readonly IReadOnlyList<SftTokens> examples;
    private readonly int padId;
    private readonly int longest;

    /// <param name="examples">Rendered examples (truncated to the context already).</param>
    /// <param name="padId">The input id written after an example (any valid id: its target is masked).</param>
    /// <param name="packing">Pack several examples per row (see the file's header) instead of one per padded row.</param>
    public SftBatchSource(IReadOnlyList<SftTokens> examples, int padId = 0, bool packing = false)
    {
        ArgumentNullException.ThrowIfNull(examples);
        ArgumentOutOfRangeException.ThrowIfNegative(padId);
        this.examples = examples;
        this.padId = padId;
        Packs = packing;
        longest = examples.Count == 0 ? 0 : examples.Max(e => e.Ids.Length);
    }

    /// <summary>The examples rows are drawn from.</summary>
    public int Count => examples.Count;

    public bool Packs { get; }

    /// <summary>True when there are examples and each fits a row of t inputs (at most t + 1 tokens).</summary>
    public bool CanSample(int t) => examples.Count > 0 && longest <= t + 1;

    public void Fill(Rng rng, int b, int t, int[] inputs, int[] targets)
    {
        ArgumentNullException.ThrowIfNull(rng);
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(targets);
        if (Packs) throw new InvalidOperationException("a packing source fills docStarts too: call Fill(rng, b, t, inputs, targets, docStarts).");
        if (!CanSample(t)) throw new ArgumentException($"an example of {longest} tokens does not fit rows of {t} inputs (or there are none).");
        for (int row = 0; row < b; row++)
        {
            var e = examples[(int)rng.NextInt64(examples.Count)];
            WriteRow(e, inputs.AsSpan(row * t, t), targets.AsSpan(row * t, t), padId);
        }
    }

    public void Fill(Rng rng, int b, int t, int[] inputs, int[] targets, int[] docStarts)
    {
        ArgumentNullException.ThrowIfNull(rng);
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentNullException.ThrowIfNull(docStarts);
        if (!Packs)
        {
            Fill(rng, b, t, inputs, targets);
            Array.Clear(docStarts, 0, b * t);
            return;
        }
        if (!CanSample(t)) throw new ArgumentException($"an example of {longest} tokens does not fit rows of {t} inputs (or there are none).");
        Pack(() => examples[(int)rng.NextInt64(examples.Count)], b, t, inputs, targets, docStarts);
    }

    /// <summary>Packs draws (each fitting a row of t inputs) into b rows; returns how many were drawn (the last one is put back).</summary>
    internal int Pack(Func<SftTokens> draw, int b, int t, int[] inputs, int[] targets, int[] docStarts)
    {
        int row = 0, used = 0, drawn = 0;
        while (row < b)
        {
            var e = draw();
            drawn++;
            int need = Slots(e.Ids.Length, t - used);
            if (need < 0)
            {
                Pad(row * t, used, t, inputs, targets, docStarts);
                if (++row == b) break; // the draw that fits no row is put back
                used = 0;
                need = Slots(e.Ids.Length, t);
            }
            int at = row * t + used;
            WriteRow(e, inputs.AsSpan(at, need), targets.AsSpan(at, need), padId);
            docStarts.AsSpan(at, need).Fill(used);
            used += need;
        }
        return drawn;
    }

    /// <summary>Input positions an example of n tokens takes in a row with room inputs free (n, or n - 1 when it ends the row exactly), or -1.</summary>
    private static int Slots(int n, int room) => n <= room ? n : n == room + 1 && room > 0 ? room : -1;

    /// <summary>Pads a row's tail from used: pad inputs, masked targets, part of the last document (0 for an empty row).</summary>
    private void Pad(int rowStart, int used, int t, int[] inputs, int[] targets, int[] docStarts)
    {
        if (used == t) return;
        int docStart = used > 0 ? docStarts[rowStart + used - 1] : 0;
        inputs.AsSpan(rowStart + used, t - used).Fill(padId);
        targets.AsSpan(rowStart + used, t - used).Fill(-1);
        docStarts.AsSpan(rowStart + used, t - used).Fill(docStart);
    }

    /// <summary>
    /// Rows and the share of non-pad inputs when every example is laid out once, in order, with rows of t inputs:
    /// one per row (padding) or packed as Fill packs them.
    /// </summary>
    public RowFill Layout(int t, bool packing)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(t, 1);
        long rows = 0, tokens = 0;
        int used = t;
        foreach (var e in examples)
        {
            int n = e.Ids.Length;
            if (!packing)
            {
                rows++;
                tokens += Math.Min(n, t);
                continue;
            }
            int need = Slots(n, t - used);
            if (need < 0)
            {
                rows++;
                used = 0;
                need = Slots(n, t);
            }
            used += need;
            tokens += need;
        }
        return new RowFill(rows, tokens, t);
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
