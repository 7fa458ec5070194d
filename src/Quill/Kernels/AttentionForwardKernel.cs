// Flash-style causal attention forward on the CPU, written once over IAttentionVector (512, 256 or scalar).
// Work item = (b, h, block of QB query rows). For each item the kv head's keys are packed transposed,
// Kt [D, Tp], and its values row-padded, V [Tp, Dp] (reused by the next item of the same (b, kv head)); then
// query rows go four at a time through the key blocks of KB = 4 * lanes keys up to the diagonal: scores by
// Tile4, online softmax (running max m, running sum l, rescale of the output accumulator), P V by Tile4.
// Blocks above the diagonal are never visited; only the diagonal block is masked. No [T, T] matrix exists.
// Does not handle: non-causal attention, dropout; argument checks (Attention does them).
// Glossary: B batch, T sequence length, Hq query heads, Hkv kv heads, D head size, Dp = D rounded up to the lanes,
// Tp = T rounded up to KB, L lanes, KB keys per block, QB query rows per work item.
namespace Quill.Kernels;

/// <summary>Pointers and sizes of one Forward or Backward call, handed to the work items.</summary>
internal readonly unsafe struct AttentionArgs
{
    public readonly int B, T, Hq, Hkv, D;
    public readonly float Scale;
    public readonly float* Q, K, V, O, Lse, DO, DQ, DK, DV;
    public readonly int QStride, KStride, VStride;

    public AttentionArgs(int b, int t, int hq, int hkv, int d, float scale, float* q, int qStride, float* k, int kStride,
        float* v, int vStride, float* o, float* lse, float* dO, float* dq, float* dk, float* dv)
    {
        B = b; T = t; Hq = hq; Hkv = hkv; D = d; Scale = scale;
        Q = q; K = k; V = v; O = o; Lse = lse; DO = dO; DQ = dq; DK = dk; DV = dv;
        QStride = qStride; KStride = kStride; VStride = vStride;
    }
}

internal static unsafe class AttentionForwardKernel
{
    /// <summary>Query rows per work item.</summary>
    public const int QB = 64;

    public static int ItemCount(int B, int T, int Hq) => B * Hq * ((T + QB - 1) / QB);

    /// <summary>Runs work items [start, end) on the calling thread.</summary>
    public static void Run<TOps, TV>(in AttentionArgs a, int start, int end)
        where TOps : struct, IAttentionVector<TV> where TV : struct
    {
        int L = TOps.Lanes, KB = 4 * L;
        int T = a.T, D = a.D, Dp = AttentionTile.RoundUp(D, L), Tp = AttentionTile.RoundUp(T, KB);
        int nqb = (T + QB - 1) / QB, group = a.Hq / a.Hkv;

        float* kt = AttentionScratch.Get((long)D * Tp + (long)Tp * Dp + 4 * D + 4 * KB + 4 * Dp + 64);
        float* vp = kt + (long)D * Tp;          // [Tp, Dp]
        float* qTile = vp + (long)Tp * Dp;      // [4, D] scaled query rows
        float* s = qTile + 4 * D;               // [4, KB] scores, then probabilities
        float* acc = s + 4 * KB;                // [4, Dp] unnormalized output rows

        int packedHead = -1, packedLen = 0;     // which (b, kv head) kt/vp hold, and how many keys
        for (int item = start; item < end; item++)
        {
            int bh = item / nqb, b = bh / a.Hq, h = bh % a.Hq, kvh = h / group;
            int qb = ZigZag(item % nqb, nqb);
            int i0 = qb * QB, i1 = Math.Min(T, i0 + QB);
            int need = Math.Min(Tp, AttentionTile.RoundUp(i1, KB));
            int head = b * a.Hkv + kvh;
            if (head != packedHead) { packedHead = head; packedLen = 0; }
            if (packedLen < need)
            {
                PackKeys(a, b, kvh, packedLen, need, Tp, Dp, kt, vp);
                packedLen = need;
            }
            for (int r0 = i0; r0 < i1; r0 += 4)
                RowTile<TOps, TV>(a, b, h, r0, Math.Min(4, i1 - r0), Tp, Dp, kt, vp, qTile, s, acc);
        }
    }

    // Visits query blocks 0, n-1, 1, n-2, ... so that any contiguous run of items mixes cheap (early) and costly
    // (late, more keys) blocks, balancing threads even when there are few (b, h) pairs.
    private static int ZigZag(int i, int n) => (i & 1) == 0 ? i / 2 : n - 1 - i / 2;

