// AdamW with decoupled weight decay, one step over one parameter tensor, in the same operation order and float
// rounding as PyTorch's single-tensor (foreach=False) torch.optim.AdamW:
//   g = grad * gradScale; p *= 1 - lr*wd; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;
//   p += (-lr / (1 - b1^step)) * m / (sqrt(v) / sqrt(1 - b2^step) + eps).
// Both moment updates are fused multiply-adds, as PyTorch's vectorized CPU kernels compute them (m: fmadd in add
// with alpha; v: addcmul, contracted by the compiler), which makes the fixture steps match torch bit for bit.
// The scalar factors are computed in double from the shortest decimal form of each float hyper-parameter (0.9f is
// taken as 0.9, as Python would hold it) and rounded to float once, as PyTorch does with Python scalars.
// Large tensors are split across threads in fixed blocks; every element's update is independent.
// Does not handle: AMSGrad, maximize, or fused multi-tensor steps (call once per tensor).
// Glossary: L elements.
using System.Globalization;
using System.Runtime.Intrinsics;

namespace Quill.Kernels;

/// <summary>One AdamW step over a parameter tensor and its moment buffers.</summary>
public static unsafe class AdamW
{
    /// <summary>Updates param, m and v in place from grad (scaled by gradScale first, e.g. for clipping). step counts from 1.</summary>
    public static void Step(
        Span<float> param,         // [L]
        ReadOnlySpan<float> grad,  // [L]
        Span<float> m,             // [L]
        Span<float> v,             // [L]
        float lr, float beta1, float beta2, float eps, float weightDecay, int step, float gradScale)
        => Step(param, grad, m, v, lr, beta1, beta2, eps, weightDecay, step, gradScale, KernelWidth.Auto);

    /// <summary>Step at a chosen vector width (tests pin each one).</summary>
    internal static void Step(Span<float> param, ReadOnlySpan<float> grad, Span<float> m, Span<float> v,
        float lr, float beta1, float beta2, float eps, float weightDecay, int step, float gradScale, KernelWidth width)
    {
        var w = KernelWidths.Resolve(width);
        var k = Factors.Compute(param.Length, grad.Length, m.Length, v.Length, lr, beta1, beta2, eps, weightDecay, step, gradScale);
        int len = param.Length;
        if (len == 0) return;
        fixed (float* pp0 = param, pg0 = grad, pm0 = m, pv0 = v)
        {
            float* pp = pp0, pg = pg0, pm = pm0, pv = pv0;
            int blocks = ElementwiseMath.Blocks(len);
            if (!ElementwiseMath.ShouldSplit(blocks, ElementwiseMath.Block)) Range(w, pp, pg, pm, pv, k, 0, len);
            else KernelThreads.ParallelFor(blocks, ElementwiseMath.MinChunk(ElementwiseMath.Block), (b0, b1) =>
                Range(w, pp, pg, pm, pv, k, b0 * ElementwiseMath.Block, Math.Min(len, b1 * ElementwiseMath.Block)));
        }
    }

    /// <summary>The float scalars of one step, each computed in double and rounded once, as PyTorch does.</summary>
    internal readonly record struct Factors(float GradScale, float Decay, float Beta1, float OneMinusBeta1,
        float Beta2, float OneMinusBeta2, float NegStepSize, float Bc2Sqrt, float Eps)
    {
        public static Factors Compute(int paramLength, int gradLength, int mLength, int vLength,
            float lr, float beta1, float beta2, float eps, float weightDecay, int step, float gradScale)
        {
            ElementwiseMath.RequireLength(gradLength, paramLength, "grad");
            ElementwiseMath.RequireLength(mLength, paramLength, "m");
            ElementwiseMath.RequireLength(vLength, paramLength, "v");
            if (step < 1) throw new ArgumentOutOfRangeException(nameof(step), step, "The AdamW step counts from 1.");
            if (!(beta1 >= 0f && beta1 < 1f)) throw new InvalidConfigException($"AdamW beta1 must be in [0, 1) (got {beta1}).");
            if (!(beta2 >= 0f && beta2 < 1f)) throw new InvalidConfigException($"AdamW beta2 must be in [0, 1) (got {beta2}).");
            double lrD = Widen(lr), b1 = Widen(beta1), b2 = Widen(beta2), wd = Widen(weightDecay);
            double bc1 = 1 - Math.Pow(b1, step);
            double bc2 = 1 - Math.Pow(b2, step);
            return new Factors(gradScale, (float)(1 - lrD * wd), (float)b1, (float)(1 - b1), (float)b2, (float)(1 - b2),
                (float)-(lrD / bc1), (float)Math.Sqrt(bc2), (float)Widen(eps));
        }
    }

