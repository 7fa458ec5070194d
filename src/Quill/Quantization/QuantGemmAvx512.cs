// Quantized prefill's integer GEMM on AVX-512 BW (x86): sixteen weight rows per 512-bit vector (each 32-bit lane one
// row, four values side by side; Q8_0 two int16 values) against four activation rows per pass, the steps of a
// 32-value block in straight code. Three kernels:
// - K-quants (Q4_K, Q5_K, Q6_K) against Q8_K rows: the sub-block scales (6-bit Q4_K / Q5_K, int8 Q6_K) are applied
//   as integers inside the pmaddwd that widens each sub-block's pmaddubsw pair sums, so a 256-value super-block ends
//   as one exact int32 per (weight row, activation row); the minimums (Q4_K, Q5_K: sum_j m_j xsum_j over 32-value
//   sums) and Q6_K's -32 offset (-32 sum_k sc_k bs_k over 16-value sums) are one more exact int32. Float arithmetic
//   starts once per super-block, in the scalar twin's order: sum += d dx scaled - dmin dx mins (Q4_K, Q5_K) or
//   sum += d dx total (Q6_K), no fused multiply-add. So each output equals IntegerDot.Q4_KReference /
//   Q5_KReference / Q6_KReference (the decode dot's scalar twins) bit for bit. The AVX2 kernel of QuantGemm.cs sums
//   in float per 32-value block: outputs differ from it by float rounding only.
// - Q4_0, Q5_0, Q4_1, Q5_1: the AVX2 kernel's arithmetic (per block cvt, FMA by weight x activation scale, FMA of the
//   offsets) on 16 lanes: bit for bit the AVX2 kernel.
// - Q8_0: signed bytes and AVX-512 has no vpsignb for the sign trick, so weights and activations are widened to
//   int16 and met by pmaddwd (one multiply per 32 products where the AVX2 kernel needs pmaddubsw + pmaddwd); the
//   AVX2 kernel's float steps, bit for bit.
// Why: on Zen 4 (2 vCPU) the AVX2 kernel loaded one broadcast per 32 products, scaled in float per 32-value block and
// ran its eight steps as a loop (the JIT's listing); here one broadcast serves 64 products and the steps are straight
// code: 1.2-1.7x the AVX2 kernel per thread (docs/BENCHMARKS.md). Weights are unpacked per call, a slab of
// 16 rows at a time (values in natural order, then interleaved by 4 x 4 transposes of int32).
// The passes are never inlined: a caller rejitted at tier 1 that inlined one ran out of inlining budget for its
// step helpers, which then ran as calls with their accumulators in memory (5-6x slower, measured).
// QUILL_QUANT_GEMM_AVX512=0 (or Avx512Kernels = false) keeps the AVX2 kernel, to compare.
// The 32-value block formats' kernels are in QuantGemmAvx512Blocks.cs.
// Does not handle: CPUs without AVX-512 BW (QuantGemm.cs's AVX2 kernel).
// Glossary: ns = K / 256 super-blocks; t = 4-value step (K / 4 per row); r = weight row in the slab (0-15).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Quill.Kernels;

namespace Quill.Quantization;

internal static unsafe partial class QuantGemm
{
    // QUILL_QUANT_GEMM_AVX512=0 keeps every format on the AVX2 kernel (to compare)
    private static bool avx512 = Avx512Runs && Environment.GetEnvironmentVariable("QUILL_QUANT_GEMM_AVX512") != "0";

    private static bool Avx512Runs => Avx512BW.IsSupported && Vector512.IsHardwareAccelerated;

    /// <summary>
    /// True where products of many rows take the AVX-512 BW kernels of 16 weight rows (the default on CPUs with
    /// AVX-512 BW): the super-block kernel for Q4_K / Q5_K / Q6_K, the block kernel for Q4_0 / Q5_0 / Q4_1 / Q5_1,
    /// the int16 kernel for Q8_0; false keeps every format on the AVX2 kernel. Cannot be turned on where it cannot run.
    /// </summary>
    public static bool Avx512Kernels
    {
        get => avx512;
        set => avx512 = value && Avx512Runs;
    }

    private static bool TakesSuperBlockKernel(GgmlType type) =>
        avx512 && type is GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K;

