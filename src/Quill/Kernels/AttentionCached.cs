// Decode-time attention over a KV cache (inference): Tq new queries at positions [pos0, pos0 + Tq) of one sequence
// attend to every cached key/value at positions [0, pos0 + t]. The new tokens' keys and values must already be in
// the cache (write them first, then call this), so prefill (pos0 = 0, Tq = prompt length) and one-token decode
// (Tq = 1) are the same call.
// Cache layout, per sequence: [Hkv, maxT, D]. Each kv head's keys are one contiguous run of rows, so a query's
// scores are a stream of D-long dot products over consecutive memory, and appending a token writes one D-long row
// per head. (A [maxT, Hkv*D] layout would interleave heads and stride every dot product; a batch of sequences is
// a loop over their caches, each with its own pos0.)
// Straightforward rather than fast: per (query, head) row it computes all scores into scratch, softmaxes them and
// sums the values; rows are split across threads only when there is enough work.
// Does not handle: batches (call once per sequence), quantized caches, sliding windows.
// Glossary: Tq new queries, pos0 position of the first, Hq query heads, Hkv kv heads, D head size, maxT cache capacity.
using System.Runtime.Intrinsics;

namespace Quill.Kernels;

public static partial class Attention
{
    /// <summary>
    /// Causal attention of new queries over a KV cache. q: query t head h at q[t*qRowStride + h*D ..]; kCache and
    /// vCache: [Hkv, maxT, D] with positions [0, pos0 + Tq) filled; o: [Tq, Hq*D]. Query t sees keys [0, pos0 + t].
    /// </summary>
    public static void ForwardCached(int Tq, int pos0, int Hq, int Hkv, int D, float scale,
        ReadOnlySpan<float> q, int qRowStride,          // [Tq, Hq*D] rows qRowStride apart
        ReadOnlySpan<float> kCache, ReadOnlySpan<float> vCache, int maxT,   // [Hkv, maxT, D] each
        Span<float> o)                                   // [Tq, Hq*D]
        => ForwardCachedCore(Tq, pos0, Hq, Hkv, D, scale, q, qRowStride, kCache, vCache, maxT, o, KernelThreads.Count, AttentionWidth.Auto);

    internal static unsafe void ForwardCachedCore(int Tq, int pos0, int Hq, int Hkv, int D, float scale,
        ReadOnlySpan<float> q, int qRowStride, ReadOnlySpan<float> kCache, ReadOnlySpan<float> vCache, int maxT,
        Span<float> o, int threads, AttentionWidth width)
    {
        AttentionShape.ValidateCached(Tq, pos0, Hq, Hkv, D, q.Length, qRowStride, kCache.Length, vCache.Length, maxT, o.Length);
        if (Tq == 0) return;
        width = Resolve(width);
        fixed (float* pq = q, pk = kCache, pv = vCache, po = o)
        {
            nint qp = (nint)pq, kp = (nint)pk, vp = (nint)pv, op = (nint)po;
            int rows = Tq * Hq;
            long work = (long)(pos0 + Tq) * D * rows;
            int minChunk = work >= 1 << 13 ? 1 : rows; // a hand-off to the awake helpers costs about a microsecond
            Split(rows, minChunk, threads, (s, e) =>
            {
                for (int row = s; row < e; row++)
                {
                    int t = row / Hq, h = row % Hq;
                    float* qRow = (float*)qp + (long)t * qRowStride + h * D;
                    long kvBase = (long)(h / (Hq / Hkv)) * maxT * D;
                    float* oRow = (float*)op + ((long)t * Hq + h) * D;
                    int n = pos0 + t + 1;
                    switch (width)
                    {
                        case AttentionWidth.Vector512: CachedRow<Vec512, Vector512<float>>(qRow, (float*)kp + kvBase, (float*)vp + kvBase, n, D, scale, oRow); break;
                        case AttentionWidth.Vector256: CachedRow<Vec256, Vector256<float>>(qRow, (float*)kp + kvBase, (float*)vp + kvBase, n, D, scale, oRow); break;
                        default: CachedRow<VecScalar, float>(qRow, (float*)kp + kvBase, (float*)vp + kvBase, n, D, scale, oRow); break;
                    }
                }
            });
        }
    }

    // One query row against keys/values [n, D] (rows D apart): scores, softmax, weighted sum of values.
    private static unsafe void CachedRow<TOps, TV>(float* qRow, float* keys, float* values, int n, int D, float scale, float* oRow)
        where TOps : struct, IAttentionVector<TV> where TV : struct
    {
        int L = TOps.Lanes;
        float* s = AttentionScratch.Get(n);
        float max = float.NegativeInfinity;
        for (int j = 0; j < n; j++)
        {
            float* kRow = keys + (long)j * D;
            TV acc = TOps.Zero;
            int d = 0;
            for (; d + L <= D; d += L) acc = TOps.Fma(TOps.Load(qRow + d), TOps.Load(kRow + d), acc);
            float dot = TOps.SumAcross(acc);
            for (; d < D; d++) dot += qRow[d] * kRow[d];
            s[j] = dot * scale;
            max = MathF.Max(max, s[j]);
        }
        float sum = 0;
        for (int j = 0; j < n; j++) sum += s[j] = MathF.Exp(s[j] - max);
        new Span<float>(oRow, D).Clear();
        for (int j = 0; j < n; j++)
        {
            float* vRow = values + (long)j * D;
            TV pj = TOps.Broadcast(s[j]);
            int d = 0;
            for (; d + L <= D; d += L) TOps.Store(oRow + d, TOps.Fma(pj, TOps.Load(vRow + d), TOps.Load(oRow + d)));
            for (; d < D; d++) oRow[d] += s[j] * vRow[d];
        }
        float inv = 1f / sum;
        for (int d = 0; d < D; d++) oRow[d] *= inv;
    }
}