    /// <summary>The double a Python literal would give for the float's shortest decimal form (0.9f becomes 0.9).</summary>
    internal static double Widen(float f)
    {
        Span<char> buffer = stackalloc char[32];
        return f.TryFormat(buffer, out int written, "R", CultureInfo.InvariantCulture)
            ? double.Parse(buffer[..written], NumberStyles.Float, CultureInfo.InvariantCulture)
            : f;
    }

    private static void Range(KernelWidth w, float* param, float* grad, float* m, float* v, Factors k, int i0, int i1)
    {
        switch (w)
        {
            case KernelWidth.Vector512: Range<Vec512, Vector512<float>>(param, grad, m, v, k, i0, i1); break;
            case KernelWidth.Vector256: Range<Vec256, Vector256<float>>(param, grad, m, v, k, i0, i1); break;
            case KernelWidth.Vector128: Range<Vec128, Vector128<float>>(param, grad, m, v, k, i0, i1); break;
            default: Range<VecScalar, float>(param, grad, m, v, k, i0, i1); break;
        }
    }

    private static void Range<TOps, TV>(float* param, float* grad, float* m, float* v, Factors k, int i0, int i1)
        where TOps : IKernelVector<TV> where TV : struct
    {
        int i = i0, l = TOps.Lanes;
        var gs = TOps.Broadcast(k.GradScale);
        var decay = TOps.Broadcast(k.Decay);
        var b1 = TOps.Broadcast(k.Beta1);
        var c1 = TOps.Broadcast(k.OneMinusBeta1);
        var b2 = TOps.Broadcast(k.Beta2);
        var c2 = TOps.Broadcast(k.OneMinusBeta2);
        var step = TOps.Broadcast(k.NegStepSize);
        var bc2 = TOps.Broadcast(k.Bc2Sqrt);
        var eps = TOps.Broadcast(k.Eps);
        for (; i <= i1 - l; i += l)
        {
            var g = TOps.Mul(TOps.Load(grad + i), gs);
            var p = TOps.Mul(TOps.Load(param + i), decay);
            var mi = TOps.Fma(g, c1, TOps.Mul(TOps.Load(m + i), b1));
            var vi = TOps.Fma(TOps.Mul(c2, g), g, TOps.Mul(TOps.Load(v + i), b2));
            var denom = TOps.Add(TOps.Div(TOps.Sqrt(vi), bc2), eps);
            TOps.Store(m + i, mi);
            TOps.Store(v + i, vi);
            TOps.Store(param + i, TOps.Add(p, TOps.Div(TOps.Mul(step, mi), denom)));
        }
        for (; i < i1; i++) StepOne(ref param[i], grad[i], ref m[i], ref v[i], k);
    }

    /// <summary>One element's update, the scalar form of the vector loop (shared with the reference twin).</summary>
    internal static void StepOne(ref float param, float grad, ref float m, ref float v, in Factors k)
    {
        float g = grad * k.GradScale;
        float p = param * k.Decay;
        m = MathF.FusedMultiplyAdd(g, k.OneMinusBeta1, m * k.Beta1);
        v = MathF.FusedMultiplyAdd(k.OneMinusBeta2 * g, g, v * k.Beta2);
        float denom = MathF.Sqrt(v) / k.Bc2Sqrt + k.Eps;
        param = p + k.NegStepSize * m / denom;
    }
}
