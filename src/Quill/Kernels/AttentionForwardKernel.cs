// Flash-style causal attention forward on the CPU, written once over IAttentionVector (512, 256 or scalar).
// Work item = (b, h, block of QB query rows; the rows may start past 0, AttentionArgs.Q0, with keys from 0 as a
// prompt's later chunk over a KV cache has them). For each item the kv head's keys are packed transposed,
// Kt [D, ld >= Tp], and its values row-padded, V [Tp, Dp] (reused by the next item of the same (b, kv head)); then
// query rows go four at a time through the key blocks of KB = 8 * lanes keys up to the diagonal: scores by
// Tile4, online softmax (running max m, running sum l, rescale of the output accumulator), P V by Tile4.
// Blocks above the diagonal are never visited; only the diagonal block is masked. With an AttentionMask, scores are
// soft-capped first, key blocks below the first row's lowest visible key are skipped and the keys below each row's
// lowest are masked. No [T, T] matrix exists.
// Does not handle: non-causal attention, dropout; argument checks (Attention does them).
// Glossary: B batch, T sequence length, Hq query heads, Hkv kv heads, D head size, Dp = D rounded up to the lanes,
// Tp = T rounded up to KB, L lanes, KB keys per block, QB query rows per work item.
using System.Runtime.CompilerServices;

namespace Quill.Kernels;

/// <summary>Pointers and sizes of one Forward or Backward call, handed to the work items.</summary>
internal readonly unsafe struct AttentionArgs
{
    public readonly int B, T, Hq, Hkv, D;
    public readonly float Scale;
    public readonly float* Q, K, V, O, Lse, DO, DQ, DK, DV;
    public readonly int QStride, KStride, VStride;

    /// <summary>AttentionMask's window (0: none), document starts [B, T] (null: none) and soft-cap (0: none).</summary>
    public readonly int Window;
    public readonly int* Doc;
    public readonly float Softcap;

    /// <summary>
    /// The forward's first query row (0 in training): only rows [Q0, T) are queries, and q, o and lse hold just those
    /// (row i at i - Q0), while the keys run over all of [0, T) (a prompt's later chunk over a KV cache). The backward
    /// takes 0 only.
    /// </summary>
    public readonly int Q0;

    /// <summary>
    /// Floats from one kv head's keys (values) to the next: D when heads sit side by side in a row, maxT * D in a KV
    /// cache. The backward takes D only.
    /// </summary>
    public readonly long KHead, VHead;

    public AttentionArgs(int b, int t, int hq, int hkv, int d, float scale, float* q, int qStride, float* k, int kStride,
        float* v, int vStride, float* o, float* lse, float* dO, float* dq, float* dk, float* dv,
        int window = 0, int* doc = null, float softcap = 0, int q0 = 0, long kHead = -1, long vHead = -1)
    {
        B = b; T = t; Hq = hq; Hkv = hkv; D = d; Scale = scale;
        Q = q; K = k; V = v; O = o; Lse = lse; DO = dO; DQ = dq; DK = dk; DV = dv;
        QStride = qStride; KStride = kStride; VStride = vStride;
        Window = window; Doc = doc; Softcap = softcap;
        Q0 = q0; KHead = kHead < 0 ? d : kHead; VHead = vHead < 0 ? d : vHead;
    }

    /// <summary>Query rows per batch row: T - Q0.</summary>
    public int QueryRows => T - Q0;

    /// <summary>Head h of query row i (i in [Q0, T)) of batch row b.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float* QRow(int b, int i, int h) => Q + ((long)b * QueryRows + i - Q0) * QStride + (long)h * D;

    /// <summary>Head h of output row i (i in [Q0, T)) of batch row b: o is [B, T - Q0, Hq * D].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float* ORow(int b, int i, int h) => O + (((long)b * QueryRows + i - Q0) * Hq + h) * D;

    /// <summary>Index of query row i's log-sum-exp: lse is [B, Hq, T - Q0].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public long LseAt(int b, int h, int i) => ((long)b * Hq + h) * QueryRows + i - Q0;

    /// <summary>True when some query sees fewer keys than the causal mask allows.</summary>
    public bool HasLow => Window > 0 || Doc != null;

    /// <summary>The first key query i of row b sees (AttentionMask.Lowest).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Lowest(int b, int i)
    {
        int lo = Window > 0 ? Math.Max(0, i - Window + 1) : 0;
        return Doc == null ? lo : Math.Max(lo, Doc[(long)b * T + i]);
    }
}