    /// <summary>
    /// A thread's slab of 16 weight rows in the kernels' layouts (sized for Kp values a row; each kernel uses its part):
    /// natural-order values [16, Kp] (bytes; Q8_0 int16), interleaved values [Kp / 4, 16] int32 (Q8_0 [Kp / 2, 16]),
    /// K-quant integer scales [Kp / 16, 16] and pairs [Kp / 32, 16] (minimums or Q6_K scales), d and dmin
    /// [Kp / 256, 16], the block formats' lane scales [16, Kp / 4] and offsets [16, nbo] as Unpack writes them and
    /// per block [Kp / 32, 16], and the outputs of one pass [m, 16].
    /// </summary>
    private sealed class Slab512
    {
        [ThreadStatic] private static Slab512? perThread;

        public byte[] Natural = [];
        public int[] Values = [];
        public int[] Scales = [];
        public int[] Pairs = [];
        public float[] D = [];
        public float[] DMin = [];
        public float[] LaneScales = [];
        public float[] Offsets = [];
        public float[] BlockScales = [];
        public float[] BlockOffsets = [];
        public float[] Out = [];

        public static Slab512 ForThread(int kp, int m)
        {
            var b = perThread ??= new Slab512();
            if (b.Natural.Length < 2 * Slab * kp)
            {
                b.Natural = GC.AllocateUninitializedArray<byte>(2 * Slab * kp, pinned: true);
                b.Values = GC.AllocateUninitializedArray<int>(Slab * kp / 2, pinned: true);
                b.Scales = GC.AllocateUninitializedArray<int>(Slab * kp / 16, pinned: true);
                b.Pairs = GC.AllocateUninitializedArray<int>(Slab * kp / 32, pinned: true);
                b.D = GC.AllocateUninitializedArray<float>(Slab * kp / 256 + 1, pinned: true);
                b.DMin = GC.AllocateUninitializedArray<float>(Slab * kp / 256 + 1, pinned: true);
                b.LaneScales = GC.AllocateUninitializedArray<float>(Slab * kp / 4, pinned: true);
                b.Offsets = GC.AllocateUninitializedArray<float>(Slab * Pad8(kp / 32), pinned: true);
                b.BlockScales = GC.AllocateUninitializedArray<float>(Slab * kp / 32, pinned: true);
                b.BlockOffsets = GC.AllocateUninitializedArray<float>(Slab * kp / 32, pinned: true);
            }
            if (b.Out.Length < 16 * m) b.Out = GC.AllocateUninitializedArray<float>(16 * m, pinned: true);
            return b;
        }
    }

    /// <summary>A pass's outputs o [m, 16] to y [m, r0 .. r0 + n] (rows ldy apart).</summary>
    private static void StoreOut(float* o, int m, float* y, int ldy, int r0, int n)
    {
        for (int i = 0; i < m; i++)
        {
            float* yi = y + (long)i * ldy + r0;
            if (n == Slab) Vector512.Store(Vector512.Load(o + 16 * i), yi);
            else for (int r = 0; r < n; r++) yi[r] = o[16 * i + r];
        }
    }

    /// <summary>y[i, r] = W[r] . x[i] for K-quant weights on the AVX-512 super-block kernel.</summary>
    private static void MultiplySuperBlocks(GgmlType type, byte* w, int rows, long rowBytes, Rows x, float* y, int ldy)
    {
        int k = x.K, m = x.M, slabs = (rows + Slab - 1) / Slab;
        nint wa = (nint)w, ya = (nint)y;
        KernelThreads.ParallelFor(slabs, Math.Max(1, (1 << 20) / Math.Max(1, Slab * k * m)), [MethodImpl(MethodImplOptions.AggressiveOptimization)] (s0, s1) =>
        {
            var buf = Slab512.ForThread(x.Kp, m);
            fixed (byte* nat = buf.Natural)
            fixed (int* iv = buf.Values)
            fixed (int* isc = buf.Scales)
            fixed (int* ipr = buf.Pairs)
            fixed (float* id = buf.D)
            fixed (float* idm = buf.DMin)
            fixed (float* o = buf.Out)
            fixed (sbyte* xq = x.Q)
            fixed (float* xd = x.Scale256)
            fixed (int* xs = type == GgmlType.Q6_K ? x.Sum16Pairs : x.Sum32Pairs)
            {
                var e = new Supers(iv, isc, ipr, id, idm, xq, xd, xs, k, x.Kp, o);
                for (int s = s0; s < s1; s++)
                {
                    int r0 = s * Slab, n = Math.Min(Slab, rows - r0);
                    UnpackSlab(type, (byte*)wa + r0 * rowBytes, rowBytes, n, k, nat, iv, isc, ipr, id, idm);
                    if (type == GgmlType.Q6_K) SuperRows<Q6Values>(e, m);
                    else if (type == GgmlType.Q5_K) SuperRows<Q5Values>(e, m);
                    else SuperRows<Q4Values>(e, m);
                    StoreOut(o, m, (float*)ya, ldy, r0, n);
                }
            }
        });
    }

