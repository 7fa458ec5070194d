// Flash-style causal attention backward on the CPU, written once over IAttentionVector (512, 256 or scalar).
// Work item = (b, kv head): one thread owns dK and dV of that kv head (summed over the query heads that share it)
// and dQ of those query heads, so no two threads write the same gradient. Per item the keys are packed three ways
// (Kt [D, ld] for scores, K rows [Tp, Dp] for dQ, Vt [D, ld] for dP; ld >= Tp); per query head the scaled queries, dO and
// Di = dO_i . o_i are packed. Then for each key block of KB keys and each chunk of up to QB query rows at or below
// the diagonal, the probabilities are recomputed from the saved log-sum-exp (P = exp(S - lse)), and
//   dP = dO V^T, dS = P * (dP - Di), dQ += dS K, dV += P^T dO, dK += dS^T (scale Q)
// all through Tile4. No [T, T] matrix exists; P and dS live only for one [QB, KB] block. With an AttentionMask the
// recomputed scores are soft-capped (and dS multiplied by the cap's derivative 1 - tanh^2), keys below a row's lowest
// are masked, and chunks of rows that see none of a key block are skipped.
// Does not handle: non-causal attention, dropout; parallelism finer than (b, kv head); argument checks.
// Glossary: B batch, T sequence length, Hq query heads, Hkv kv heads, D head size, Dp = D rounded up to the lanes,
// Tp = T rounded up to KB, L lanes, KB keys per block, QB query rows per chunk, Di row dot of dO and o.
using System.Runtime.CompilerServices;

namespace Quill.Kernels;

internal static unsafe class AttentionBackwardKernel
{
    /// <summary>Query rows per chunk (the rows of one [QB, KB] block of P and dS).</summary>
    private const int QB = 64;

    public static int ItemCount(int B, int Hkv) => B * Hkv;