/// <summary>The soft-cap c tanh(s / c) on vectors, tanh written with the kernels' exp: tanh(x) = 1 - 2 / (1 + e^(2x)).</summary>
internal static class AttentionSoftcap
{
    /// <summary>tanh(s / c) (twoOverCap = 2 / c); exp's clamp above 88.7 keeps large inputs at 1, not NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Tanh<TOps, TV>(TV s, TV twoOverCap) where TOps : struct, IAttentionVector<TV> where TV : struct
    {
        TV one = TOps.Broadcast(1f);
        return TOps.Sub(one, TOps.Div(TOps.Broadcast(2f), TOps.Add(one, TOps.Exp(TOps.Mul(s, twoOverCap)))));
    }
}

internal static unsafe class AttentionForwardKernel
{
    /// <summary>Query rows per work item.</summary>
    public const int QB = 64;

    /// <summary>Work items for B batch rows of `rows` query rows each.</summary>
    public static int ItemCount(int B, int rows, int Hq) => B * Hq * ((rows + QB - 1) / QB);

    /// <summary>Runs work items [start, end) on the calling thread.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run<TOps, TV>(in AttentionArgs a, int start, int end)
        where TOps : struct, IAttentionVector<TV> where TV : struct
    {
        int L = TOps.Lanes, KB = 8 * L;
        int T = a.T, D = a.D, Dp = AttentionTile.RoundUp(D, L), Tp = AttentionTile.RoundUp(T, KB);
        int nqb = (a.QueryRows + QB - 1) / QB, group = a.Hq / a.Hkv;

        int ld = AttentionPack.Stagger(Tp);
        float* scratch = AttentionScratch.Get(AttentionPack.CarvedSize((long)D * ld, (long)Tp * Dp, 4 * D, 4 * KB, 4 * Dp));
        float* kt = AttentionPack.Carve(ref scratch, (long)D * ld);   // [D, ld] keys transposed
        float* vp = AttentionPack.Carve(ref scratch, (long)Tp * Dp);  // [Tp, Dp] values
        float* qTile = AttentionPack.Carve(ref scratch, 4 * D);      // [4, D] scaled query rows
        float* s = AttentionPack.Carve(ref scratch, 4 * KB);         // [4, KB] scores, then probabilities
        float* acc = AttentionPack.Carve(ref scratch, 4 * Dp);       // [4, Dp] unnormalized output rows

        int packedHead = -1, packedLen = 0;     // which (b, kv head) kt/vp hold, and how many keys
        for (int item = start; item < end; item++)
        {
            int bh = item / nqb, b = bh / a.Hq, h = bh % a.Hq, kvh = h / group;
            int qb = ZigZag(item % nqb, nqb);
            int i0 = a.Q0 + qb * QB, i1 = Math.Min(T, i0 + QB);
            int need = Math.Min(Tp, AttentionTile.RoundUp(i1, KB));
            int head = b * a.Hkv + kvh;
            if (head != packedHead) { packedHead = head; packedLen = 0; }
            // The first tile's query rows: later tiles' rows are asked for a tile ahead (RowTile), but these would
            // otherwise miss in L3 or memory right after the packing (3.9% of a forward's samples in `perf`).
            for (int r = 0; r < 4 && i0 + r < i1; r++)
                AttentionPack.PrefetchRow(a.QRow(b, i0 + r, h), D);
            if (packedLen < need)
            {
                float* kSrc = a.K + (long)b * T * a.KStride + kvh * a.KHead, vSrc = a.V + (long)b * T * a.VStride + kvh * a.VHead;
                AttentionPack.Transposed(kSrc, a.KStride, T, D, packedLen, need, kt, ld);
                AttentionPack.Rows(vSrc, a.VStride, T, D, 1f, packedLen, need, vp, Dp);
                packedLen = need;
            }
            for (int r0 = i0; r0 < i1; r0 += 4)
                RowTile<TOps, TV>(a, b, h, r0, Math.Min(4, i1 - r0), ld, Dp, kt, vp, qTile, s, acc);
        }
    }

    // Visits query blocks 0, n-1, 1, n-2, ... so that any contiguous run of items mixes cheap (early) and costly
    // (late, more keys) blocks, balancing threads even when there are few (b, h) pairs.
    private static int ZigZag(int i, int n) => (i & 1) == 0 ? i / 2 : n - 1 - i / 2;

