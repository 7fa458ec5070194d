// Flash-style causal attention backward on the CPU, written once over IAttentionVector (512, 256 or scalar).
// Work item = (b, kv head): one thread owns dK and dV of that kv head (summed over the query heads that share it)
// and dQ of those query heads, so no two threads write the same gradient. Per item the keys are packed three ways
// (Kt [D, Tp] for scores, K rows [Tp, Dp] for dQ, Vt [D, Tp] for dP); per query head the scaled queries, dO and
// Di = dO_i . o_i are packed. Then for each key block of KB keys and each chunk of up to QB query rows at or below
// the diagonal, the probabilities are recomputed from the saved log-sum-exp (P = exp(S - lse)), and
//   dP = dO V^T, dS = P * (dP - Di), dQ += dS K, dV += P^T dO, dK += dS^T (scale Q)
// all through Tile4. No [T, T] matrix exists; P and dS live only for one [QB, KB] block.
// Does not handle: non-causal attention, dropout; parallelism finer than (b, kv head); argument checks.
// Glossary: B batch, T sequence length, Hq query heads, Hkv kv heads, D head size, Dp = D rounded up to the lanes,
// Tp = T rounded up to KB, L lanes, KB keys per block, QB query rows per chunk, Di row dot of dO and o.
namespace Quill.Kernels;

internal static unsafe class AttentionBackwardKernel
{
    /// <summary>Query rows per chunk (the rows of one [QB, KB] block of P and dS).</summary>
    private const int QB = 64;

    public static int ItemCount(int B, int Hkv) => B * Hkv;

    /// <summary>Runs work items [start, end) on the calling thread.</summary>
    public static void Run<TOps, TV>(in AttentionArgs a, int start, int end)
        where TOps : struct, IAttentionVector<TV> where TV : struct
    {
        int L = TOps.Lanes, KB = 4 * L;
        int T = a.T, D = a.D, Dp = AttentionTile.RoundUp(D, L), Tp = AttentionTile.RoundUp(T, KB);
        long rowsBuf = (long)Tp * Dp, colsBuf = (long)D * Tp;
        float* kt = AttentionScratch.Get(3 * colsBuf + 6 * rowsBuf + 2L * QB * KB + Tp + 64);
        float* vt = kt + colsBuf;           // [D, Tp]
        float* kp = vt + colsBuf;           // [Tp, Dp]
        float* dkAcc = kp + rowsBuf;        // [Tp, Dp]
        float* dvAcc = dkAcc + rowsBuf;     // [Tp, Dp]
        float* qp = dvAcc + rowsBuf;        // [Tp, Dp] scale * q
        float* dop = qp + rowsBuf;          // [Tp, Dp]
        float* dqAcc = dop + rowsBuf;       // [Tp, Dp]
        float* p = dqAcc + rowsBuf;         // [QB, KB]
        float* ds = p + QB * KB;            // [QB, KB]
        float* di = ds + QB * KB;           // [Tp]

        int group = a.Hq / a.Hkv;
        for (int item = start; item < end; item++)
        {
            int b = item / a.Hkv, kvh = item % a.Hkv;
            PackKeys(a, b, kvh, Tp, Dp, kt, vt, kp);
            new Span<float>(dkAcc, checked((int)(2 * rowsBuf))).Clear();   // dkAcc and dvAcc are adjacent
            for (int h = kvh * group; h < (kvh + 1) * group; h++)
            {
                PackQueries(a, b, h, Tp, Dp, qp, dop, di);
                new Span<float>(dqAcc, checked((int)rowsBuf)).Clear();
                float* lse = a.Lse + ((long)b * a.Hq + h) * T;
                for (int j0 = 0; j0 < T; j0 += KB)
                {
                    int kLen = Math.Min(KB, T - j0);
                    for (int c0 = j0; c0 < T; c0 += QB)
                        Chunk<TOps, TV>(T, D, Dp, Tp, j0, kLen, c0, Math.Min(T, c0 + QB), lse,
                            kt, vt, kp, qp, dop, di, dqAcc, dkAcc, dvAcc, p, ds);
                }
                for (int i = 0; i < T; i++)
                {
                    float* dst = a.DQ + (long)(b * T + i) * a.QStride + h * D;
                    for (int d = 0; d < D; d++) dst[d] = dqAcc[(long)i * Dp + d] * a.Scale;
                }
            }
            for (int j = 0; j < T; j++)
            {
                new ReadOnlySpan<float>(dkAcc + (long)j * Dp, D).CopyTo(new Span<float>(a.DK + (long)(b * T + j) * a.KStride + kvh * D, D));
                new ReadOnlySpan<float>(dvAcc + (long)j * Dp, D).CopyTo(new Span<float>(a.DV + (long)(b * T + j) * a.VStride + kvh * D, D));
            }
        }
    }

