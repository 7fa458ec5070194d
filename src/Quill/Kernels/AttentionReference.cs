// Plain reference twin of Attention: causal softmax(scale * Q K^T) V with the [T, T] score matrix of each
// (batch, head) materialized, plain loops and double accumulation. It is the math the optimized kernels are
// tested against, not something to run in training: it allocates per (b, h) and does every multiply-add in turn.
// It recomputes everything it needs from q, k, v (Backward ignores the o and lse it is given, so that a wrong
// saved lse in the optimized path cannot hide behind the reference).
// An AttentionMask hides keys below each query's lowest visible one and soft-caps the scores, as in the kernels.
// Does not handle: non-causal masks, dropout, attention bias.
// Glossary: B batch, T sequence length, Hq query heads, Hkv key/value heads (query head h reads kv head
// h / (Hq / Hkv)), D head size, i query position, j key position.
namespace Quill.Kernels;

/// <summary>
/// Reference causal self-attention: same signatures and layouts as <see cref="Attention"/>, straightforward loops
/// in double precision. Used by the tests as ground truth.
/// </summary>
public static class AttentionReference
{
    /// <summary>Causal attention forward; see <see cref="Attention.Forward"/> for the layouts.</summary>
    public static void Forward(int B, int T, int Hq, int Hkv, int D, float scale,
        ReadOnlySpan<float> q, int qRowStride, ReadOnlySpan<float> k, int kRowStride, ReadOnlySpan<float> v, int vRowStride,
        Span<float> o, Span<float> lse, AttentionMask? mask = null)
    {
        AttentionShape.Validate(B, T, Hq, Hkv, D, q.Length, qRowStride, k.Length, kRowStride, v.Length, vRowStride);
        AttentionShape.ValidateMask(mask, B, T);
        AttentionShape.RequireLength(nameof(o), o.Length, (long)B * T * Hq * D);
        AttentionShape.RequireLength(nameof(lse), lse.Length, (long)B * Hq * T);
        int group = Hq / Hkv;
        var p = new double[T * T];   // [T, T] softmax probabilities of one (b, h)
        var rowLse = new double[T];
        for (int b = 0; b < B; b++)
        {
            for (int h = 0; h < Hq; h++)
            {
                Probabilities(b, h, h / group, T, D, scale, q, qRowStride, k, kRowStride, p, rowLse, mask, null);
                for (int i = 0; i < T; i++)
                {
                    lse[(b * Hq + h) * T + i] = (float)rowLse[i];
                    for (int d = 0; d < D; d++)
                    {
                        double acc = 0;
                        for (int j = 0; j <= i; j++) acc += p[i * T + j] * v[(b * T + j) * vRowStride + h / group * D + d];
                        o[(b * T + i) * Hq * D + h * D + d] = (float)acc;
                    }
                }
            }
        }
    }

    /// <summary>Causal attention backward; see <see cref="Attention.Backward"/>. o and lse are not read.</summary>
    public static void Backward(int B, int T, int Hq, int Hkv, int D, float scale,
        ReadOnlySpan<float> q, int qRowStride, ReadOnlySpan<float> k, int kRowStride, ReadOnlySpan<float> v, int vRowStride,
        ReadOnlySpan<float> o, ReadOnlySpan<float> lse, ReadOnlySpan<float> dO,
        Span<float> dq, Span<float> dk, Span<float> dv, AttentionMask? mask = null)
    {
        AttentionShape.Validate(B, T, Hq, Hkv, D, q.Length, qRowStride, k.Length, kRowStride, v.Length, vRowStride);
        AttentionShape.ValidateMask(mask, B, T);
        AttentionShape.RequireLength(nameof(o), o.Length, (long)B * T * Hq * D);
        AttentionShape.RequireLength(nameof(lse), lse.Length, (long)B * Hq * T);
        AttentionShape.RequireLength(nameof(dO), dO.Length, (long)B * T * Hq * D);
        AttentionShape.RequireStrided(nameof(dq), dq.Length, B * T, qRowStride, Hq * D);
        AttentionShape.RequireStrided(nameof(dk), dk.Length, B * T, kRowStride, Hkv * D);
        AttentionShape.RequireStrided(nameof(dv), dv.Length, B * T, vRowStride, Hkv * D);
        int group = Hq / Hkv;
        var p = new double[T * T];    // [T, T]
        var ds = new double[T * T];   // [T, T] gradient of the scaled scores
        var rowLse = new double[T];
        var dcap = new double[T * T];  // [T, T] derivative of the soft-capped score by the scaled score (1 without a cap)
        var gq = new double[B * T * Hq * D];    // [B, T, Hq*D]
        var gk = new double[B * T * Hkv * D];   // [B, T, Hkv*D]
        var gv = new double[B * T * Hkv * D];   // [B, T, Hkv*D]
        for (int b = 0; b < B; b++)
        {
            for (int h = 0; h < Hq; h++)
            {
                int kvh = h / group;
                Probabilities(b, h, kvh, T, D, scale, q, qRowStride, k, kRowStride, p, rowLse, mask, dcap);
                for (int i = 0; i < T; i++)
                {
                    int oRow = (b * T + i) * Hq * D + h * D;
                    // dP[i, j] = dO_i . v_j ; the softmax backward needs sum_j P[i, j] dP[i, j] = dO_i . o_i.
                    double rowDot = 0;
                    for (int j = 0; j <= i; j++)
                    {
                        double dp = 0;
                        for (int d = 0; d < D; d++) dp += (double)dO[oRow + d] * v[(b * T + j) * vRowStride + kvh * D + d];
                        ds[i * T + j] = dp;
                        rowDot += p[i * T + j] * dp;
                    }
                    for (int j = 0; j <= i; j++) ds[i * T + j] = p[i * T + j] * (ds[i * T + j] - rowDot) * dcap[i * T + j];
                }
                for (int i = 0; i < T; i++)
                {
                    for (int j = 0; j <= i; j++)
                    {
                        double pij = p[i * T + j], dsij = ds[i * T + j] * scale;
                        for (int d = 0; d < D; d++)
                        {
                            gv[(b * T + j) * Hkv * D + kvh * D + d] += pij * dO[(b * T + i) * Hq * D + h * D + d];
                            gq[(b * T + i) * Hq * D + h * D + d] += dsij * k[(b * T + j) * kRowStride + kvh * D + d];
                            gk[(b * T + j) * Hkv * D + kvh * D + d] += dsij * q[(b * T + i) * qRowStride + h * D + d];
                        }
                    }
                }
            }
        }
        for (int row = 0; row < B * T; row++)
        {
            for (int c = 0; c < Hq * D; c++) dq[row * qRowStride + c] = (float)gq[row * Hq * D + c];
            for (int c = 0; c < Hkv * D; c++)
            {
                dk[row * kRowStride + c] = (float)gk[row * Hkv * D + c];
                dv[row * vRowStride + c] = (float)gv[row * Hkv * D + c];
            }
        }
    }

