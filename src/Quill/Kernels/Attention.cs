// Fused causal self-attention for training: Forward and Backward entry points. They check the arguments, pin the
// spans, pick the vector width (512, 256 or scalar) and split the work items across KernelThreads; the math lives
// in AttentionForwardKernel and AttentionBackwardKernel, the plain twin in AttentionReference.
// An optional AttentionMask narrows what each query sees (sliding window, document boundaries of packed rows) and
// soft-caps the scores; without one (or with a plain one) the kernels run their causal path unchanged.
// Does not handle: non-causal masks, dropout, attention bias; decode over a KV cache is ForwardCached
// (AttentionCached.cs).
// Glossary: B batch, T sequence length, Hq query heads, Hkv key/value heads (Hq % Hkv == 0; query head h reads kv
// head h / (Hq / Hkv)), D head size.
using System.Runtime.Intrinsics;

namespace Quill.Kernels;

/// <summary>Vector width a kernel runs at: Auto picks the widest the hardware accelerates.</summary>
internal enum AttentionWidth { Auto, Vector512, Vector256, Vector128, Scalar }

/// <summary>
/// Causal softmax(scale * Q K^T) V computed flash-style (online softmax over key blocks, no [T, T] matrix kept),
/// with grouped-query attention and strided inputs so q, k and v can be column slices of one fused buffer.
/// </summary>
public static partial class Attention
{
    /// <summary>
    /// Causal attention forward. Element (b, t, h, d) of q is q[(b*T + t)*qRowStride + h*D + d]; k and v likewise with
    /// their strides and Hkv heads. Writes o [B, T, Hq*D] (contiguous) and lse [B, Hq, T], the log-sum-exp of each
    /// query row's scaled scores, which Backward needs.
    /// </summary>
    public static void Forward(int B, int T, int Hq, int Hkv, int D, float scale,
        ReadOnlySpan<float> q, int qRowStride, ReadOnlySpan<float> k, int kRowStride, ReadOnlySpan<float> v, int vRowStride,
        Span<float> o,      // [B, T, Hq*D]
        Span<float> lse,    // [B, Hq, T]
        AttentionMask? mask = null)
        => ForwardCore(B, T, Hq, Hkv, D, scale, q, qRowStride, k, kRowStride, v, vRowStride, o, lse, KernelThreads.Count, AttentionWidth.Auto, mask);

    /// <summary>
    /// Causal attention backward from the forward's o and lse and the upstream gradient dO [B, T, Hq*D].
    /// dq, dk, dv use the layouts and strides of q, k, v and are overwritten (only their own columns are written,
    /// so they may be slices of one fused gradient buffer); dk and dv sum over the query heads sharing a kv head.
    /// </summary>
    public static void Backward(int B, int T, int Hq, int Hkv, int D, float scale,
        ReadOnlySpan<float> q, int qRowStride, ReadOnlySpan<float> k, int kRowStride, ReadOnlySpan<float> v, int vRowStride,
        ReadOnlySpan<float> o, ReadOnlySpan<float> lse, ReadOnlySpan<float> dO,
        Span<float> dq, Span<float> dk, Span<float> dv, AttentionMask? mask = null)
        => BackwardCore(B, T, Hq, Hkv, D, scale, q, qRowStride, k, kRowStride, v, vRowStride, o, lse, dO, dq, dk, dv,
            KernelThreads.Count, AttentionWidth.Auto, mask);

    internal static unsafe void ForwardCore(int B, int T, int Hq, int Hkv, int D, float scale,
        ReadOnlySpan<float> q, int qRowStride, ReadOnlySpan<float> k, int kRowStride, ReadOnlySpan<float> v, int vRowStride,
        Span<float> o, Span<float> lse, int threads, AttentionWidth width, AttentionMask? mask = null)
    {
        AttentionShape.Validate(B, T, Hq, Hkv, D, q.Length, qRowStride, k.Length, kRowStride, v.Length, vRowStride);
        AttentionShape.ValidateMask(mask, B, T);
        AttentionShape.RequireLength(nameof(o), o.Length, (long)B * T * Hq * D);
        AttentionShape.RequireLength(nameof(lse), lse.Length, (long)B * Hq * T);
        if (B == 0 || T == 0) return;
        width = Resolve(width);
        fixed (float* pq = q, pk = k, pv = v, po = o, plse = lse)
        fixed (int* doc = mask?.DocStarts)
        {
            var args = new AttentionArgs(B, T, Hq, Hkv, D, scale, pq, qRowStride, pk, kRowStride, pv, vRowStride,
                po, plse, null, null, null, null, mask?.Window ?? 0, doc, mask?.Softcap ?? 0);
            RunForward(args, threads, width);
        }
    }