    /// <summary>Runs work items [start, end) on the calling thread.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run<TOps, TV>(in AttentionArgs a, int start, int end)
        where TOps : struct, IAttentionVector<TV> where TV : struct
    {
        int L = TOps.Lanes, KB = 4 * L;
        int T = a.T, D = a.D, Dp = AttentionTile.RoundUp(D, L), Tp = AttentionTile.RoundUp(T, KB);
        int ld = AttentionPack.Stagger(Tp);
        long rowsBuf = (long)Tp * Dp, colsBuf = (long)D * ld;
        float* scratch = AttentionScratch.Get(AttentionPack.CarvedSize(colsBuf, colsBuf, rowsBuf, 2 * rowsBuf,
            rowsBuf, rowsBuf, rowsBuf, QB * KB, QB * KB, Tp));
        float* kt = AttentionPack.Carve(ref scratch, colsBuf);        // [D, ld] keys transposed
        float* vt = AttentionPack.Carve(ref scratch, colsBuf);        // [D, ld] values transposed
        float* kp = AttentionPack.Carve(ref scratch, rowsBuf);        // [Tp, Dp] key rows
        float* dkAcc = AttentionPack.Carve(ref scratch, 2 * rowsBuf); // [Tp, Dp], then dvAcc [Tp, Dp] right after it
        float* dvAcc = dkAcc + rowsBuf;
        float* qp = AttentionPack.Carve(ref scratch, rowsBuf);        // [Tp, Dp] scale * q
        float* dop = AttentionPack.Carve(ref scratch, rowsBuf);       // [Tp, Dp] dO
        float* dqAcc = AttentionPack.Carve(ref scratch, rowsBuf);     // [Tp, Dp]
        float* p = AttentionPack.Carve(ref scratch, QB * KB);         // [QB, KB] probabilities
        float* ds = AttentionPack.Carve(ref scratch, QB * KB);        // [QB, KB] dP, then dS
        float* di = AttentionPack.Carve(ref scratch, Tp);             // [Tp] dO_i . o_i

        int group = a.Hq / a.Hkv;
        for (int item = start; item < end; item++)
        {
            int b = item / a.Hkv, kvh = item % a.Hkv;
            float* kSrc = a.K + (long)b * T * a.KStride + kvh * D, vSrc = a.V + (long)b * T * a.VStride + kvh * D;
            AttentionPack.Transposed(kSrc, a.KStride, T, D, 0, Tp, kt, ld, kp, Dp);   // kt and kp in one pass over K
            AttentionPack.Transposed(vSrc, a.VStride, T, D, 0, Tp, vt, ld);
            new Span<float>(dkAcc, checked((int)(2 * rowsBuf))).Clear();   // dkAcc and dvAcc are adjacent
            for (int h = kvh * group; h < (kvh + 1) * group; h++)
            {
                long row0 = (long)b * T;
                AttentionPack.Rows(a.Q + row0 * a.QStride + h * D, a.QStride, T, D, a.Scale, 0, Tp, qp, Dp);
                RowsAndDots(a.DO + (row0 * a.Hq + h) * D, a.O + (row0 * a.Hq + h) * D, a.Hq * D, T, D, Tp, dop, Dp, di);
                new Span<float>(dqAcc, checked((int)rowsBuf)).Clear();
                float* lse = a.Lse + ((long)b * a.Hq + h) * T;
                for (int j0 = 0; j0 < T; j0 += KB)
                {
                    int kLen = Math.Min(KB, T - j0);
                    for (int c0 = j0; c0 < T; c0 += QB)
                    {
                        if (a.HasLow && a.Lowest(b, c0) >= j0 + kLen) break; // this row and all later ones see none of these keys
                        Chunk<TOps, TV>(a, b, Dp, ld, j0, kLen, c0, Math.Min(T, c0 + QB), lse,
                            kt, vt, kp, qp, dop, di, dqAcc, dkAcc, dvAcc, p, ds);
                    }
                }
                for (int i = 0; i < T; i++)
                {
                    AttentionPack.PrefetchRow(a.DQ + (long)(b * T + i + AttentionPack.PrefetchAhead) * a.QStride + h * D, D);
                    AttentionPack.Scale(dqAcc + (long)i * Dp, a.DQ + (long)(b * T + i) * a.QStride + h * D, D, a.Scale);
                }
            }
            for (int j = 0; j < T; j++)
            {
                AttentionPack.PrefetchRow(a.DK + (long)(b * T + j + AttentionPack.PrefetchAhead) * a.KStride + kvh * D, D);
                AttentionPack.PrefetchRow(a.DV + (long)(b * T + j + AttentionPack.PrefetchAhead) * a.VStride + kvh * D, D);
                new ReadOnlySpan<float>(dkAcc + (long)j * Dp, D).CopyTo(new Span<float>(a.DK + (long)(b * T + j) * a.KStride + kvh * D, D));
                new ReadOnlySpan<float>(dvAcc + (long)j * Dp, D).CopyTo(new Span<float>(a.DV + (long)(b * T + j) * a.VStride + kvh * D, D));
            }
        }
    }

