// The trainer's side of data parallelism (one rank of N; the ranks run this in lock step):
// - Rows: the step's S = micro-batches x B sequences are drawn on every rank exactly as a single process draws them
//   (they depend only on seed, step and micro-batch), and rank r back-propagates rows [r S / N, (r + 1) S / N), at
//   most B at a time, each chunk's mean loss seeded with its unmasked targets / the step's total (which every rank
//   counts from the whole step), so the sum over ranks of the gradients is the step's mean gradient, as alone.
// - Plain data parallelism: the gradients are summed over ranks in buckets, one per layer (the layer's gradients
//   copied side by side into one buffer: one message per layer rather than one per tensor), started
//   (MPI_Iallreduce) when the backward of the rank's last chunk passes the layer's Graph mark (TransformerModel marks
//   each layer), so the sums of the later layers travel while the earlier layers still compute; the embeddings (and
//   a tied head) form the last bucket, started when the backward ends; all are waited for and copied back before the
//   optimizer. Every rank then makes the same update.
// - ZeRO-1 (zero = 1): each rank's optimizer holds the moments of one shard of the flat trainable vector (shard =
//   ceil(P / N) elements; the last rank's shard is padded). After the backward the gradients are reduce-scattered
//   (each rank receives the sum of its shard), the norm is summed over shards, each rank updates its shard of the
//   parameters and the parameters are all-gathered. No overlap with the backward here: the reduce-scatter needs the
//   whole flat gradient.
// - Scalars: the step's loss sum (and the ZeRO squared norm) are summed in double in one all-reduce.
// Not handled: preference tuning (pairs drawn per rank), dropout masks equal to a single process's (a chunk draws
// its masks by position inside the chunk, so with dropout > 0 N ranks train on other masks than 1 rank).
using Quill.Kernels;
using Quill.Models;
using Quill.Tensors;

namespace Quill.Training;

/// <summary>Splits a step's rows over ranks and sums (or reduce-scatters) the gradients.</summary>
internal sealed class DataParallel
{
    private readonly ICollectives ranks;
    private readonly Tensor[] ps;          // the trainable parameters, in the optimizer's order
    private readonly Bucket[] buckets;     // plain: one per Graph mark stage, in the order backward finishes them
    private readonly float[]? flat;        // ZeRO: [N * shard] the gradients, later the gathered parameters
    private readonly float[]? shardGrad;   // ZeRO: [shard]
    private readonly long[] offsets;       // [ps + 1] each parameter's start in the flat vector
    private readonly int shard;
    private readonly long flatLength;

    public DataParallel(ICollectives ranks, LanguageModel model, int zero)
    {
        this.ranks = ranks;
        if (zero is not (0 or 1)) throw new InvalidConfigException($"--zero takes 0 (no sharding) or 1 (AdamW moments sharded over ranks); got {zero}.");
        ps = [.. model.Parameters.Trainable];
        offsets = new long[ps.Length + 1];
        for (int i = 0; i < ps.Length; i++) offsets[i + 1] = offsets[i] + ps[i].Length;
        flatLength = offsets[^1];
        Zero = zero == 1;
        buckets = Zero ? [] : [.. Enumerable.Range(0, ps.Length).GroupBy(i => model.BackwardStage(ps[i]))
            .OrderByDescending(g => g.Key < 0 ? int.MinValue : g.Key)
            .Select(g => new Bucket(g.Key, [.. g], GC.AllocateArray<float>(checked((int)g.Sum(i => (long)ps[i].Length)), pinned: true)))];
        if (Zero)
        {
            shard = (int)((flatLength + ranks.Size - 1) / ranks.Size);
            if ((long)shard * ranks.Size > Array.MaxLength) throw new InvalidConfigException($"--zero 1 keeps the {flatLength:N0} trainable values in one buffer, which is too large; train without --zero.");
            flat = GC.AllocateArray<float>(shard * ranks.Size, pinned: true);
            shardGrad = new float[shard];
        }
    }

    public bool Zero { get; }

    public int Rank => ranks.Rank;

    public int Size => ranks.Size;

    /// <summary>ZeRO-1: the shard of the flat trainable vector this rank's optimizer holds.</summary>
    public (long Start, int Length) Shard => ((long)ranks.Rank * shard, shard);