    // Query rows r0 .. r0+nr-1 of (b, h) (nr <= 4; missing rows repeat the last real one and are not written).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RowTile<TOps, TV>(in AttentionArgs a, int b, int h, int r0, int nr, int ld, int Dp,
        float* kt, float* vp, float* qTile, float* s, float* acc)
        where TOps : struct, IAttentionVector<TV> where TV : struct
    {
        int L = TOps.Lanes, KB = 8 * L, T = a.T, D = a.D;
        int last = r0 + nr - 1;
        // The next tile's query rows and this tile's output rows: both miss in L1/L2, and the tile's products hide
        // the wait (the stalls on them took about a tenth of the forward before).
        for (int r = 0; r < 4; r++)
        {
            if (r0 + 4 + r < T) AttentionPack.PrefetchRow(a.QRow(b, r0 + 4 + r, h), D);
            if (r < nr) AttentionPack.PrefetchRow(a.ORow(b, r0 + r, h), D);
        }
        for (int r = 0; r < 4; r++)
        {
            AttentionPack.Scale(a.QRow(b, Math.Min(r0 + r, last), h), qTile + r * D, D, a.Scale);
        }
        new Span<float>(acc, 4 * Dp).Clear();
        Span<float> m = stackalloc float[4];
        Span<float> l = stackalloc float[4];
        m.Fill(float.NegativeInfinity);
        l.Clear();

        int nKeys = last + 1;
        // A window or document start hides the keys below each row's lowest: start at the block holding the first
        // row's (the smallest: Lowest never decreases along a row).
        bool low = a.HasLow, capped = a.Softcap > 0;
        Span<int> lo = stackalloc int[4];
        for (int r = 0; r < 4; r++) lo[r] = low ? a.Lowest(b, Math.Min(r0 + r, last)) : 0;
        TV cap = TOps.Broadcast(a.Softcap), twoOverCap = TOps.Broadcast(capped ? 2f / a.Softcap : 0f);
        for (int j0 = lo[0] / KB * KB; j0 < nKeys; j0 += KB)
        {
            // s[r, j] = (scale q_r) . k_{j0+j}   [4, width]; on the diagonal block only the vectors that hold a key <= last
            int width = Math.Min(KB, AttentionTile.RoundUp(nKeys - j0, L));
            AttentionTile.Tile4<TOps, TV>(s, KB, qTile, D, 1, kt + j0, ld, D, width, accumulate: false);
            bool diagonal = j0 + width - 1 > r0;
            bool below = low && j0 < lo[3];
            for (int r = 0; r < 4; r++)
            {
                float* sr = s + r * KB;
                int pos = Math.Min(r0 + r, last);
                TV mx = TOps.Broadcast(float.NegativeInfinity);
                for (int c = 0; c < width; c += L)
                {
                    TV sv = TOps.Load(sr + c);
                    if (capped) sv = TOps.Mul(cap, AttentionSoftcap.Tanh<TOps, TV>(sv, twoOverCap));
                    if (diagonal) sv = TOps.MaskAbove(sv, j0 + c, pos);
                    if (below) sv = TOps.MaskBelow(sv, j0 + c, lo[r]);
                    if (capped || diagonal || below) TOps.Store(sr + c, sv);
                    mx = TOps.Max(mx, sv);
                }
                float mNew = MathF.Max(m[r], TOps.MaxAcross(mx));
                if (float.IsNegativeInfinity(mNew))
                {
                    // every key of the row so far is hidden (its window starts in a later block): nothing to add
                    new Span<float>(sr, KB).Clear();
                    continue;
                }
                float alpha = MathF.Exp(m[r] - mNew);
                TV mv = TOps.Broadcast(mNew), sum = TOps.Zero;
                for (int c = 0; c < width; c += L)
                {
                    TV pv = TOps.Exp(TOps.Sub(TOps.Load(sr + c), mv));
                    TOps.Store(sr + c, pv);
                    sum = TOps.Add(sum, pv);
                }
                l[r] = l[r] * alpha + TOps.SumAcross(sum);
                m[r] = mNew;
                if (alpha != 1f)
                {
                    TV av = TOps.Broadcast(alpha);
                    float* ar = acc + r * Dp;
                    for (int c = 0; c < Dp; c += L) TOps.Store(ar + c, TOps.Mul(TOps.Load(ar + c), av));
                }
            }
            // acc[r, :] += sum_j p[r, j] v_{j0+j}   (keys past the last row carry p = 0 and are skipped)
            AttentionTile.Tile4<TOps, TV>(acc, Dp, s, KB, 1, vp + (long)j0 * Dp, Dp, Math.Min(KB, nKeys - j0), Dp, accumulate: true);
        }

        for (int r = 0; r < nr; r++)
        {
            int i = r0 + r;
            AttentionPack.Scale(acc + r * Dp, a.ORow(b, i, h), D, 1f / l[r]);
            a.Lse[a.LseAt(b, h, i)] = m[r] + MathF.Log(l[r]);
        }
    }
}