    private readonly struct Supers(int* iv, int* isc, int* ipr, float* d, float* dmin, sbyte* xq, float* xd, int* xs, int k, int kp, float* o)
    {
        public readonly int* Iv = iv;
        public readonly int* Isc = isc;
        public readonly int* Ipr = ipr;
        public readonly float* D = d;
        public readonly float* DMin = dmin;
        public readonly sbyte* Xq = xq;
        public readonly float* Xd = xd;
        public readonly int* Xs = xs;
        public readonly int K = k;
        public readonly int Kp = kp;
        public readonly float* O = o;
    }

    /// <summary>How a K-quant's values meet the kernel: bits per value, and the int16 steps that fit.</summary>
    private interface IKValues
    {
        /// <summary>4-value steps of pmaddubsw pairs that add up in int16 before the scaled pmaddwd: 8 for 4-bit values
        /// (8 x 2 x 15 x 127 = 30,480), 4 for 5-bit (31,496), 2 for Q6_K's unsigned 6-bit q (32,004).</summary>
        static abstract int Steps { get; }

        /// <summary>Q6_K: scales per 16 values and the -32 offset; otherwise per 32 values and minimums.</summary>
        static abstract bool Six { get; }
    }

    private readonly struct Q4Values : IKValues
    {
        public static int Steps => 8;

        public static bool Six => false;
    }

    private readonly struct Q5Values : IKValues
    {
        public static int Steps => 4;

        public static bool Six => false;
    }

    private readonly struct Q6Values : IKValues
    {
        public static int Steps => 2;

        public static bool Six => true;
    }

    private interface ICount
    {
        static abstract int N { get; }
    }

    private readonly struct One4 : ICount
    {
        public static int N => 1;
    }

    private readonly struct Four4 : ICount
    {
        public static int N => 4;
    }

    private static void SuperRows<V>(in Supers e, int m) where V : struct, IKValues
    {
        int i = 0;
        for (; i + 4 <= m; i += 4) SuperPass<V, Four4>(e, i);
        for (; i < m; i++) SuperPass<V, One4>(e, i);
    }

    /// <summary>The int16 pair sums of one 4-value step of the 16 rows against activation row x's 4 values.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> Step(Vector512<byte> w, sbyte* x) =>
        Avx512BW.MultiplyAddAdjacent(w, Vector512.Create(*(int*)x).AsSByte());

