// Decode-time attention over a KV cache (inference): Tq new queries at positions [pos0, pos0 + Tq) of one sequence
// attend to every cached key/value at positions [0, pos0 + t]. The new tokens' keys and values must already be in
// the cache (write them first, then call this), so prefill (pos0 = 0, Tq = prompt length) and one-token decode
// (Tq = 1) are the same call.
// Cache layout, per sequence: [Hkv, maxT, D]. Each kv head's keys are one contiguous run of rows, so a query's
// scores are a stream of D-long dot products over consecutive memory, and appending a token writes one D-long row
// per head. (A [maxT, Hkv*D] layout would interleave heads and stride every dot product; a batch of sequences is
// a loop over their caches, each with its own pos0.)
// Per (query, head) row it computes all scores into scratch, softmaxes them (vectorized exp) and sums the values
// in registers; rows are split across threads only when there is enough work. From CachedTiledMinRows new queries
// (a prompt's chunk) it runs the training forward's tiled kernel instead, its queries starting at pos0 and its keys
// read from the cache.
// A sliding window (query at position p sees keys (p - window, p]) starts each row's keys later in the same cache;
// a soft-cap c turns each scaled score s into c tanh(s / c) (Gemma 2).
// A ring (ring R > 0: a cache that keeps only the window, Inference.KvCache) holds position p in row p mod R with
// the rows below W - 1 mirrored after R, so a row's W visible keys still start at one row (lo mod R) and run on.
// Does not handle: batches (call once per sequence), quantized caches.
// Glossary: Tq new queries, pos0 position of the first, Hq query heads, Hkv kv heads, D head size, maxT cache capacity.
using System.Runtime.Intrinsics;

namespace Quill.Kernels;

public static partial class Attention
{
    /// <summary>
    /// New queries from which cached attention runs the tiled forward kernel instead of one row at a time: from four
    /// (one row tile) it was faster even with 700 cached keys to pack (stories110M's shape, Q4_K_M, 2 threads).
    /// </summary>
    internal const int CachedTiledMinRows = 4;

    /// <summary>The tiled kernel's log-sum-exp output, which cached attention does not use: [Hq, Tq], per thread.</summary>
    [ThreadStatic] private static float[]? cachedLse;

    /// <summary>Work (positions x D x query rows) from which cached attention splits its rows across threads.</summary>
    private const long CachedParallelWork = 1 << 13; // a hand-off to the awake helpers costs about a microsecond

    /// <summary>
    /// Causal attention of new queries over a KV cache. q: query t head h at q[t*qRowStride + h*D ..]; kCache and
    /// vCache: [Hkv, maxT, D] with positions [0, pos0 + Tq) filled; o: [Tq, Hq*D]. Query t sees keys [0, pos0 + t].
    /// </summary>
    public static void ForwardCached(int Tq, int pos0, int Hq, int Hkv, int D, float scale,
        ReadOnlySpan<float> q, int qRowStride,          // [Tq, Hq*D] rows qRowStride apart
        ReadOnlySpan<float> kCache, ReadOnlySpan<float> vCache, int maxT,   // [Hkv, maxT, D] each
        Span<float> o,                                   // [Tq, Hq*D]
        int window = 0, float softcap = 0,               // keys per query including itself (0: all); score cap (0: none)
        int ring = 0)                                    // a ring of this many positions, maxT = ring + window - 1 rows (0: none)
        => ForwardCachedCore(Tq, pos0, Hq, Hkv, D, scale, q, qRowStride, kCache, vCache, maxT, o, KernelThreads.Count, AttentionWidth.Auto, window, softcap, ring);

    internal static unsafe void ForwardCachedCore(int Tq, int pos0, int Hq, int Hkv, int D, float scale,
        ReadOnlySpan<float> q, int qRowStride, ReadOnlySpan<float> kCache, ReadOnlySpan<float> vCache, int maxT,
        Span<float> o, int threads, AttentionWidth width, int window = 0, float softcap = 0, int ring = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(ring);
        if (ring > 0 && (window < 1 || Tq + window - 1 > ring || (long)ring + window - 1 != maxT))
            throw new ArgumentException($"a ring of {ring} positions needs a window (got {window}), at most {ring - window + 1} queries (got {Tq}) and {(long)ring + window - 1} rows per head (got {maxT}).", nameof(ring));
        AttentionShape.ValidateCached(Tq, ring > 0 ? 0 : pos0, Hq, Hkv, D, q.Length, qRowStride, kCache.Length, vCache.Length, maxT, o.Length);
        ArgumentOutOfRangeException.ThrowIfNegative(window);
        ArgumentOutOfRangeException.ThrowIfNegative(softcap);
        if (Tq == 0) return;
        width = Resolve(width);
        if (Tq >= CachedTiledMinRows && (window == 0 || pos0 == 0) && (ring == 0 || pos0 + Tq <= ring))
        {
            // Many queries (a prompt's chunk): the training forward's tiled kernel, its query rows starting at pos0
            // and its keys read from the cache rows [0, pos0 + Tq) of each head, runs several times faster than one
            // row at a time. A windowed layer takes it for a sequence's first chunk only (no ring has wrapped yet):
            // later rows see at most `window` keys, cheap one row at a time, and a ring cache and a full one then
            // run the same kernel on every chunk, so their logits stay equal bit for bit.
            float[] lse = cachedLse is { } l && l.Length >= Hq * Tq ? l : cachedLse = new float[Hq * Tq];
            fixed (float* pq = q, pk = kCache, pv = vCache, po = o, plse = lse)
            {
                var args = new AttentionArgs(1, pos0 + Tq, Hq, Hkv, D, scale, pq, qRowStride, pk, D, pv, D, po, plse,
                    null, null, null, null, window, null, softcap, q0: pos0, kHead: (long)maxT * D, vHead: (long)maxT * D);
                RunForward(args, threads, width);
            }
            return;
        }
        fixed (float* pq = q, pk = kCache, pv = vCache, po = o)
        {
            nint qp = (nint)pq, kp = (nint)pk, vp = (nint)pv, op = (nint)po;
            int rows = Tq * Hq;
            long work = (long)(pos0 + Tq) * D * rows;
            int minChunk = work >= CachedParallelWork ? 1 : rows;
            KernelThreads.ParallelFor(rows, minChunk, threads, (s, e) =>
            {
                for (int row = s; row < e; row++)
                {
                    int t = row / Hq, h = row % Hq;
                    float* qRow = (float*)qp + (long)t * qRowStride + h * D;
                    float* oRow = (float*)op + ((long)t * Hq + h) * D;
                    int n = pos0 + t + 1, lo = window > 0 ? Math.Max(0, n - window) : 0;
                    long kvBase = (long)(h / (Hq / Hkv)) * maxT * D + (long)(ring > 0 ? lo % ring : lo) * D; // the first visible key
                    n -= lo;
                    switch (width)
                    {
                        case AttentionWidth.Vector512: CachedRow<Vec512, Vector512<float>>(qRow, (float*)kp + kvBase, (float*)vp + kvBase, n, D, scale, softcap, oRow); break;
                        case AttentionWidth.Vector256: CachedRow<Vec256, Vector256<float>>(qRow, (float*)kp + kvBase, (float*)vp + kvBase, n, D, scale, softcap, oRow); break;
                        case AttentionWidth.Vector128: CachedRow<Vec128, Vector128<float>>(qRow, (float*)kp + kvBase, (float*)vp + kvBase, n, D, scale, softcap, oRow); break;
                        default: CachedRow<VecScalar, float>(qRow, (float*)kp + kvBase, (float*)vp + kvBase, n, D, scale, softcap, oRow); break;
                    }
                }
            });
        }
    }