    // Key block [j0, j0 + kLen) against query rows [c0, c1) (c0 >= j0, a multiple of 4).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Chunk<TOps, TV>(in AttentionArgs a, int b, int Dp, int ld, int j0, int kLen, int c0, int c1, float* lse,
        float* kt, float* vt, float* kp, float* qp, float* dop, float* di,
        float* dqAcc, float* dkAcc, float* dvAcc, float* p, float* ds)
        where TOps : struct, IAttentionVector<TV> where TV : struct
    {
        int L = TOps.Lanes, KB = 4 * L, T = a.T, D = a.D;
        bool low = a.HasLow, capped = a.Softcap > 0;
        TV cap = TOps.Broadcast(a.Softcap), twoOverCap = TOps.Broadcast(capped ? 2f / a.Softcap : 0f), one = TOps.Broadcast(1f);
        for (int r0 = c0; r0 < c1; r0 += 4)
        {
            float* pr = p + (r0 - c0) * KB, dsr = ds + (r0 - c0) * KB;
            // Keys this tile can see: j0 .. r0+3. On the diagonal block only the vectors holding them are computed.
            int width = Math.Min(KB, AttentionTile.RoundUp(r0 + 4 - j0, L));
            // s = (scale Q) K^T into p, dP = dO V^T into ds   [4, width] each
            AttentionTile.Tile4<TOps, TV>(pr, KB, qp + (long)r0 * Dp, Dp, 1, kt + j0, ld, D, width, accumulate: false);
            AttentionTile.Tile4<TOps, TV>(dsr, KB, dop + (long)r0 * Dp, Dp, 1, vt + j0, ld, D, width, accumulate: false);
            bool masked = j0 + width - 1 > r0 || r0 + 3 >= T;
            bool below = low && a.Lowest(b, Math.Min(r0 + 3, T - 1)) > j0;
            for (int r = 0; r < 4; r++)
            {
                int i = r0 + r;
                int pos = i < T ? i : -1;          // rows past T mask every key: their P and dS are zero
                int first = below && i < T ? a.Lowest(b, i) : 0;
                TV lv = TOps.Broadcast(i < T ? lse[i] : 0f), dv = TOps.Broadcast(di[i]);
                float* prr = pr + r * KB, dsrr = dsr + r * KB;
                for (int c = 0; c < width; c += L)
                {
                    TV sv = TOps.Load(prr + c);
                    TV dcap = one;                 // d(capped score) / d(score) = 1 - tanh^2
                    if (capped)
                    {
                        TV t = AttentionSoftcap.Tanh<TOps, TV>(sv, twoOverCap);
                        sv = TOps.Mul(cap, t);
                        dcap = TOps.Sub(one, TOps.Mul(t, t));
                    }
                    if (masked) sv = TOps.MaskAbove(sv, j0 + c, pos);
                    if (below) sv = TOps.MaskBelow(sv, j0 + c, first);
                    TV pv = TOps.Exp(TOps.Sub(sv, lv));
                    TOps.Store(prr + c, pv);
                    TV dsv = TOps.Mul(pv, TOps.Sub(TOps.Load(dsrr + c), dv));
                    TOps.Store(dsrr + c, capped ? TOps.Mul(dsv, dcap) : dsv);
                }
            }
            // dQ[r0..r0+3] += dS K   (scale applied when dQ is written out)
            AttentionTile.Tile4<TOps, TV>(dqAcc + (long)r0 * Dp, Dp, dsr, KB, 1, kp + (long)j0 * Dp, Dp,
                Math.Min(kLen, r0 + 4 - j0), Dp, accumulate: true);
        }
        // dV[j] += sum_i P[i, j] dO_i ; dK[j] += sum_i dS[i, j] (scale q_i), four keys at a time over the chunk's
        // rows that can see them (i >= j0 + js; those rows' tiles computed these P and dS columns).
        for (int js = 0; js < kLen; js += 4)
        {
            int rs = Math.Max(c0, j0 + js);
            if (rs >= c1) break;
            long j = j0 + js;
            float* pa = p + (rs - c0) * KB + js, dsa = ds + (rs - c0) * KB + js;
            AttentionTile.Tile4<TOps, TV>(dvAcc + j * Dp, Dp, pa, 1, KB, dop + (long)rs * Dp, Dp, c1 - rs, Dp, accumulate: true);
            AttentionTile.Tile4<TOps, TV>(dkAcc + j * Dp, Dp, dsa, 1, KB, qp + (long)rs * Dp, Dp, c1 - rs, Dp, accumulate: true);
        }
    }

    // One pass over dO (rows `stride` apart), row by row while each is in L1: dop[i] = dO_i row-padded to Dp
    // (AttentionPack.Rows, which also asks for the rows ahead) and di[i] = dO_i . o_i for i < T, zero in [T, Tp).
    private static void RowsAndDots(float* dO, float* o, int stride, int T, int D, int Tp, float* dop, int Dp, float* di)
    {
        for (int i = 0; i < Tp; i++)
        {
            AttentionPack.Rows(dO, stride, T, D, 1f, i, i + 1, dop, Dp);
            if (i >= T)
            {
                di[i] = 0f;
                continue;
            }
            AttentionPack.PrefetchRow(o + (long)(i + AttentionPack.PrefetchAhead) * stride, D);
            di[i] = AttentionPack.Dot(dO + (long)i * stride, o + (long)i * stride, D);
        }
    }
}