    // Keys [from, to) of (b, kvh) into kt [D, Tp] (transposed) and vp [Tp, Dp]; positions >= T and columns >= D are zero.
    private static void PackKeys(in AttentionArgs a, int b, int kvh, int from, int to, int Tp, int Dp, float* kt, float* vp)
    {
        int T = a.T, D = a.D;
        for (int j = from; j < to; j++)
        {
            float* vRow = vp + (long)j * Dp;
            if (j < T)
            {
                float* kSrc = a.K + (long)(b * T + j) * a.KStride + kvh * D;
                float* vSrc = a.V + (long)(b * T + j) * a.VStride + kvh * D;
                for (int d = 0; d < D; d++) kt[(long)d * Tp + j] = kSrc[d];
                new ReadOnlySpan<float>(vSrc, D).CopyTo(new Span<float>(vRow, D));
            }
            else
            {
                for (int d = 0; d < D; d++) kt[(long)d * Tp + j] = 0f;
                new Span<float>(vRow, D).Clear();
            }
            new Span<float>(vRow + D, Dp - D).Clear();
        }
    }

    // Query rows r0 .. r0+nr-1 of (b, h) (nr <= 4; missing rows repeat the last real one and are not written).
    private static void RowTile<TOps, TV>(in AttentionArgs a, int b, int h, int r0, int nr, int Tp, int Dp,
        float* kt, float* vp, float* qTile, float* s, float* acc)
        where TOps : struct, IAttentionVector<TV> where TV : struct
    {
        int L = TOps.Lanes, KB = 4 * L, T = a.T, D = a.D;
        int last = r0 + nr - 1;
        for (int r = 0; r < 4; r++)
        {
            float* src = a.Q + (long)(b * T + Math.Min(r0 + r, last)) * a.QStride + h * D;
            for (int d = 0; d < D; d++) qTile[r * D + d] = src[d] * a.Scale;
        }
        new Span<float>(acc, 4 * Dp).Clear();
        Span<float> m = stackalloc float[4];
        Span<float> l = stackalloc float[4];
        m.Fill(float.NegativeInfinity);
        l.Clear();

        int nKeys = last + 1;
        for (int j0 = 0; j0 < nKeys; j0 += KB)
        {
            // s[r, j] = (scale q_r) . k_{j0+j}   [4, KB]
            AttentionTile.Tile4<TOps, TV>(s, KB, qTile, D, 1, kt + j0, Tp, D, KB, accumulate: false);
            bool diagonal = j0 + KB - 1 > r0;
            for (int r = 0; r < 4; r++)
            {
                float* sr = s + r * KB;
                TV s0 = TOps.Load(sr), s1 = TOps.Load(sr + L), s2 = TOps.Load(sr + 2 * L), s3 = TOps.Load(sr + 3 * L);
                if (diagonal)
                {
                    int pos = Math.Min(r0 + r, last);
                    s0 = TOps.MaskAbove(s0, j0, pos);
                    s1 = TOps.MaskAbove(s1, j0 + L, pos);
                    s2 = TOps.MaskAbove(s2, j0 + 2 * L, pos);
                    s3 = TOps.MaskAbove(s3, j0 + 3 * L, pos);
                }
                float blockMax = TOps.MaxAcross(TOps.Max(TOps.Max(s0, s1), TOps.Max(s2, s3)));
                float mNew = MathF.Max(m[r], blockMax);
                float alpha = MathF.Exp(m[r] - mNew);
                TV mv = TOps.Broadcast(mNew);
                TV p0 = TOps.Exp(TOps.Sub(s0, mv)), p1 = TOps.Exp(TOps.Sub(s1, mv));
                TV p2 = TOps.Exp(TOps.Sub(s2, mv)), p3 = TOps.Exp(TOps.Sub(s3, mv));
                TOps.Store(sr, p0);
                TOps.Store(sr + L, p1);
                TOps.Store(sr + 2 * L, p2);
                TOps.Store(sr + 3 * L, p3);
                l[r] = l[r] * alpha + TOps.SumAcross(p0) + TOps.SumAcross(p1) + TOps.SumAcross(p2) + TOps.SumAcross(p3);
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
            float inv = 1f / l[r];
            float* dst = a.O + ((long)(b * T + i) * a.Hq + h) * D;
            for (int d = 0; d < D; d++) dst[d] = acc[r * Dp + d] * inv;
            a.Lse[((long)b * a.Hq + h) * T + i] = m[r] + MathF.Log(l[r]);
        }
    }
}
