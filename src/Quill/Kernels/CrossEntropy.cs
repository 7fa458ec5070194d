// Cross-entropy fused with log-softmax, forward and backward side by side.
// Forward: lse[i] = log sum_j exp(logits[i, j]) (for every row) and the returned loss is the SUM over kept rows
// (target >= 0) of lse[i] - logits[i, target[i]], accumulated in double in row order.
// Backward: OVERWRITES dlogits[i, :] with scale * (softmax(logits[i, :]) - onehot(target[i])) for kept rows and 0
// for ignored rows (target < 0); scale is e.g. 1/count for a mean loss.
// Rows are split across threads; every row is computed by one thread, so results do not depend on the thread count.
// Does not handle: label smoothing, class weights, z-loss, or soft targets.
// Glossary: N rows (positions), V vocabulary size.
using System.Runtime.Intrinsics;

namespace Quill.Kernels;

/// <summary>Softmax cross-entropy over rows of V logits with integer targets (negative targets are ignored).</summary>
public static unsafe class CrossEntropy
{
    /// <summary>Writes the per-row log-sum-exp and returns the summed negative log-likelihood of the kept rows.</summary>
    public static double Forward(
        ReadOnlySpan<float> logits,  // [N, V]
        ReadOnlySpan<int> targets,   // [N]
        Span<float> lse,             // [N]
        int n, int v)
        => Forward(logits, targets, lse, n, v, KernelWidth.Auto);

    /// <summary>Forward at a chosen vector width (tests pin each one).</summary>
    internal static double Forward(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, Span<float> lse, int n, int v, KernelWidth width)
    {
        CheckShapes(logits.Length, targets, n, v);
        ElementwiseMath.RequireLength(lse.Length, n, nameof(lse));
        if (n == 0) return 0;
        var w = KernelWidths.Resolve(width);
        fixed (float* pl0 = logits, pe0 = lse)
        {
            float* pl = pl0, pe = pe0;
            if (!ElementwiseMath.ShouldSplit(n, 2L * v)) LseRows(w, pl, pe, v, 0, n);
            else KernelThreads.ParallelFor(n, ElementwiseMath.MinChunk(2L * v), (r0, r1) => LseRows(w, pl, pe, v, r0, r1));
        }
        double loss = 0;
        for (int i = 0; i < n; i++)
        {
            int t = targets[i];
            if (t >= 0) loss += (double)lse[i] - logits[i * v + t];
        }
        return loss;
    }

    /// <summary>Overwrites dlogits with scale * (softmax - onehot) for kept rows and 0 for ignored rows.</summary>
    public static void Backward(
        ReadOnlySpan<float> logits,  // [N, V]
        ReadOnlySpan<int> targets,   // [N]
        ReadOnlySpan<float> lse,     // [N]
        float scale,
        Span<float> dlogits,         // [N, V] overwritten
        int n, int v)
        => Backward(logits, targets, lse, scale, dlogits, n, v, KernelWidth.Auto);

    /// <summary>Backward at a chosen vector width (tests pin each one).</summary>
    internal static void Backward(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, ReadOnlySpan<float> lse, float scale,
        Span<float> dlogits, int n, int v, KernelWidth width)
    {
        CheckShapes(logits.Length, targets, n, v);
        ElementwiseMath.RequireLength(lse.Length, n, nameof(lse));
        ElementwiseMath.RequireLength(dlogits.Length, (long)n * v, nameof(dlogits));
        if (n == 0) return;
        var w = KernelWidths.Resolve(width);
        fixed (float* pl0 = logits, pe0 = lse, pd0 = dlogits)
        fixed (int* pt0 = targets)
        {
            float* pl = pl0, pe = pe0, pd = pd0;
            int* pt = pt0;
            if (!ElementwiseMath.ShouldSplit(n, v)) GradRows(w, pl, pt, pe, scale, pd, v, 0, n);
            else KernelThreads.ParallelFor(n, ElementwiseMath.MinChunk(v), (r0, r1) => GradRows(w, pl, pt, pe, scale, pd, v, r0, r1));
        }
    }