    /// <summary>This rank's rows of a step of stepRows sequences.</summary>
    public (int First, int Count) LocalRows(int stepRows)
    {
        int first = (int)((long)stepRows * ranks.Rank / ranks.Size), next = (int)((long)stepRows * (ranks.Rank + 1) / ranks.Size);
        return (first, next - first);
    }

    /// <summary>Graph.OnBackwardMark for the rank's last chunk (null under ZeRO-1: nothing starts early).</summary>
    public Action<int>? MarkHook => Zero ? null : OnMark;

    private void OnMark(int stage)
    {
        foreach (var bucket in buckets)
        {
            if (!bucket.Started && bucket.Stage >= stage) Start(bucket);
        }
        ranks.Progress();
    }

    private void Start(Bucket bucket)
    {
        int at = 0;
        foreach (int i in bucket.Members)
        {
            ps[i].Grad!.Span.CopyTo(bucket.Buffer.AsSpan(at));
            at += ps[i].Length;
        }
        ranks.StartSum(bucket.Buffer);
        bucket.Started = true;
    }

    /// <summary>The gradients of one stage side by side, summed as one message.</summary>
    private sealed class Bucket(int stage, int[] members, float[] buffer)
    {
        public int Stage { get; } = stage;

        public int[] Members { get; } = members;

        public float[] Buffer { get; } = buffer;

        public bool Started { get; set; }
    }

    /// <summary>After the rank's backward: finishes the gradient sums (or the reduce-scatter of ZeRO-1).</summary>
    public void AfterBackward()
    {
        if (!Zero)
        {
            foreach (var bucket in buckets) if (!bucket.Started) Start(bucket);
            ranks.WaitAll();
            foreach (var bucket in buckets)
            {
                int at = 0;
                foreach (int i in bucket.Members)
                {
                    bucket.Buffer.AsSpan(at, ps[i].Length).CopyTo(ps[i].Grad!.Span);
                    at += ps[i].Length;
                }
                bucket.Started = false;
            }
            return;
        }
        for (int i = 0; i < ps.Length; i++) ps[i].Grad!.Span.CopyTo(flat!.AsSpan((int)Offset(i)));
        flat!.AsSpan((int)flatLength).Clear();
        ranks.ReduceScatterSum(flat, shardGrad!);
    }

    /// <summary>Sums the step's loss over ranks; returns it and the gradient norm (ZeRO-1: over the shards).</summary>
    public (double LossSum, float GradNorm) Reduce(double localLossSum, AdamWOptimizer optimizer)
    {
        Span<double> scalars = [localLossSum, Zero ? Elementwise.SumOfSquares(shardGrad!) : 0];
        ranks.Sum(scalars);
        return (scalars[0], Zero ? (float)Math.Sqrt(scalars[1]) : (float)optimizer.GradNorm());
    }

    /// <summary>The update: every rank the whole one, or under ZeRO-1 its shard, then the parameters gathered.</summary>
    public void Step(AdamWOptimizer optimizer, float lr, float gradScale)
    {
        if (!Zero)
        {
            optimizer.Step(lr, gradScale);
            return;
        }
        optimizer.StepShard(lr, gradScale, shardGrad!);
        long start = (long)ranks.Rank * shard;
        var mine = shardGrad!.AsSpan(); // the gradient is used up: it carries this rank's parameters now
        mine.Clear();
        for (int i = 0; i < ps.Length; i++)
        {
            long lo = Math.Max(Offset(i), start), hi = Math.Min(Offset(i) + ps[i].Length, start + shard);
            if (lo < hi) ps[i].Span.Slice((int)(lo - Offset(i)), (int)(hi - lo)).CopyTo(mine.Slice((int)(lo - start)));
        }
        ranks.AllGather(mine, flat);
        for (int i = 0; i < ps.Length; i++) flat!.AsSpan((int)Offset(i), ps[i].Length).CopyTo(ps[i].Span);
    }

    /// <summary>ZeRO-1, on every rank before rank 0 writes a checkpoint: gathers the moments to rank 0.</summary>
    public void GatherState(AdamWOptimizer optimizer)
    {
        if (!Zero) return;
        var (m, v) = optimizer.ShardMoments;
        float[] allM = ranks.Rank == 0 ? new float[shard * ranks.Size] : [], allV = ranks.Rank == 0 ? new float[shard * ranks.Size] : [];
        ranks.Gather(m.Span, allM);
        ranks.Gather(v.Span, allV);
        if (ranks.Rank == 0) optimizer.SetGatheredState(allM, allV);
    }

    private long Offset(int i) => offsets[i];
}
