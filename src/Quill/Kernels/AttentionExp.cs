// exp(x) on float vectors for the softmax inside attention, cheaper than the BCL's Vector512.Exp (which works in
// double): x = n ln2 + r with n = round(x / ln2) and |r| <= ln2 / 2, e^r by a degree-6 polynomial (coefficients
// fitted by least squares to e^r on that interval, relative error about 1e-7 over [-87, 88] in float arithmetic),
// then 2^n added straight into the exponent bits. t = x / ln2 + 1.5 * 2^23 holds n in its low mantissa bits, so t's
// bits shifted left by 23 are n's shifted (the high bits fall off): no float-to-int conversion, whose saturation
// fix-ups cost four instructions a vector. Inputs below -87.3 (including -infinity from the causal mask) give exactly
// 0; inputs above 88.7 are clamped (softmax only ever passes x <= 0).
// Does not handle: NaN inputs meaningfully, denormal results (flushed to 0), anything but float32.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Quill.Kernels;

internal static class AttentionExp
{
    private const float Log2E = 1.44269504f;
    private const float Ln2Hi = 0.693359375f;       // ln 2 split so n * Ln2Hi is exact for |n| <= 2^8
    private const float Ln2Lo = -2.12194440e-4f;
    private const float RoundMagic = 12582912f;      // 1.5 * 2^23: adding it rounds a float to an integer
    private const float Min = -87.3f, Max = 88.7f;
    private const float C2 = 0.49999988f, C3 = 0.16666518f, C4 = 0.041669533f, C5 = 0.008368916f, C6 = 0.0013751407f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        var xc = Vector512.Min(x, Vector512.Create(Max));
        var t = Vector512.FusedMultiplyAdd(xc, Vector512.Create(Log2E), Vector512.Create(RoundMagic));
        var n = t - Vector512.Create(RoundMagic);
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Hi), xc);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Lo), r);
        var p = Vector512.FusedMultiplyAdd(Vector512.Create(C6), r, Vector512.Create(C5));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C4));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C3));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C2));
        p = Vector512.FusedMultiplyAdd(p * r, r, r) + Vector512<float>.One;   // 1 + r + r^2 q(r)
        var scaled = (p.AsInt32() + Vector512.ShiftLeft(t.AsInt32(), 23)).AsSingle();
        return Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512.Create(Min)), Vector512<float>.Zero, scaled);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        var xc = Vector256.Min(x, Vector256.Create(Max));
        var t = Vector256.FusedMultiplyAdd(xc, Vector256.Create(Log2E), Vector256.Create(RoundMagic));
        var n = t - Vector256.Create(RoundMagic);
        var r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Hi), xc);
        r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Lo), r);
        var p = Vector256.FusedMultiplyAdd(Vector256.Create(C6), r, Vector256.Create(C5));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C4));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C3));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C2));
        p = Vector256.FusedMultiplyAdd(p * r, r, r) + Vector256<float>.One;
        var scaled = (p.AsInt32() + Vector256.ShiftLeft(t.AsInt32(), 23)).AsSingle();
        return Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256.Create(Min)), Vector256<float>.Zero, scaled);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Exp(Vector128<float> x)
    {
        var xc = Vector128.Min(x, Vector128.Create(Max));
        var t = Vector128.FusedMultiplyAdd(xc, Vector128.Create(Log2E), Vector128.Create(RoundMagic));
        var n = t - Vector128.Create(RoundMagic);
        var r = Vector128.FusedMultiplyAdd(n, Vector128.Create(-Ln2Hi), xc);
        r = Vector128.FusedMultiplyAdd(n, Vector128.Create(-Ln2Lo), r);
        var p = Vector128.FusedMultiplyAdd(Vector128.Create(C6), r, Vector128.Create(C5));
        p = Vector128.FusedMultiplyAdd(p, r, Vector128.Create(C4));
        p = Vector128.FusedMultiplyAdd(p, r, Vector128.Create(C3));
        p = Vector128.FusedMultiplyAdd(p, r, Vector128.Create(C2));
        p = Vector128.FusedMultiplyAdd(p * r, r, r) + Vector128<float>.One;
        var scaled = (p.AsInt32() + Vector128.ShiftLeft(t.AsInt32(), 23)).AsSingle();
        return Vector128.ConditionalSelect(Vector128.LessThan(x, Vector128.Create(Min)), Vector128<float>.Zero, scaled);
    }
}
