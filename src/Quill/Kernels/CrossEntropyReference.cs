// Plain reference twin of CrossEntropy: obvious loops in double, one thread. Does not handle: speed.
// Glossary: N rows (positions), V vocabulary size.
namespace Quill.Kernels;

/// <summary>Reference softmax cross-entropy (same signatures as <see cref="CrossEntropy"/>).</summary>
public static class CrossEntropyReference
{
    public static double Forward(
        ReadOnlySpan<float> logits,  // [N, V]
        ReadOnlySpan<int> targets,   // [N]
        Span<float> lse,             // [N]
        int n, int v)
    {
        CrossEntropy.CheckTargets(targets, n, v);
        double loss = 0;
        for (int i = 0; i < n; i++)
        {
            double max = double.NegativeInfinity;
            for (int j = 0; j < v; j++) max = Math.Max(max, logits[i * v + j]);
            double sum = 0;
            for (int j = 0; j < v; j++) sum += Math.Exp(logits[i * v + j] - max);
            double l = max + Math.Log(sum);
            lse[i] = (float)l;
            if (targets[i] >= 0) loss += l - logits[i * v + targets[i]];
        }
        return loss;
    }

    public static void Backward(
        ReadOnlySpan<float> logits,  // [N, V]
        ReadOnlySpan<int> targets,   // [N]
        ReadOnlySpan<float> lse,     // [N]
        float scale,
        Span<float> dlogits,         // [N, V] overwritten
        int n, int v)
    {
        CrossEntropy.CheckTargets(targets, n, v);
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < v; j++)
            {
                int t = targets[i];
                dlogits[i * v + j] = t < 0 ? 0f : (float)(scale * (Math.Exp((double)logits[i * v + j] - lse[i]) - (j == t ? 1.0 : 0.0)));
            }
        }
    }
}
