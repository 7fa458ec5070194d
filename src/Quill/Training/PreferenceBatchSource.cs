// Training rows from rendered preference pairs, laid out as TRL lays a batch: a micro-batch of P pairs is 2P padded
// rows, the P chosen replies first, then the P rejected ones in the same pair order (SftBatchSource.WriteRow: prompt
// and padding targets masked, only the reply and its end token counted). Pairs are drawn uniformly with replacement
// by the generator the trainer seeds per (seed, step, micro-batch), so a resumed run draws the same pairs.
// The reference log-probs (DPO, IPO) are computed once, before the first update, by ComputeReference: the model as
// given with its LoRA adapter switched off (the frozen base; no second copy in memory), or the full model before
// training starts. A resumed full fine-tuning run rebuilds the model from the base and computes them again before
// loading the checkpoint's weights, so they stay the base's.
// Glossary: P pairs per micro-batch, T tokens per row.
using Quill.Autograd;
using Quill.Autograd.Ops;
using Quill.Data.Sft;
using Quill.Models;
using Quill.Tensors;

namespace Quill.Training;

/// <summary>Padded rows of preference pairs (chosen rows, then rejected rows) with their reference log-probs.</summary>
public sealed class PreferenceBatchSource : IBatchSource
{
    private readonly IReadOnlyList<PreferenceTokens> pairs;
    private readonly int padId, longest;
    private float[]? reference; // [2 * pairs]: chosen, rejected of pair i at 2i, 2i + 1

    /// <param name="pairs">Rendered pairs (each side fits the context already).</param>
    /// <param name="padId">The input id written after a sequence (its target is masked).</param>
    public PreferenceBatchSource(IReadOnlyList<PreferenceTokens> pairs, int padId = 0)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        ArgumentOutOfRangeException.ThrowIfNegative(padId);
        this.pairs = pairs;
        this.padId = padId;
        longest = pairs.Count == 0 ? 0 : pairs.Max(p => Math.Max(p.Chosen.Ids.Length, p.Rejected.Ids.Length));
    }

    public int Count => pairs.Count;

    /// <summary>True once ComputeReference has run.</summary>
    public bool HasReference => reference != null;

    public bool CanSample(int t) => pairs.Count > 0 && longest <= t + 1;

    /// <summary>Fills b rows (b even: b / 2 pairs); see FillPairs.</summary>
    public void Fill(Rng rng, int b, int t, int[] inputs, int[] targets)
    {
        if (b % 2 != 0) throw new ArgumentException($"preference rows come in pairs; got {b} rows.");
        FillPairs(rng, b / 2, t, inputs, targets, new int[b / 2]);
    }

    /// <summary>Draws p pairs into drawn and writes their 2p rows (chosen rows first) into inputs and targets [2p * T].</summary>
    public void FillPairs(Rng rng, int p, int t, int[] inputs, int[] targets, int[] drawn)
    {
        ArgumentNullException.ThrowIfNull(rng);
        ArgumentNullException.ThrowIfNull(drawn);
        for (int i = 0; i < p; i++) drawn[i] = (int)rng.NextInt64(pairs.Count);
        WriteRows(drawn, p, t, inputs, targets);
    }

    /// <summary>Writes the rows of the pairs drawn[0..p) (chosen rows first) into inputs and targets [2p * T].</summary>
    public void WriteRows(int[] drawn, int p, int t, int[] inputs, int[] targets)
    {
        ArgumentNullException.ThrowIfNull(drawn);
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(targets);
        if (!CanSample(t)) throw new ArgumentException($"a sequence of {longest} tokens does not fit rows of {t} inputs (or there are no pairs).");
        for (int i = 0; i < p; i++)
        {
            var pair = pairs[drawn[i]];
            SftBatchSource.WriteRow(pair.Chosen, inputs.AsSpan(i * t, t), targets.AsSpan(i * t, t), padId);
            SftBatchSource.WriteRow(pair.Rejected, inputs.AsSpan((p + i) * t, t), targets.AsSpan((p + i) * t, t), padId);
        }
    }

    /// <summary>The completion tokens (trained targets) of the drawn pairs' rows, chosen first: lengths [2p].</summary>
    public void Lengths(int[] drawn, int p, int[] lengths)
    {
        ArgumentNullException.ThrowIfNull(drawn);
        ArgumentNullException.ThrowIfNull(lengths);
        for (int i = 0; i < p; i++)
        {
            lengths[i] = pairs[drawn[i]].Chosen.TrainedTargets;
            lengths[p + i] = pairs[drawn[i]].Rejected.TrainedTargets;
        }
    }

    /// <summary>The reference log-probs of the drawn pairs' rows, chosen first: values [2p].</summary>
    public void Reference(int[] drawn, int p, float[] values)
    {
        ArgumentNullException.ThrowIfNull(drawn);
        ArgumentNullException.ThrowIfNull(values);
        var r = reference ?? throw new InvalidOperationException("ComputeReference has not run.");
        for (int i = 0; i < p; i++)
        {
            values[i] = r[2 * drawn[i]];
            values[p + i] = r[2 * drawn[i] + 1];
        }
    }

    /// <summary>
    /// The summed completion log-prob of every pair's two sides under model as it is now, with its LoRA adapter
    /// switched off (restored after), in batches of p pairs of rows of t tokens, without recording a graph.
    /// </summary>
    public void ComputeReference(LanguageModel model, int p, int t, IProgress<(int Done, int Total)>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var adapter = model.Lora;
        bool wasOn = adapter?.Enabled ?? false;
        if (adapter != null) adapter.Enabled = false;
        try
        {
            var r = new float[2 * pairs.Count];
            var g = new Graph(recording: false);
            int[] inputs = new int[2 * p * t], targets = new int[2 * p * t], drawn = new int[p];
            for (int start = 0; start < pairs.Count; start += p)
            {
                int n = Math.Min(p, pairs.Count - start);
                for (int i = 0; i < p; i++) drawn[i] = start + Math.Min(i, n - 1); // a short last batch repeats its last pair
                WriteRows(drawn, p, t, inputs, targets);
                g.Reset();
                var logp = SequenceLogProbOp.Forward(g, model.Forward(g, inputs, 2 * p, t), targets, 2 * p).Span;
                for (int i = 0; i < n; i++)
                {
                    r[2 * (start + i)] = logp[i];
                    r[2 * (start + i) + 1] = logp[p + i];
                }
                progress?.Report((start + n, pairs.Count));
            }
            reference = r;
        }
        finally
        {
            if (adapter != null) adapter.Enabled = wasOn;
        }
    }
}
