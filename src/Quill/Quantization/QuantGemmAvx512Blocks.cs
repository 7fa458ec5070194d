// QuantGemmAvx512.cs's kernels for the 32-value block formats: Q4_0, Q5_0, Q4_1, Q5_1 (the AVX2 kernel's arithmetic on
// 16 lanes) and Q8_0 (int16 pairs). They share that file's slab, unpacking and step helpers; its header says why.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Quill.Kernels;

namespace Quill.Quantization;

internal static unsafe partial class QuantGemm
{
    // ---- the 32-value block formats with unsigned values (Q4_0, Q5_0, Q4_1, Q5_1): the AVX2 kernel's arithmetic on
    // 16 rows. Per block the int32 sums become floats times (weight scale x activation scale) and the offsets add in,
    // both as fused multiply-adds in the AVX2 kernel's order, so the outputs equal its outputs bit for bit.

    private static bool TakesBlockKernel(GgmlType type) =>
        avx512 && type is GgmlType.Q4_0 or GgmlType.Q5_0 or GgmlType.Q4_1 or GgmlType.Q5_1;

    /// <summary>y[i, r] = W[r] . x[i] for Q4_0 / Q5_0 / Q4_1 / Q5_1 weights on the AVX-512 16-row kernel.</summary>
    private static void MultiplyBlocks512(GgmlType type, byte* w, int rows, long rowBytes, Rows x, float* y, int ldy)
    {
        int k = x.K, kp = x.Kp, m = x.M, nb = k / 32, nbo = Pad8(nb), slabs = (rows + Slab - 1) / Slab;
        nint wa = (nint)w, ya = (nint)y;
        KernelThreads.ParallelFor(slabs, Math.Max(1, (1 << 20) / Math.Max(1, Slab * k * m)), [MethodImpl(MethodImplOptions.AggressiveOptimization)] (s0, s1) =>
        {
            var buf = Slab512.ForThread(kp, m);
            fixed (byte* nat = buf.Natural)
            fixed (float* sv = buf.LaneScales)
            fixed (float* wo = buf.Offsets)
            fixed (int* iv = buf.Values)
            fixed (float* isc = buf.BlockScales)
            fixed (float* iwo = buf.BlockOffsets)
            fixed (float* o = buf.Out)
            fixed (sbyte* xq = x.Q)
            fixed (float* xs = x.LaneScale)
            fixed (float* xo = x.Offset)
            {
                var e = new Blocks(iv, isc, iwo, xq, xs, xo, k, kp, o);
                for (int s = s0; s < s1; s++)
                {
                    int r0 = s * Slab, n = Math.Min(Slab, rows - r0);
                    for (int r = 0; r < Slab; r++)
                    {
                        if (r < n) Unpack(type, (byte*)wa + (r0 + r) * rowBytes, k, nat + (long)r * kp, sv + (long)r * kp / 4, wo + (long)r * nbo);
                        else
                        {
                            new Span<byte>(nat + (long)r * kp, kp).Clear();
                            new Span<float>(sv + (long)r * kp / 4, kp / 4).Clear();
                            new Span<float>(wo + (long)r * nbo, nbo).Clear();
                        }
                        for (int b = 0; b < nb; b++)
                        {
                            isc[16 * b + r] = sv[(long)r * kp / 4 + 8 * b];
                            iwo[16 * b + r] = wo[(long)r * nbo + b];
                        }
                    }
                    Interleave16(nat, kp, iv);
                    if (type is GgmlType.Q4_0 or GgmlType.Q4_1) BlockRows<Q4Values>(e, m);
                    else BlockRows<Q5Values>(e, m);
                    StoreOut(o, m, (float*)ya, ldy, r0, n);
                }
            }
        });
    }

    private readonly struct Blocks(int* iv, float* isc, float* iwo, sbyte* xq, float* xs, float* xo, int k, int kp, float* o)
    {
        public readonly int* Iv = iv;
        public readonly float* Isc = isc;
        public readonly float* Iwo = iwo;
        public readonly sbyte* Xq = xq;
        public readonly float* Xs = xs;
        public readonly float* Xo = xo;
        public readonly int K = k;
        public readonly int Kp = kp;
        public readonly float* O = o;
    }

    private static void BlockRows<V>(in Blocks e, int m) where V : struct, IKValues
    {
        int i = 0;
        for (; i + 4 <= m; i += 4) BlockPass<V, Four4>(e, i);
        for (; i < m; i++) BlockPass<V, One4>(e, i);
    }