    /// <summary>Throws QuillException for a target at or beyond the vocabulary size (negative targets mean "ignore").</summary>
    internal static void CheckTargets(ReadOnlySpan<int> targets, int n, int v)
    {
        for (int i = 0; i < n; i++)
        {
            if (targets[i] >= v)
            {
                throw new QuillException(
                    $"Cross-entropy target token id {targets[i]} at position {i} is outside the vocabulary of {v} tokens; " +
                    "the data was tokenized with a larger vocabulary than the model's vocab_size (retokenize or raise vocab_size).");
            }
        }
    }

    private static void CheckShapes(int logitsLength, ReadOnlySpan<int> targets, int n, int v)
    {
        ElementwiseMath.RequireNonNegative(n, nameof(n));
        if (v <= 0) throw new ArgumentOutOfRangeException(nameof(v), v, "The vocabulary size must be positive.");
        ElementwiseMath.RequireLength(logitsLength, (long)n * v, "logits");
        ElementwiseMath.RequireLength(targets.Length, n, nameof(targets));
        CheckTargets(targets, n, v);
    }

    private static void LseRows(KernelWidth w, float* logits, float* lse, int v, int r0, int r1)
    {
        switch (w)
        {
            case KernelWidth.Vector512: LseRows<Vec512, Vector512<float>>(logits, lse, v, r0, r1); break;
            case KernelWidth.Vector256: LseRows<Vec256, Vector256<float>>(logits, lse, v, r0, r1); break;
            case KernelWidth.Vector128: LseRows<Vec128, Vector128<float>>(logits, lse, v, r0, r1); break;
            default: LseRows<VecScalar, float>(logits, lse, v, r0, r1); break;
        }
    }

    private static void LseRows<TOps, TV>(float* logits, float* lse, int v, int r0, int r1) where TOps : IKernelVector<TV> where TV : struct
    {
        for (int r = r0; r < r1; r++)
        {
            float* xr = logits + (long)r * v;  // [V]
            float max = ElementwiseMath.Max<TOps, TV>(xr, v);
            lse[r] = max + MathF.Log(ElementwiseMath.SumExp<TOps, TV>(xr, max, v));
        }
    }

    private static void GradRows(KernelWidth w, float* logits, int* targets, float* lse, float scale, float* dlogits, int v, int r0, int r1)
    {
        switch (w)
        {
            case KernelWidth.Vector512: GradRows<Vec512, Vector512<float>>(logits, targets, lse, scale, dlogits, v, r0, r1); break;
            case KernelWidth.Vector256: GradRows<Vec256, Vector256<float>>(logits, targets, lse, scale, dlogits, v, r0, r1); break;
            case KernelWidth.Vector128: GradRows<Vec128, Vector128<float>>(logits, targets, lse, scale, dlogits, v, r0, r1); break;
            default: GradRows<VecScalar, float>(logits, targets, lse, scale, dlogits, v, r0, r1); break;
        }
    }

    private static void GradRows<TOps, TV>(float* logits, int* targets, float* lse, float scale, float* dlogits, int v, int r0, int r1)
        where TOps : IKernelVector<TV> where TV : struct
    {
        int l = TOps.Lanes;
        var vk = TOps.Broadcast(scale);
        for (int r = r0; r < r1; r++)
        {
            float* xr = logits + (long)r * v;   // [V]
            float* dr = dlogits + (long)r * v;  // [V]
            int t = targets[r];
            if (t < 0)
            {
                new Span<float>(dr, v).Clear();
                continue;
            }
            float shift = lse[r];
            var vs = TOps.Broadcast(shift);
            int j = 0;
            for (; j <= v - l; j += l) TOps.Store(dr + j, TOps.Mul(TOps.ExpFull(TOps.Sub(TOps.Load(xr + j), vs)), vk));
            for (; j < v; j++) dr[j] = MathF.Exp(xr[j] - shift) * scale;
            dr[t] -= scale;
        }
    }
}