    // Key block [j0, j0 + kLen) against query rows [c0, c1) (c0 >= j0, a multiple of 4).
    private static void Chunk<TOps, TV>(int T, int D, int Dp, int Tp, int j0, int kLen, int c0, int c1, float* lse,
        float* kt, float* vt, float* kp, float* qp, float* dop, float* di,
        float* dqAcc, float* dkAcc, float* dvAcc, float* p, float* ds)
        where TOps : struct, IAttentionVector<TV> where TV : struct
    {
        int L = TOps.Lanes, KB = 4 * L;
        for (int r0 = c0; r0 < c1; r0 += 4)
        {
            float* pr = p + (r0 - c0) * KB, dsr = ds + (r0 - c0) * KB;
            // s = (scale Q) K^T into p, dP = dO V^T into ds   [4, KB] each
            AttentionTile.Tile4<TOps, TV>(pr, KB, qp + (long)r0 * Dp, Dp, 1, kt + j0, Tp, D, KB, accumulate: false);
            AttentionTile.Tile4<TOps, TV>(dsr, KB, dop + (long)r0 * Dp, Dp, 1, vt + j0, Tp, D, KB, accumulate: false);
            bool masked = j0 + KB - 1 > r0 || r0 + 3 >= T;
            for (int r = 0; r < 4; r++)
            {
                int i = r0 + r;
                int pos = i < T ? i : -1;          // rows past T mask every key: their P and dS are zero
                TV lv = TOps.Broadcast(i < T ? lse[i] : 0f), dv = TOps.Broadcast(di[i]);
                float* prr = pr + r * KB, dsrr = dsr + r * KB;
                for (int c = 0; c < 4; c++)
                {
                    TV sv = TOps.Load(prr + c * L);
                    if (masked) sv = TOps.MaskAbove(sv, j0 + c * L, pos);
                    TV pv = TOps.Exp(TOps.Sub(sv, lv));
                    TOps.Store(prr + c * L, pv);
                    TOps.Store(dsrr + c * L, TOps.Mul(pv, TOps.Sub(TOps.Load(dsrr + c * L), dv)));
                }
            }
            // dQ[r0..r0+3] += dS K   (scale applied when dQ is written out)
            AttentionTile.Tile4<TOps, TV>(dqAcc + (long)r0 * Dp, Dp, dsr, KB, 1, kp + (long)j0 * Dp, Dp, kLen, Dp, accumulate: true);
        }
        // dV[j] += sum_i P[i, j] dO_i ; dK[j] += sum_i dS[i, j] (scale q_i), four keys at a time over the chunk's rows.
        int rows = c1 - c0;
        for (int js = 0; js < kLen; js += 4)
        {
            long j = j0 + js;
            AttentionTile.Tile4<TOps, TV>(dvAcc + j * Dp, Dp, p + js, 1, KB, dop + (long)c0 * Dp, Dp, rows, Dp, accumulate: true);
            AttentionTile.Tile4<TOps, TV>(dkAcc + j * Dp, Dp, ds + js, 1, KB, qp + (long)c0 * Dp, Dp, rows, Dp, accumulate: true);
        }
    }

    // Keys of (b, kvh): kt [D, Tp] and vt [D, Tp] transposed, kp [Tp, Dp] rows; padding (j >= T, d >= D) is zero.
    private static void PackKeys(in AttentionArgs a, int b, int kvh, int Tp, int Dp, float* kt, float* vt, float* kp)
    {
        int T = a.T, D = a.D;
        new Span<float>(kp, checked(Tp * Dp)).Clear();
        for (int d = 0; d < D; d++)
        {
            new Span<float>(kt + (long)d * Tp + T, Tp - T).Clear();
            new Span<float>(vt + (long)d * Tp + T, Tp - T).Clear();
        }
        for (int j = 0; j < T; j++)
        {
            float* kSrc = a.K + (long)(b * T + j) * a.KStride + kvh * D;
            float* vSrc = a.V + (long)(b * T + j) * a.VStride + kvh * D;
            for (int d = 0; d < D; d++)
            {
                kt[(long)d * Tp + j] = kSrc[d];
                vt[(long)d * Tp + j] = vSrc[d];
            }
            new ReadOnlySpan<float>(kSrc, D).CopyTo(new Span<float>(kp + (long)j * Dp, D));
        }
    }

    // Query head h of batch b: qp = scale * q, dop = dO (rows [Tp, Dp], zero padded) and di[i] = dO_i . o_i.
    private static void PackQueries(in AttentionArgs a, int b, int h, int Tp, int Dp, float* qp, float* dop, float* di)
    {
        int T = a.T, D = a.D;
        new Span<float>(qp, checked(Tp * Dp)).Clear();
        new Span<float>(dop, checked(Tp * Dp)).Clear();
        new Span<float>(di, Tp).Clear();
        for (int i = 0; i < T; i++)
        {
            float* qSrc = a.Q + (long)(b * T + i) * a.QStride + h * D;
            long oRow = ((long)(b * T + i) * a.Hq + h) * D;
            float* qDst = qp + (long)i * Dp, doDst = dop + (long)i * Dp;
            float dot = 0;
            for (int d = 0; d < D; d++)
            {
                qDst[d] = qSrc[d] * a.Scale;
                doDst[d] = a.DO[oRow + d];
                dot += a.DO[oRow + d] * a.O[oRow + d];
            }
            di[i] = dot;
        }
    }
}