    // N activation rows against the slab's 16 interleaved rows of a 32-value block format; outputs to O [i .., 16].
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void BlockPass<V, C>(in Blocks e, int i) where V : struct, IKValues where C : struct, ICount
    {
        int kp = e.Kp, nb = e.K / 32, ls = kp / 4, nbo = Pad8(nb);
        sbyte* x0 = e.Xq + (long)i * kp;
        float* d0 = e.Xs + (long)i * ls;
        float* o0 = e.Xo + (long)i * nbo;
        var ones = Vector512.Create((short)1);
        Vector512<float> f0 = default, f1 = default, f2 = default, f3 = default;
        for (int b = 0; b < nb; b++)
        {
            int at = 32 * b;
            byte* wv = (byte*)(e.Iv + 16 * (at / 4));
            Vector512<int> a0 = default, a1 = default, a2 = default, a3 = default;
            Block<V, C>(wv, x0 + at, kp, ones, ones, ref a0, ref a1, ref a2, ref a3);
            var sc = Vector512.Load(e.Isc + 16 * b);
            var wo = Vector512.Load(e.Iwo + 16 * b);
            f0 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(a0), sc * Vector512.Create(d0[8 * b]), f0);
            f0 = Avx512F.FusedMultiplyAdd(wo, Vector512.Create(o0[b]), f0);
            if (C.N > 1)
            {
                f1 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(a1), sc * Vector512.Create(d0[ls + 8 * b]), f1);
                f1 = Avx512F.FusedMultiplyAdd(wo, Vector512.Create(o0[nbo + b]), f1);
                f2 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(a2), sc * Vector512.Create(d0[2 * ls + 8 * b]), f2);
                f2 = Avx512F.FusedMultiplyAdd(wo, Vector512.Create(o0[2 * nbo + b]), f2);
                f3 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(a3), sc * Vector512.Create(d0[3 * ls + 8 * b]), f3);
                f3 = Avx512F.FusedMultiplyAdd(wo, Vector512.Create(o0[3 * nbo + b]), f3);
            }
        }
        Vector512.Store(f0, e.O + 16 * i);
        if (C.N > 1)
        {
            Vector512.Store(f1, e.O + 16 * (i + 1));
            Vector512.Store(f2, e.O + 16 * (i + 2));
            Vector512.Store(f3, e.O + 16 * (i + 3));
        }
    }
    // ---- Q8_0: signed bytes, so no pmaddubsw (its unsigned operand would need the sign trick, and AVX-512 has no
    // vpsignb); weights and activations widened to int16 and met by pmaddwd, 2 values x 16 rows per instruction with
    // no int16 partial sums. The AVX2 kernel spends two multiplies (pmaddubsw, pmaddwd) per 32 products; this one
    // spends one per 32. Per block the float steps are the AVX2 kernel's, so the outputs equal its outputs bit for bit.

    /// <summary>y[i, r] = W[r] . x[i] for Q8_0 weights on the AVX-512 int16 kernel.</summary>
    private static void MultiplyQ8_512(byte* w, int rows, long rowBytes, Rows x, float* y, int ldy)
    {
        int k = x.K, kp = x.Kp, m = x.M, nb = k / 32, slabs = (rows + Slab - 1) / Slab;
        nint wa = (nint)w, ya = (nint)y;
        short[] x16 = x.Widened();
        KernelThreads.ParallelFor(slabs, Math.Max(1, (1 << 20) / Math.Max(1, Slab * k * m)), [MethodImpl(MethodImplOptions.AggressiveOptimization)] (s0, s1) =>
        {
            var buf = Slab512.ForThread(kp, m);
            fixed (byte* natBytes = buf.Natural)
            fixed (int* iv = buf.Values)
            fixed (float* isc = buf.BlockScales)
            fixed (float* o = buf.Out)
            fixed (short* xq = x16)
            fixed (float* xs = x.LaneScale)
            {
                var e = new Q8Pass(iv, isc, xq, xs, k, kp, o);
                for (int s = s0; s < s1; s++)
                {
                    int r0 = s * Slab, n = Math.Min(Slab, rows - r0);
                    for (int r = 0; r < Slab; r++)
                    {
                        short* v = (short*)natBytes + (long)r * kp;
                        if (r >= n)
                        {
                            new Span<short>(v, kp).Clear();
                            for (int b = 0; b < nb; b++) isc[16 * b + r] = 0f;
                            continue;
                        }
                        byte* row = (byte*)wa + (r0 + r) * rowBytes;
                        for (int b = 0; b < nb; b++)
                        {
                            byte* blk = row + 34 * b;
                            Vector512.Store(Avx512BW.ConvertToVector512Int16(Vector256.Load((sbyte*)(blk + 2))), v + 32 * b);
                            isc[16 * b + r] = Fp16.ToSingle(*(ushort*)blk);
                        }
                        for (int j = k; j < kp; j++) v[j] = 0;
                    }
                    Interleave16(natBytes, 2 * kp, iv);
                    int i = 0;
                    for (; i + 4 <= m; i += 4) Q8PassRows<Four4>(e, i);
                    for (; i < m; i++) Q8PassRows<One4>(e, i);
                    StoreOut(o, m, (float*)ya, ldy, r0, n);
                }
            }
        });
    }

    private readonly struct Q8Pass(int* iv, float* isc, short* xq, float* xs, int k, int kp, float* o)
    {
        public readonly int* Iv = iv;
        public readonly float* Isc = isc;
        public readonly short* Xq = xq;
        public readonly float* Xs = xs;
        public readonly int K = k;
        public readonly int Kp = kp;
        public readonly float* O = o;
    }

    // N activation rows against the slab's 16 interleaved Q8_0 rows (int16 pairs); outputs to O [i .., 16].
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Q8PassRows<C>(in Q8Pass e, int i) where C : struct, ICount
    {
        int kp = e.Kp, nb = e.K / 32, ls = kp / 4;
        short* x0 = e.Xq + (long)i * kp;
        float* d0 = e.Xs + (long)i * ls;
        Vector512<float> f0 = default, f1 = default, f2 = default, f3 = default;
        for (int b = 0; b < nb; b++)
        {
            int at = 32 * b;
            short* wv = (short*)(e.Iv + 16 * (at / 2));
            Vector512<int> a0 = default, a1 = default, a2 = default, a3 = default;
            // sixteen 2-value steps, four per round
            for (int h = 0; h < 16; h += 4)
            {
                Pair<C>(wv + 32 * h, x0 + at + 2 * h, kp, ref a0, ref a1, ref a2, ref a3);
                Pair<C>(wv + 32 * h + 32, x0 + at + 2 * h + 2, kp, ref a0, ref a1, ref a2, ref a3);
                Pair<C>(wv + 32 * h + 64, x0 + at + 2 * h + 4, kp, ref a0, ref a1, ref a2, ref a3);
                Pair<C>(wv + 32 * h + 96, x0 + at + 2 * h + 6, kp, ref a0, ref a1, ref a2, ref a3);
            }
            var sc = Vector512.Load(e.Isc + 16 * b);
            f0 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(a0), sc * Vector512.Create(d0[8 * b]), f0);
            if (C.N > 1)
            {
                f1 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(a1), sc * Vector512.Create(d0[ls + 8 * b]), f1);
                f2 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(a2), sc * Vector512.Create(d0[2 * ls + 8 * b]), f2);
                f3 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(a3), sc * Vector512.Create(d0[3 * ls + 8 * b]), f3);
            }
        }
        Vector512.Store(f0, e.O + 16 * i);
        if (C.N > 1)
        {
            Vector512.Store(f1, e.O + 16 * (i + 1));
            Vector512.Store(f2, e.O + 16 * (i + 2));
            Vector512.Store(f3, e.O + 16 * (i + 3));
        }
    }
    /// <summary>One 2-value step of 16 Q8_0 rows (int16 pairs at w) against C.N widened activation rows at x (kp apart).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Pair<C>(short* w, short* x, int kp, ref Vector512<int> a0, ref Vector512<int> a1, ref Vector512<int> a2, ref Vector512<int> a3)
        where C : struct, ICount
    {
        var wh = Vector512.Load(w);
        a0 += Avx512BW.MultiplyAddAdjacent(wh, Vector512.Create(*(int*)x).AsInt16());
        if (C.N > 1)
        {
            a1 += Avx512BW.MultiplyAddAdjacent(wh, Vector512.Create(*(int*)(x + kp)).AsInt16());
            a2 += Avx512BW.MultiplyAddAdjacent(wh, Vector512.Create(*(int*)(x + 2 * kp)).AsInt16());
            a3 += Avx512BW.MultiplyAddAdjacent(wh, Vector512.Create(*(int*)(x + 3 * kp)).AsInt16());
        }
    }
}