    /// <summary>The forward kernel over every work item of args, on up to `threads` threads (width resolved).</summary>
    private static void RunForward(AttentionArgs args, int threads, AttentionWidth width)
    {
        int items = AttentionForwardKernel.ItemCount(args.B, args.QueryRows, args.Hq);
        // One item is QB query rows of one head: worth a thread hand-off once T * D is a few thousand.
        int minChunk = Math.Max(1, 4096 / Math.Max(1, Math.Min(args.T, AttentionForwardKernel.QB) * args.D));
        // guided claims, not fixed halves: a thread that starts late or is slowed by the host leaves its items to
        // the other (each item's output is its own, so who runs it never changes the result)
        WorkerPool.Guided(items, minChunk, threads, (s, e) =>
        {
            switch (width)
            {
                case AttentionWidth.Vector512: AttentionForwardKernel.Run<Vec512, Vector512<float>>(args, s, e); break;
                case AttentionWidth.Vector256: AttentionForwardKernel.Run<Vec256, Vector256<float>>(args, s, e); break;
                case AttentionWidth.Vector128: AttentionForwardKernel.Run<Vec128, Vector128<float>>(args, s, e); break;
                default: AttentionForwardKernel.Run<VecScalar, float>(args, s, e); break;
            }
        });
    }

    internal static unsafe void BackwardCore(int B, int T, int Hq, int Hkv, int D, float scale,
        ReadOnlySpan<float> q, int qRowStride, ReadOnlySpan<float> k, int kRowStride, ReadOnlySpan<float> v, int vRowStride,
        ReadOnlySpan<float> o, ReadOnlySpan<float> lse, ReadOnlySpan<float> dO,
        Span<float> dq, Span<float> dk, Span<float> dv, int threads, AttentionWidth width, AttentionMask? mask = null)
    {
        AttentionShape.Validate(B, T, Hq, Hkv, D, q.Length, qRowStride, k.Length, kRowStride, v.Length, vRowStride);
        AttentionShape.ValidateMask(mask, B, T);
        AttentionShape.RequireLength(nameof(o), o.Length, (long)B * T * Hq * D);
        AttentionShape.RequireLength(nameof(lse), lse.Length, (long)B * Hq * T);
        AttentionShape.RequireLength(nameof(dO), dO.Length, (long)B * T * Hq * D);
        AttentionShape.RequireStrided(nameof(dq), dq.Length, B * T, qRowStride, Hq * D);
        AttentionShape.RequireStrided(nameof(dk), dk.Length, B * T, kRowStride, Hkv * D);
        AttentionShape.RequireStrided(nameof(dv), dv.Length, B * T, vRowStride, Hkv * D);
        if (B == 0 || T == 0) return;
        width = Resolve(width);
        fixed (float* pq = q, pk = k, pv = v, po = o, plse = lse, pdo = dO, pdq = dq, pdk = dk, pdv = dv)
        fixed (int* doc = mask?.DocStarts)
        {
            var args = new AttentionArgs(B, T, Hq, Hkv, D, scale, pq, qRowStride, pk, kRowStride, pv, vRowStride,
                po, plse, pdo, pdq, pdk, pdv, mask?.Window ?? 0, doc, mask?.Softcap ?? 0);
            int items = AttentionBackwardKernel.ItemCount(B, Hkv);
            // One item is a whole (b, kv head): T * T / 2 * D * group multiply-adds, four products of them.
            int minChunk = (long)T * T * D * (Hq / Hkv) >= 1 << 15 ? 1 : items;
            WorkerPool.Guided(items, minChunk, threads, (s, e) =>
            {
                switch (width)
                {
                    case AttentionWidth.Vector512: AttentionBackwardKernel.Run<Vec512, Vector512<float>>(args, s, e); break;
                    case AttentionWidth.Vector256: AttentionBackwardKernel.Run<Vec256, Vector256<float>>(args, s, e); break;
                    case AttentionWidth.Vector128: AttentionBackwardKernel.Run<Vec128, Vector128<float>>(args, s, e); break;
                    default: AttentionBackwardKernel.Run<VecScalar, float>(args, s, e); break;
                }
            });
        }
    }

    internal static AttentionWidth Resolve(AttentionWidth width) => width switch
    {
        AttentionWidth.Auto when Vector512.IsHardwareAccelerated => AttentionWidth.Vector512,
        AttentionWidth.Auto when Vector256.IsHardwareAccelerated => AttentionWidth.Vector256,
        AttentionWidth.Auto when Vector128.IsHardwareAccelerated => AttentionWidth.Vector128,
        AttentionWidth.Auto => AttentionWidth.Scalar,
        _ => width,
    };
}
