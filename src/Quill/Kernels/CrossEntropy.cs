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
    {
        CheckShapes(logits.Length, targets, n, v);
        ElementwiseMath.RequireLength(lse.Length, n, nameof(lse));
        if (n == 0) return 0;
        fixed (float* pl0 = logits, pe0 = lse)
        {
            float* pl = pl0, pe = pe0;
            if (!ElementwiseMath.ShouldSplit(n, 2L * v)) LseRows(pl, pe, v, 0, n);
            else KernelThreads.ParallelFor(n, ElementwiseMath.MinChunk(2L * v), (r0, r1) => LseRows(pl, pe, v, r0, r1));
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
    {
        CheckShapes(logits.Length, targets, n, v);
        ElementwiseMath.RequireLength(lse.Length, n, nameof(lse));
        ElementwiseMath.RequireLength(dlogits.Length, (long)n * v, nameof(dlogits));
        if (n == 0) return;
        fixed (float* pl0 = logits, pe0 = lse, pd0 = dlogits)
        fixed (int* pt0 = targets)
        {
            float* pl = pl0, pe = pe0, pd = pd0;
            int* pt = pt0;
            if (!ElementwiseMath.ShouldSplit(n, v)) GradRows(pl, pt, pe, scale, pd, v, 0, n);
            else KernelThreads.ParallelFor(n, ElementwiseMath.MinChunk(v), (r0, r1) => GradRows(pl, pt, pe, scale, pd, v, r0, r1));
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

    private static void LseRows(float* logits, float* lse, int v, int r0, int r1)
    {
        for (int r = r0; r < r1; r++)
        {
            float* xr = logits + (long)r * v;  // [V]
            float max = ElementwiseMath.Max(xr, v);
            lse[r] = max + MathF.Log(ElementwiseMath.SumExp(xr, max, v));
        }
    }

    private static void GradRows(float* logits, int* targets, float* lse, float scale, float* dlogits, int v, int r0, int r1)
    {
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
            int j = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                var vs = Vector512.Create(shift);
                var vk = Vector512.Create(scale);
                for (; j <= v - 16; j += 16) (ElementwiseMath.Exp(Vector512.Load(xr + j) - vs) * vk).Store(dr + j);
            }
            else if (Vector256.IsHardwareAccelerated)
            {
                var vs = Vector256.Create(shift);
                var vk = Vector256.Create(scale);
                for (; j <= v - 8; j += 8) (ElementwiseMath.Exp(Vector256.Load(xr + j) - vs) * vk).Store(dr + j);
            }
            for (; j < v; j++) dr[j] = MathF.Exp(xr[j] - shift) * scale;
            dr[t] -= scale;
        }
    }
}
