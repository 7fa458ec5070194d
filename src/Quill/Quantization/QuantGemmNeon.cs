// The ARM64 (NEON) kernels of the quantized prefill GEMM (QuantGemm.cs has the layout, the x86 kernels, the weight
// unpacking and the scalar twin): eight interleaved weight rows in two 128-bit halves (rows 0-3, rows 4-7), signed
// int8 x int8 four-value dots by `sdot` where the core has the dot-product extension, else widening multiplies and
// pairwise adds; two activation rows at a time, then one; per block the int32 sums become floats times the weight
// and activation scales, and the offsets add in with one FMA, as on x86.
// Does not handle: x86 (QuantGemm.cs), the weight unpacking (QuantGemm.Unpack).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;

namespace Quill.Quantization;

internal static unsafe partial class QuantGemm
{
    // ---- ARM64 NEON: the same layout in 128-bit halves (rows 0-3, rows 4-7); sdot where the core has the
    // dot-product extension, else widening multiplies and pairwise adds ----

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void EightsNeon<H>(in Eights e, int m) where H : struct, IHalves
    {
        int i = 0;
        for (; i + 2 <= m; i += 2) TwoNeon<H>(e, i);
        for (; i < m; i++) OneNeon<H>(e, i);
    }

    /// <summary>acc + per int32 lane the sum of its four byte products (w and x signed).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> Dot4(Vector128<int> acc, Vector128<sbyte> w, Vector128<sbyte> x)
    {
        if (Dp.IsSupported) return Dp.DotProduct(acc, w, x);
        var lo = AdvSimd.AddPairwiseWidening(AdvSimd.MultiplyWideningLower(w.GetLower(), x.GetLower()));
        var hi = AdvSimd.AddPairwiseWidening(AdvSimd.MultiplyWideningUpper(w, x));
        return acc + AdvSimd.Arm64.AddPairwise(lo, hi);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreNeon(in Eights e, int i, Vector128<float> lo, Vector128<float> hi)
    {
        float* y = e.Y + (long)i * e.Ldy;
        if (e.Rows == 8)
        {
            lo.Store(y);
            hi.Store(y + 4);
            return;
        }
        for (int j = 0; j < e.Rows; j++) y[j] = j < 4 ? lo.GetElement(j) : hi.GetElement(j - 4);
    }

    // f += float(a) times the eight rows' scales sc [8] times the activation scale (s0 row 0, s1 row 1).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ScaleAdd(float* sc, float s0, float s1, Vector128<int> a0l, Vector128<int> a0h, Vector128<int> a1l, Vector128<int> a1h,
        ref Vector128<float> f0l, ref Vector128<float> f0h, ref Vector128<float> f1l, ref Vector128<float> f1h)
    {
        var v0 = Vector128.Create(s0);
        var v1 = Vector128.Create(s1);
        var scl = AdvSimd.LoadVector128(sc);
        var sch = AdvSimd.LoadVector128(sc + 4);
        f0l = AdvSimd.FusedMultiplyAdd(f0l, AdvSimd.ConvertToSingle(a0l), scl * v0);
        f0h = AdvSimd.FusedMultiplyAdd(f0h, AdvSimd.ConvertToSingle(a0h), sch * v0);
        f1l = AdvSimd.FusedMultiplyAdd(f1l, AdvSimd.ConvertToSingle(a1l), scl * v1);
        f1h = AdvSimd.FusedMultiplyAdd(f1h, AdvSimd.ConvertToSingle(a1h), sch * v1);
    }