    /// <summary>Decode-time attention over a KV cache; see <see cref="Attention.ForwardCached"/> for the layouts.</summary>
    public static void ForwardCached(int Tq, int pos0, int Hq, int Hkv, int D, float scale,
        ReadOnlySpan<float> q, int qRowStride, ReadOnlySpan<float> kCache, ReadOnlySpan<float> vCache, int maxT,
        Span<float> o, int window = 0, float softcap = 0)
    {
        AttentionShape.ValidateCached(Tq, pos0, Hq, Hkv, D, q.Length, qRowStride, kCache.Length, vCache.Length, maxT, o.Length);
        int group = Hq / Hkv;
        var s = new double[pos0 + Tq];
        for (int t = 0; t < Tq; t++)
        {
            int n = pos0 + t + 1;   // keys visible to this query: positions [lo, pos0 + t]
            int lo = window > 0 ? Math.Max(0, n - window) : 0;
            for (int h = 0; h < Hq; h++)
            {
                int kvBase = h / group * maxT * D;
                double max = double.NegativeInfinity;
                for (int j = lo; j < n; j++)
                {
                    double dot = 0;
                    for (int d = 0; d < D; d++) dot += (double)q[t * qRowStride + h * D + d] * kCache[kvBase + j * D + d];
                    s[j] = softcap > 0 ? softcap * Math.Tanh(dot * scale / softcap) : dot * scale;
                    max = Math.Max(max, s[j]);
                }
                double sum = 0;
                for (int j = lo; j < n; j++) sum += s[j] = Math.Exp(s[j] - max);
                for (int d = 0; d < D; d++)
                {
                    double acc = 0;
                    for (int j = lo; j < n; j++) acc += s[j] * vCache[kvBase + j * D + d];
                    o[t * Hq * D + h * D + d] = (float)(acc / sum);
                }
            }
        }
    }

    // Softmax probabilities p[i, j] (zero outside [Lowest(i), i]) and log-sum-exp of one (b, h), in double; dcap (when
    // given) receives d(capped score) / d(scaled score) per visible pair.
    private static void Probabilities(int b, int h, int kvh, int T, int D, float scale,
        ReadOnlySpan<float> q, int qRowStride, ReadOnlySpan<float> k, int kRowStride, double[] p, double[] rowLse,
        AttentionMask? mask, double[]? dcap)
    {
        Array.Clear(p);
        double cap = mask?.Softcap ?? 0;
        for (int i = 0; i < T; i++)
        {
            int lo = mask?.Lowest(b, i, T) ?? 0;
            double max = double.NegativeInfinity;
            for (int j = lo; j <= i; j++)
            {
                double dot = 0;
                for (int d = 0; d < D; d++) dot += (double)q[(b * T + i) * qRowStride + h * D + d] * k[(b * T + j) * kRowStride + kvh * D + d];
                double sc = dot * scale;
                if (cap > 0)
                {
                    double t = Math.Tanh(sc / cap);
                    sc = cap * t;
                    if (dcap != null) dcap[i * T + j] = 1 - t * t;
                }
                else if (dcap != null) dcap[i * T + j] = 1;
                p[i * T + j] = sc;
                max = Math.Max(max, sc);
            }
            double sum = 0;
            for (int j = lo; j <= i; j++) sum += p[i * T + j] = Math.Exp(p[i * T + j] - max);
            for (int j = lo; j <= i; j++) p[i * T + j] /= sum;
            rowLse[i] = max + Math.Log(sum);
        }
    }
}