    // N activation rows (i .. i + N) against the slab's 16 interleaved weight rows; outputs to O [i .., 16].
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void SuperPass<V, C>(in Supers e, int i) where V : struct, IKValues where C : struct, ICount
    {
        int k = e.K, kp = e.Kp, ns = k / 256, pairs = V.Six ? k / 32 : k / 64;
        sbyte* x0 = e.Xq + (long)i * kp;
        int* s0 = e.Xs + (long)i * pairs, s1 = s0 + pairs, s2 = s1 + pairs, s3 = s2 + pairs;
        float* d0 = e.Xd + (long)i * ns;
        Vector512<float> f0 = default, f1 = default, f2 = default, f3 = default;
        for (int s = 0; s < ns; s++)
        {
            Vector512<int> a0 = default, a1 = default, a2 = default, a3 = default;
            for (int b = 0; b < 8; b++)
            {
                int at = 256 * s + 32 * b;
                byte* wv = (byte*)(e.Iv + 16 * (at / 4));
                int* sc = e.Isc + 16 * (at / 16);
                var low = Vector512.Load(sc).AsInt16();
                Block<V, C>(wv, x0 + at, kp, low, V.Six ? Vector512.Load(sc + 16).AsInt16() : low, ref a0, ref a1, ref a2, ref a3);
            }
            // the minimums or the offset: weight pairs against the activation's pairs of sums, exact in int32
            Vector512<int> m0 = default, m1 = default, m2 = default, m3 = default;
            int np = V.Six ? 8 : 4, p0at = np * s;
            for (int j = 0; j < np; j++)
            {
                var wp = Vector512.Load(e.Ipr + 16 * (p0at + j)).AsInt16();
                m0 += Avx512BW.MultiplyAddAdjacent(wp, Vector512.Create(s0[p0at + j]).AsInt16());
                if (C.N > 1)
                {
                    m1 += Avx512BW.MultiplyAddAdjacent(wp, Vector512.Create(s1[p0at + j]).AsInt16());
                    m2 += Avx512BW.MultiplyAddAdjacent(wp, Vector512.Create(s2[p0at + j]).AsInt16());
                    m3 += Avx512BW.MultiplyAddAdjacent(wp, Vector512.Create(s3[p0at + j]).AsInt16());
                }
            }
            var d = Vector512.Load(e.D + 16 * s);
            if (V.Six)
            {
                // sum += d dx total, total = scaled - 32 offsets
                f0 += d * Vector512.Create(d0[s]) * Avx512F.ConvertToVector512Single(a0 - (m0 << 5));
                if (C.N > 1)
                {
                    f1 += d * Vector512.Create(d0[ns + s]) * Avx512F.ConvertToVector512Single(a1 - (m1 << 5));
                    f2 += d * Vector512.Create(d0[2 * ns + s]) * Avx512F.ConvertToVector512Single(a2 - (m2 << 5));
                    f3 += d * Vector512.Create(d0[3 * ns + s]) * Avx512F.ConvertToVector512Single(a3 - (m3 << 5));
                }
            }
            else
            {
                // sum += d dx scaled - dmin dx mins
                var dm = Vector512.Load(e.DMin + 16 * s);
                f0 += SuperTerm(d, dm, d0[s], a0, m0);
                if (C.N > 1)
                {
                    f1 += SuperTerm(d, dm, d0[ns + s], a1, m1);
                    f2 += SuperTerm(d, dm, d0[2 * ns + s], a2, m2);
                    f3 += SuperTerm(d, dm, d0[3 * ns + s], a3, m3);
                }
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

    /// <summary>Two int16 values in one int32 (lo in the low half), as pmaddwd reads them.</summary>
    internal static int Int16Pair(int lo, int hi) => (lo & 0xFFFF) | (hi << 16);

    /// <summary>
    /// One 32-value block of the 16 rows at w (eight 4-value steps, straight code) against C.N activation rows at x
    /// (kp apart): V.Steps steps at a time in int16, each group widened into the int32 sums by pmaddwd with the scale
    /// of its half (low: values 0-15, high: 16-31; ones for the formats that scale in float). The constant conditions
    /// fold away.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Block<V, C>(byte* w, sbyte* x, int kp, Vector512<short> low, Vector512<short> high,
        ref Vector512<int> a0, ref Vector512<int> a1, ref Vector512<int> a2, ref Vector512<int> a3) where V : struct, IKValues where C : struct, ICount
    {
        Vector512<short> p0 = default, p1 = default, p2 = default, p3 = default;
        Quad<C>(w, x, kp, ref p0, ref p1, ref p2, ref p3);
        Quad<C>(w + 64, x + 4, kp, ref p0, ref p1, ref p2, ref p3);
        if (V.Steps == 2) Widen<C>(low, ref p0, ref p1, ref p2, ref p3, ref a0, ref a1, ref a2, ref a3);
        Quad<C>(w + 128, x + 8, kp, ref p0, ref p1, ref p2, ref p3);
        Quad<C>(w + 192, x + 12, kp, ref p0, ref p1, ref p2, ref p3);
        if (V.Steps <= 4) Widen<C>(low, ref p0, ref p1, ref p2, ref p3, ref a0, ref a1, ref a2, ref a3);
        Quad<C>(w + 256, x + 16, kp, ref p0, ref p1, ref p2, ref p3);
        Quad<C>(w + 320, x + 20, kp, ref p0, ref p1, ref p2, ref p3);
        if (V.Steps == 2) Widen<C>(high, ref p0, ref p1, ref p2, ref p3, ref a0, ref a1, ref a2, ref a3);
        Quad<C>(w + 384, x + 24, kp, ref p0, ref p1, ref p2, ref p3);
        Quad<C>(w + 448, x + 28, kp, ref p0, ref p1, ref p2, ref p3);
        Widen<C>(high, ref p0, ref p1, ref p2, ref p3, ref a0, ref a1, ref a2, ref a3);
    }

    /// <summary>One 4-value step of the 16 rows at w against C.N activation rows (x, kp apart): int16 pair sums added.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Quad<C>(byte* w, sbyte* x, int kp, ref Vector512<short> p0, ref Vector512<short> p1, ref Vector512<short> p2, ref Vector512<short> p3)
        where C : struct, ICount
    {
        var wh = Vector512.Load(w);
        p0 += Step(wh, x);
        if (C.N > 1)
        {
            p1 += Step(wh, x + kp);
            p2 += Step(wh, x + 2 * kp);
            p3 += Step(wh, x + 3 * kp);
        }
    }

    /// <summary>The int16 pair sums times the sub-block scale into the int32 sums (pmaddwd), and cleared.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Widen<C>(Vector512<short> scale, ref Vector512<short> p0, ref Vector512<short> p1, ref Vector512<short> p2, ref Vector512<short> p3,
        ref Vector512<int> a0, ref Vector512<int> a1, ref Vector512<int> a2, ref Vector512<int> a3) where C : struct, ICount
    {
        a0 += Avx512BW.MultiplyAddAdjacent(p0, scale);
        p0 = default;
        if (C.N > 1)
        {
            a1 += Avx512BW.MultiplyAddAdjacent(p1, scale);
            a2 += Avx512BW.MultiplyAddAdjacent(p2, scale);
            a3 += Avx512BW.MultiplyAddAdjacent(p3, scale);
            p1 = p2 = p3 = default;
        }
    }

    /// <summary>d dx scaled - dmin dx mins, each product rounded as the scalar twin rounds it (no fused multiply-add).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> SuperTerm(Vector512<float> d, Vector512<float> dmin, float dx, Vector512<int> scaled, Vector512<int> mins)
    {
        var x = Vector512.Create(dx);
        return d * x * Avx512F.ConvertToVector512Single(scaled) - dmin * x * Avx512F.ConvertToVector512Single(mins);
    }

    /// <summary>
    /// n (&lt;= 16) rows of a K-quant at w (rowBytes apart) into the kernel's layout: values interleaved [K / 4, 16]
    /// int32 (unsigned bytes, rows past n zero), integer scales [K / 16, 16], pairs (minimums or Q6_K scales),
    /// d and dmin [K / 256, 16].
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void UnpackSlab(GgmlType type, byte* w, long rowBytes, int n, int k, byte* nat, int* iv, int* isc, int* ipr, float* d, float* dmin)
    {
        int ns = k / 256;
        var m4 = Vector256.Create((byte)0x0F);
        var one = Vector256.Create((byte)1);
        var m2 = Vector256.Create((byte)0x03);
        for (int r = 0; r < Slab; r++)
        {
            byte* v = nat + (long)r * k;
            if (r >= n)
            {
                new Span<byte>(v, k).Clear();
                for (int s = 0; s < ns; s++)
                {
                    for (int h = 0; h < 16; h++) isc[16 * (16 * s + h) + r] = 0;
                    for (int j = 0; j < 8; j++) ipr[16 * (8 * s + j) + r] = 0;
                    d[16 * s + r] = 0f;
                    dmin[16 * s + r] = 0f;
                }
                continue;
            }
            byte* row = w + r * rowBytes;
            for (int s = 0; s < ns; s++)
            {
                byte* o = v + 256 * s;
                if (type == GgmlType.Q6_K)
                {
                    byte* blk = row + 210L * s;
                    for (int h = 0; h < 2; h++)
                    {
                        var ql0 = Vector256.Load(blk + 64 * h);
                        var ql1 = Vector256.Load(blk + 64 * h + 32);
                        var qhv = Vector256.Load(blk + 128 + 32 * h);
                        byte* oh = o + 128 * h;
                        Vector256.Store((ql0 & m4) | ((qhv & m2) << 4), oh);
                        Vector256.Store((ql1 & m4) | ((Vector256.ShiftRightLogical(qhv, 2) & m2) << 4), oh + 32);
                        Vector256.Store(Vector256.ShiftRightLogical(ql0, 4) | ((Vector256.ShiftRightLogical(qhv, 4) & m2) << 4), oh + 64);
                        Vector256.Store(Vector256.ShiftRightLogical(ql1, 4) | ((Vector256.ShiftRightLogical(qhv, 6) & m2) << 4), oh + 96);
                    }
                    sbyte* sc = (sbyte*)(blk + 192);
                    for (int h = 0; h < 16; h++) isc[16 * (16 * s + h) + r] = Int16Pair(sc[h], sc[h]);
                    for (int j = 0; j < 8; j++) ipr[16 * (8 * s + j) + r] = Int16Pair(sc[2 * j], sc[2 * j + 1]);
                    d[16 * s + r] = Fp16.ToSingle(*(ushort*)(blk + 208));
                    dmin[16 * s + r] = 0f;
                }
                else
                {
                    bool five = type == GgmlType.Q5_K;
                    byte* blk = row + (five ? 176L : 144L) * s;
                    var qh = five ? Vector256.Load(blk + 16) : default;
                    for (int p = 0; p < 4; p++)
                    {
                        var q = Vector256.Load(blk + (five ? 48 : 16) + 32 * p);
                        var lo = q & m4;
                        var hi = Vector256.ShiftRightLogical(q, 4);
                        if (five)
                        {
                            lo |= (Vector256.ShiftRightLogical(qh, 2 * p) & one) << 4;
                            hi |= (Vector256.ShiftRightLogical(qh, 2 * p + 1) & one) << 4;
                        }
                        Vector256.Store(lo, o + 64 * p);
                        Vector256.Store(hi, o + 64 * p + 32);
                    }
                    var scales = new ReadOnlySpan<byte>(blk + 4, 12);
                    int mins = 0;
                    for (int j = 0; j < 8; j++)
                    {
                        var (sj, mj) = Q4_K.ScaleMin(j, scales);
                        // 32-value block j: both of its 16-value halves take sc_j
                        isc[16 * (16 * s + 2 * j) + r] = sj * 0x10001;
                        isc[16 * (16 * s + 2 * j + 1) + r] = sj * 0x10001;
                        mins = j % 2 == 0 ? mj : mins | (mj << 16);
                        if (j % 2 == 1) ipr[16 * (4 * s + j / 2) + r] = mins;
                    }
                    d[16 * s + r] = Fp16.ToSingle(*(ushort*)blk);
                    dmin[16 * s + r] = Fp16.ToSingle(*(ushort*)(blk + 2));
                }
            }
        }
        Interleave16(nat, k, iv);
    }
    /// <summary>16 rows of bytes (rowBytes apart, a multiple of 16) interleaved four at a time: step t of row r to
    /// iv[16 t + r], by 4 x 4 transposes of int32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Interleave16(byte* nat, int rowBytes, int* iv)
    {
        int steps = rowBytes / 4;
        for (int r = 0; r < Slab; r += 4)
        {
            int* a = (int*)(nat + (long)r * rowBytes);
            for (int t = 0; t < steps; t += 4)
            {
                var r0 = Vector128.Load(a + t);
                var r1 = Vector128.Load(a + steps + t);
                var r2 = Vector128.Load(a + 2 * steps + t);
                var r3 = Vector128.Load(a + 3 * steps + t);
                var l01 = Sse2.UnpackLow(r0, r1);
                var h01 = Sse2.UnpackHigh(r0, r1);
                var l23 = Sse2.UnpackLow(r2, r3);
                var h23 = Sse2.UnpackHigh(r2, r3);
                Vector128.Store(Sse2.UnpackLow(l01.AsInt64(), l23.AsInt64()).AsInt32(), iv + 16 * t + r);
                Vector128.Store(Sse2.UnpackHigh(l01.AsInt64(), l23.AsInt64()).AsInt32(), iv + 16 * (t + 1) + r);
                Vector128.Store(Sse2.UnpackLow(h01.AsInt64(), h23.AsInt64()).AsInt32(), iv + 16 * (t + 2) + r);
                Vector128.Store(Sse2.UnpackHigh(h01.AsInt64(), h23.AsInt64()).AsInt32(), iv + 16 * (t + 3) + r);
            }
        }
    }
}
