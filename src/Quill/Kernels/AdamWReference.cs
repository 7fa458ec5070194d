// Plain reference twin of AdamW: the same float operations one element at a time, one thread (the optimizer is
// specified by PyTorch's float rounding, so the reference keeps float, not double). Does not handle: speed.
// Glossary: L elements.
namespace Quill.Kernels;

/// <summary>Reference AdamW step (same signature as <see cref="AdamW"/>).</summary>
public static class AdamWReference
{
    public static void Step(
        Span<float> param,         // [L]
        ReadOnlySpan<float> grad,  // [L]
        Span<float> m,             // [L]
        Span<float> v,             // [L]
        float lr, float beta1, float beta2, float eps, float weightDecay, int step, float gradScale)
    {
        var k = AdamW.Factors.Compute(param.Length, grad.Length, m.Length, v.Length, lr, beta1, beta2, eps, weightDecay, step, gradScale);
        for (int i = 0; i < param.Length; i++) AdamW.StepOne(ref param[i], grad[i], ref m[i], ref v[i], k);
    }
}