    // Two activation rows against the eight interleaved weight rows.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TwoNeon<H>(in Eights e, int i) where H : struct, IHalves
    {
        int kp = e.Kp, nb = e.K / 32, ls = kp / 4, nbo = Pad8(nb);
        sbyte* x0 = e.Xq + (long)i * kp, x1 = x0 + kp;
        float* d0 = e.Xs + (long)i * ls;
        float* o0 = e.Xo + (long)i * nbo;
        Vector128<float> f0l = default, f0h = default, f1l = default, f1h = default;
        for (int b = 0; b < nb; b++)
        {
            Vector128<int> a0l = default, a0h = default, a1l = default, a1h = default;
            float* sc = e.Isv + 16 * b;
            for (int g = 0; g < 8; g++)
            {
                sbyte* wp = (sbyte*)(e.Iv + 8 * (8 * b + g));
                var wl = AdvSimd.LoadVector128(wp);
                var wh = AdvSimd.LoadVector128(wp + 16);
                int at = 32 * b + 4 * g;
                var xb0 = Vector128.Create(*(int*)(x0 + at)).AsSByte();
                var xb1 = Vector128.Create(*(int*)(x1 + at)).AsSByte();
                a0l = Dot4(a0l, wl, xb0);
                a0h = Dot4(a0h, wh, xb0);
                a1l = Dot4(a1l, wl, xb1);
                a1h = Dot4(a1h, wh, xb1);
                if (H.IsSplit && g == 3)
                {
                    // Q6_K: values 0-15 of the block have their own scale
                    ScaleAdd(sc, d0[8 * b], d0[ls + 8 * b], a0l, a0h, a1l, a1h, ref f0l, ref f0h, ref f1l, ref f1h);
                    a0l = a0h = a1l = a1h = default;
                    sc += 8;
                }
            }
            ScaleAdd(sc, d0[8 * b], d0[ls + 8 * b], a0l, a0h, a1l, a1h, ref f0l, ref f0h, ref f1l, ref f1h);
            if (e.HasOffsets)
            {
                var wol = AdvSimd.LoadVector128(e.Iwo + 8 * b);
                var woh = AdvSimd.LoadVector128(e.Iwo + 8 * b + 4);
                var q0 = Vector128.Create(o0[b]);
                var q1 = Vector128.Create(o0[nbo + b]);
                f0l = AdvSimd.FusedMultiplyAdd(f0l, wol, q0);
                f0h = AdvSimd.FusedMultiplyAdd(f0h, woh, q0);
                f1l = AdvSimd.FusedMultiplyAdd(f1l, wol, q1);
                f1h = AdvSimd.FusedMultiplyAdd(f1h, woh, q1);
            }
        }
        StoreNeon(e, i, f0l, f0h);
        StoreNeon(e, i + 1, f1l, f1h);
    }

    // One activation row: the same steps as one row of TwoNeon.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void OneNeon<H>(in Eights e, int i) where H : struct, IHalves
    {
        int kp = e.Kp, nb = e.K / 32, ls = kp / 4, nbo = Pad8(nb);
        sbyte* x0 = e.Xq + (long)i * kp;
        float* d0 = e.Xs + (long)i * ls;
        float* o0 = e.Xo + (long)i * nbo;
        Vector128<float> f0l = default, f0h = default;
        for (int b = 0; b < nb; b++)
        {
            Vector128<int> a0l = default, a0h = default;
            float* sc = e.Isv + 16 * b;
            for (int g = 0; g < 8; g++)
            {
                sbyte* wp = (sbyte*)(e.Iv + 8 * (8 * b + g));
                var xb0 = Vector128.Create(*(int*)(x0 + 32 * b + 4 * g)).AsSByte();
                a0l = Dot4(a0l, AdvSimd.LoadVector128(wp), xb0);
                a0h = Dot4(a0h, AdvSimd.LoadVector128(wp + 16), xb0);
                if (H.IsSplit && g == 3)
                {
                    var s0 = Vector128.Create(d0[8 * b]);
                    f0l = AdvSimd.FusedMultiplyAdd(f0l, AdvSimd.ConvertToSingle(a0l), AdvSimd.LoadVector128(sc) * s0);
                    f0h = AdvSimd.FusedMultiplyAdd(f0h, AdvSimd.ConvertToSingle(a0h), AdvSimd.LoadVector128(sc + 4) * s0);
                    a0l = a0h = default;
                    sc += 8;
                }
            }
            var s = Vector128.Create(d0[8 * b]);
            f0l = AdvSimd.FusedMultiplyAdd(f0l, AdvSimd.ConvertToSingle(a0l), AdvSimd.LoadVector128(sc) * s);
            f0h = AdvSimd.FusedMultiplyAdd(f0h, AdvSimd.ConvertToSingle(a0h), AdvSimd.LoadVector128(sc + 4) * s);
            if (e.HasOffsets)
            {
                var q0 = Vector128.Create(o0[b]);
                f0l = AdvSimd.FusedMultiplyAdd(f0l, AdvSimd.LoadVector128(e.Iwo + 8 * b), q0);
                f0h = AdvSimd.FusedMultiplyAdd(f0h, AdvSimd.LoadVector128(e.Iwo + 8 * b + 4), q0);
            }
        }
        StoreNeon(e, i, f0l, f0h);
    }
}