    // One query row against keys/values [n, D] (rows D apart): scores, softmax, weighted sum of values. The keys and
    // values of a position are cold when decode reaches them (the weights streamed since), so both loops prefetch a
    // few rows ahead; the exponentials run vectorized over the stored scores, and the output is summed in registers,
    // four vectors of it per pass over the values.
    private static unsafe void CachedRow<TOps, TV>(float* qRow, float* keys, float* values, int n, int D, float scale, float softcap, float* oRow)
        where TOps : struct, IAttentionVector<TV> where TV : struct
    {
        int L = TOps.Lanes;
        float* s = AttentionScratch.Get(n);
        long ahead = Math.Max(1, 512 / D) * D; // about eight cache lines ahead
        float max = float.NegativeInfinity;
        for (int j = 0; j < n; j++)
        {
            float* kRow = keys + (long)j * D;
            Prefetch(kRow + ahead);
            TV acc = TOps.Zero;
            int d = 0;
            for (; d + L <= D; d += L) acc = TOps.Fma(TOps.Load(qRow + d), TOps.Load(kRow + d), acc);
            float dot = TOps.SumAcross(acc);
            for (; d < D; d++) dot += qRow[d] * kRow[d];
            s[j] = softcap > 0 ? softcap * MathF.Tanh(dot * scale / softcap) : dot * scale;
            max = MathF.Max(max, s[j]);
        }
        TV vmax = TOps.Broadcast(max), vsum = TOps.Zero;
        int i = 0;
        for (; i + L <= n; i += L)
        {
            TV e = TOps.Exp(TOps.Sub(TOps.Load(s + i), vmax));
            TOps.Store(s + i, e);
            vsum = TOps.Add(vsum, e);
        }
        float sum = TOps.SumAcross(vsum);
        for (; i < n; i++) sum += s[i] = MathF.Exp(s[i] - max);
        TV inv = TOps.Broadcast(1f / sum);
        int c = 0;
        for (; c + 4 * L <= D; c += 4 * L)
        {
            TV a0 = TOps.Zero, a1 = TOps.Zero, a2 = TOps.Zero, a3 = TOps.Zero;
            for (int j = 0; j < n; j++)
            {
                float* vRow = values + (long)j * D + c;
                Prefetch(vRow + ahead);
                TV p = TOps.Broadcast(s[j]);
                a0 = TOps.Fma(p, TOps.Load(vRow), a0);
                a1 = TOps.Fma(p, TOps.Load(vRow + L), a1);
                a2 = TOps.Fma(p, TOps.Load(vRow + 2 * L), a2);
                a3 = TOps.Fma(p, TOps.Load(vRow + 3 * L), a3);
            }
            TOps.Store(oRow + c, TOps.Mul(a0, inv));
            TOps.Store(oRow + c + L, TOps.Mul(a1, inv));
            TOps.Store(oRow + c + 2 * L, TOps.Mul(a2, inv));
            TOps.Store(oRow + c + 3 * L, TOps.Mul(a3, inv));
        }
        for (; c + L <= D; c += L)
        {
            TV a = TOps.Zero;
            for (int j = 0; j < n; j++) a = TOps.Fma(TOps.Broadcast(s[j]), TOps.Load(values + (long)j * D + c), a);
            TOps.Store(oRow + c, TOps.Mul(a, inv));
        }
        float invSum = 1f / sum;
        for (; c < D; c++)
        {
            float a = 0;
            for (int j = 0; j < n; j++) a += s[j] * values[(long)j * D + c];
            oRow[c] = a * invSum;
        }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static unsafe void Prefetch(float* p)
    {
        if (System.Runtime.Intrinsics.X86.Sse.IsSupported) System.Runtime.Intrinsics.X86.Sse.Prefetch0(p);
    }
}
