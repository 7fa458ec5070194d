// The integer GEMM of quantized prefill: Y [m, R] = X [m, K] W [R, K]^T for a block-format weight W and many rows
// of float activations X, the way llama.cpp multiplies them: every activation row is quantized once per product
// (Q8Activation's ggml rules: Q8_0 for Q8_0 / Q4_0 / Q5_0 weights, Q8_1 for Q4_1 / Q5_1, Q8_K for K-quants) and each
// 32-value block of a weight row meets each activation block as one int8 dot product.
// Weights are unpacked a slab of 16 rows at a time (per thread) to one shape every format fits:
// - values as bytes in natural order: signed (Q8_0 as stored, Q6_K - 32) or unsigned (Q4_0, Q5_0, Q4_1, Q5_1, Q4_K,
//   Q5_K without their offsets);
// - per 32-value block and 16-value half a float scale (Q6_K's 16-value sub-blocks keep their own);
// - per block a float offset: the minimums (Q4_1 / Q5_1 m, K-quants -dmin m_j) and the symmetric formats' zero
//   points (Q4_0 -8 d, Q5_0 -16 d), met by the activation's block offsets (Q8_1's s, otherwise dx * sum q).
// Then eight rows are interleaved four values at a time, so one vector's eight int32 lanes are eight weight rows:
// each 4 activation values are broadcast and one u8 x s8 dot (vpdpbusd with AVX-VNNI, else pmaddubsw + pmaddwd;
// signed weights through the sign trick |w| . sign(x, w)) adds them into eight rows at once. On AVX2 the pmaddubsw
// pair sums of up to 8 steps (4-bit values; 4 for 5- and 6-bit) add up in int16 before one pmaddwd (Int16Steps). Per block, the eight
// int32 sums become floats times (weight scales x activation scale), and the offsets add in with one FMA, so there
// is no horizontal sum: a lane ends as one output. Four activation rows share each weight vector. Measured on a
// Zen 4 core this way of laying out the work ran 1.4-1.8x the 4 x 4 tile of per-pair dots it replaced, and 1-3x the
// dequantize + SGEMM path (docs/BENCHMARKS.md). Each output runs through the same steps whatever the m, the slab
// or the thread count. ARM64 runs the same layout on 128-bit NEON halves (rows 0-3, 4-7; sdot where the core has
// the dot-product extension, else widening multiplies and pairwise adds; signed x signed, so no sign trick), two
// activation rows at a time (QuantGemmNeon.cs). On CPUs with AVX-512 BW every format takes the 16-row kernels of
// QuantGemmAvx512.cs instead: the K-quants with integer sub-block scales (bit for bit the decode dot's scalar twins),
// the others with this kernel's float steps (bit for bit its outputs; Q8_0 in int16). RowReference is the scalar twin the tests and `quill version --check` (also under
// qemu-aarch64 in CI, both NEON paths) hold it to. The activation rows are quantized in QuantGemmRows.cs and the
// weight rows unpacked in QuantGemmUnpack.cs.
// Does not handle: x86 CPUs without AVX2 + FMA (Enabled false: WeightMatrix keeps dequantize + SGEMM there),
// F32 / F16 / BF16 weights (SGEMM), K not a multiple of the block size (the loaders refuse such tensors).
// Glossary: m activation rows, R weight rows, K values per row, Kp = K rounded up to 64 (row stride), nb = K / 32
// blocks, nbo = nb rounded up to 8.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;
using Quill.Kernels;

namespace Quill.Quantization;

/// <summary>Integer GEMM of block-format weights against many activation rows quantized to int8 (quantized prefill).</summary>
internal static unsafe partial class QuantGemm
{
    /// <summary>Weight rows unpacked per slab (per thread at a time).</summary>
    private const int Slab = 16;

    // QUILL_QUANT_GEMM=0 turns it off (to compare with the dequantize + SGEMM path)
    private static bool enabled = Runs && Environment.GetEnvironmentVariable("QUILL_QUANT_GEMM") != "0";

    /// <summary>The kernels run here: x86-64 with AVX2 + FMA, or ARM64 (NEON; sdot where the core has it).</summary>
    private static bool Runs => IntegerDot.Vectorized || AdvSimd.Arm64.IsSupported;

    /// <summary>
    /// True where quantized products of many rows take this GEMM: the default on CPUs with AVX2 + FMA and on ARM64
    /// (elsewhere quantized prefill dequantizes for SGEMM). Benchmarks and tests may turn it off to compare; it cannot be
    /// turned on where the kernels cannot run.
    /// </summary>
    public static bool Enabled
    {
        get => enabled;
        set => enabled = value && Runs;
    }

    /// <summary>The path on this CPU, for quill version.</summary>
    public static string PathName => !Enabled ? "off (dequantize + sgemm)"
        : IntegerDot.Vectorized ? (Avx512Kernels ? "avx512bw 16 rows x 4 (k-quants: integer scales; q8_0: int16)"
            : AvxVnni.IsSupported ? "avx-vnni 8 rows x 4" : "avx2 8 rows x 4")
        : Dp.IsSupported ? "neon sdot 8 rows x 2" : "neon 8 rows x 2";

    /// <summary>Which activation quantization a weight type meets (ggml's vec_dot_type).</summary>
    internal enum Flavor
    {
        Q8_0,
        Q8_1,
        Q8_K,
    }

    internal static Flavor FlavorOf(GgmlType type) => type switch
    {
        GgmlType.Q8_0 or GgmlType.Q4_0 or GgmlType.Q5_0 => Flavor.Q8_0,
        GgmlType.Q4_1 or GgmlType.Q5_1 => Flavor.Q8_1,
        GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K => Flavor.Q8_K,
        _ => throw new ArgumentException($"{type} has no integer GEMM.", nameof(type)),
    };

    private static bool SignedValues(GgmlType type) => type is GgmlType.Q8_0 or GgmlType.Q6_K;

    private static int Pad8(int n) => (n + 7) & ~7;

    private static int Pad64(int k) => (k + 63) & ~63;

    /// <summary>
    /// y[i, r] = W[r] . x[i] for a block-format W [rows, K] at w (rows rowBytes apart) and x quantized in
    /// <see cref="FlavorOf"/>(type); y rows ldy apart.
    /// </summary>
    public static void Multiply(GgmlType type, byte* w, int rows, long rowBytes, Rows x, float* y, int ldy)
    {
        if (x.Kind != FlavorOf(type)) throw new ArgumentException($"{type} weights need {FlavorOf(type)} activations, got {x.Kind}.", nameof(x));
        if (TakesSuperBlockKernel(type))
        {
            MultiplySuperBlocks(type, w, rows, rowBytes, x, y, ldy);
            return;
        }
        if (type == GgmlType.Q8_0 && avx512)
        {
            MultiplyQ8_512(w, rows, rowBytes, x, y, ldy);
            return;
        }
        if (TakesBlockKernel(type))
        {
            MultiplyBlocks512(type, w, rows, rowBytes, x, y, ldy);
            return;
        }
        int k = x.K, kp = x.Kp, m = x.M, slabs = (rows + Slab - 1) / Slab;
        nint wa = (nint)w, ya = (nint)y;
        bool signed = SignedValues(type);
        int steps = Int16Steps(type);
        // about a million multiply-adds per slab before a second thread joins
        KernelThreads.ParallelFor(slabs, Math.Max(1, (1 << 20) / Math.Max(1, Slab * k * m)), [MethodImpl(MethodImplOptions.AggressiveOptimization)] (s0, s1) =>
        {
            var buf = SlabBuffer.ForThread(kp);
            fixed (byte* v = buf.Values)
            fixed (float* sv = buf.LaneScales)
            fixed (float* wo = buf.Offsets)
            fixed (sbyte* xq = x.Q)
            fixed (float* xs = x.LaneScale)
            fixed (float* xo = x.Offset)
            {
                for (int s = s0; s < s1; s++)
                {
                    int r0 = s * Slab, n = Math.Min(Slab, rows - r0);
                    for (int r = 0; r < n; r++)
                        Unpack(type, (byte*)wa + (r0 + r) * rowBytes, k, v + (long)r * kp, sv + (long)r * kp / 4, wo + (long)r * Pad8(k / 32));
                    var args = new Args(v, sv, wo, k, kp, !signed);
                    fixed (int* iv = buf.Interleaved)
                    fixed (float* isv = buf.InterleavedScales)
                    fixed (float* iwo = buf.InterleavedOffsets)
                    {
                        for (int g = 0; g < n; g += 8)
                        {
                            Interleave(args, g, Math.Min(8, n - g), iv, isv, iwo);
                            var e = new Eights(iv, isv, iwo, xq, xs, xo, k, kp, (float*)ya + r0 + g, ldy, Math.Min(8, n - g), !signed);
                            if (signed) Eights8<Signed>(e, m, type == GgmlType.Q6_K, steps);
                            else Eights8<Unsigned>(e, m, false, steps);
                        }
                    }
                }
            }
        });
    }

    /// <summary>Per-thread unpacked slab: values [Slab, Kp] bytes, lane scales [Slab, Kp / 4], offsets [Slab, nbo].</summary>
    private sealed class SlabBuffer
    {
        [ThreadStatic] private static SlabBuffer? perThread;

        public byte[] Values = [];
        public float[] LaneScales = [];
        public float[] Offsets = [];

        public int[] Interleaved = [];
        public float[] InterleavedScales = [];
        public float[] InterleavedOffsets = [];

        public static SlabBuffer ForThread(int kp)
        {
            var b = perThread ??= new SlabBuffer();
            if (b.Values.Length < Slab * kp)
            {
                b.Interleaved = GC.AllocateUninitializedArray<int>(8 * kp / 4, pinned: true);
                b.InterleavedScales = GC.AllocateUninitializedArray<float>(8 * kp / 16, pinned: true);
                b.InterleavedOffsets = GC.AllocateUninitializedArray<float>(8 * Pad8(kp / 32), pinned: true);
                b.Values = GC.AllocateUninitializedArray<byte>(Slab * kp, pinned: true);
                b.LaneScales = GC.AllocateUninitializedArray<float>(Slab * kp / 4, pinned: true);
                b.Offsets = GC.AllocateUninitializedArray<float>(Slab * Pad8(kp / 32), pinned: true);
            }
            return b;
        }
    }

    /// <summary>A slab's unpacked rows: values [rows, Kp], lane scales [rows, Kp / 4], offsets [rows, nbo].</summary>
    private readonly struct Args(byte* v, float* sv, float* wo, int k, int kp, bool offsets)
    {
        public readonly byte* V = v;
        public readonly float* Sv = sv;
        public readonly float* Wo = wo;
        public readonly int K = k;
        public readonly int Kp = kp;
        public readonly bool HasOffsets = offsets;
    }

    private interface ISign
    {
        static abstract bool IsSigned { get; }
    }

    private readonly struct Signed : ISign
    {
        public static bool IsSigned => true;
    }

    private readonly struct Unsigned : ISign
    {
        public static bool IsSigned => false;
    }

    private readonly struct Eights(int* iv, float* isv, float* iwo, sbyte* xq, float* xs, float* xo, int k, int kp, float* y, int ldy, int rows, bool offsets)
    {
        public readonly int* Iv = iv;
        public readonly float* Isv = isv;
        public readonly float* Iwo = iwo;
        public readonly sbyte* Xq = xq;
        public readonly float* Xs = xs;
        public readonly float* Xo = xo;
        public readonly int K = k;
        public readonly int Kp = kp;
        public readonly float* Y = y;
        public readonly int Ldy = ldy;
        public readonly int Rows = rows;
        public readonly bool HasOffsets = offsets;
    }

    // Slab rows g .. g + count (count <= 8, the rest zero) interleaved: each 4 values of the 8 rows side by side (the
    // int32 lanes of one vector are the 8 rows), per block and 16-value half the 8 rows' scales, per block their offsets.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Interleave(in Args a, int g, int count, int* iv, float* isv, float* iwo)
    {
        int kp = a.Kp, nb = a.K / 32, nbo = Pad8(nb);
        for (int j = 0; j < 8; j++)
        {
            bool real = j < count;
            int* src = (int*)(a.V + (long)(g + j) * kp);
            float* sv = a.Sv + (long)(g + j) * kp / 4;
            float* wo = a.Wo + (long)(g + j) * nbo;
            for (int t = 0; t < 8 * nb; t++) iv[8 * t + j] = real ? src[t] : 0;
            for (int b = 0; b < nb; b++)
            {
                isv[16 * b + j] = real ? sv[8 * b] : 0f;
                isv[16 * b + 8 + j] = real ? sv[8 * b + 4] : 0f;
                iwo[8 * b + j] = real && a.HasOffsets ? wo[b] : 0f;
            }
        }
    }

    /// <summary>
    /// How many 4-value steps of pmaddubsw pairs may add up in int16 before one pmaddwd widens them (AVX2 path): a pair
    /// is at most 2 |w| 127, so 8 steps for values up to 15 (30,480), 4 for up to 32 (5-bit values; Q6_K's |q - 32|:
    /// 32,512), 1 for Q8_0 (|w| up to 128). Fewer pmaddwd per product: the multiply ports were the bound.
    /// </summary>
    private static int Int16Steps(GgmlType type) => type switch
    {
        GgmlType.Q4_0 or GgmlType.Q4_1 or GgmlType.Q4_K => 8,
        GgmlType.Q5_0 or GgmlType.Q5_1 or GgmlType.Q5_K or GgmlType.Q6_K => 4,
        _ => 1,
    };

    private static void Eights8<S>(in Eights e, int m, bool halves, int steps) where S : struct, ISign
    {
        if (!IntegerDot.Vectorized)
        {
            // ARM64: signed x signed dots, so the sign trick is not needed (unsigned values fit in sbyte)
            if (halves) EightsNeon<SplitHalves>(e, m);
            else EightsNeon<WholeBlock>(e, m);
            return;
        }
        if (AvxVnni.IsSupported)
        {
            if (halves) Eights8<VnniU8S8, S, SplitHalves, Steps1>(e, m);
            else Eights8<VnniU8S8, S, WholeBlock, Steps1>(e, m);
        }
        else if (halves)
        {
            Eights8<Avx2U8S8, S, SplitHalves, Steps4>(e, m);
        }
        else if (steps == 8)
        {
            Eights8<Avx2U8S8, S, WholeBlock, Steps8>(e, m);
        }
        else if (steps == 4)
        {
            Eights8<Avx2U8S8, S, WholeBlock, Steps4>(e, m);
        }
        else
        {
            Eights8<Avx2U8S8, S, WholeBlock, Steps1>(e, m);
        }
    }

    private interface ISteps
    {
        static abstract int Count { get; }
    }

    private readonly struct Steps1 : ISteps
    {
        public static int Count => 1;
    }

    private readonly struct Steps4 : ISteps
    {
        public static int Count => 4;
    }

    private readonly struct Steps8 : ISteps
    {
        public static int Count => 8;
    }

    private interface IHalves
    {
        static abstract bool IsSplit { get; }
    }

    private readonly struct SplitHalves : IHalves
    {
        public static bool IsSplit => true;
    }

    private readonly struct WholeBlock : IHalves
    {
        public static bool IsSplit => false;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Eights8<T, S, H, N>(in Eights e, int m) where T : struct, IU8S8 where S : struct, ISign where H : struct, IHalves where N : struct, ISteps
    {
        int i = 0;
        for (; i + 4 <= m; i += 4) Four<T, S, H, N>(e, i);
        for (; i < m; i++) One<T, S, H>(e, i);
    }

    /// <summary>The int16 pair sums of u . x (x given w's sign for signed values): pmaddubsw alone.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> Pairs<S>(Vector256<byte> u, Vector256<sbyte> w, sbyte* x) where S : struct, ISign
    {
        var xb = Vector256.Create(*(int*)x).AsSByte();
        return Avx2.MultiplyAddAdjacent(u, S.IsSigned ? Avx2.Sign(xb, w) : xb);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Add<T, S>(Vector256<int> acc, Vector256<byte> u, Vector256<sbyte> w, sbyte* x) where T : struct, IU8S8 where S : struct, ISign
    {
        var xb = Vector256.Create(*(int*)x).AsSByte();
        return T.DotAdd(acc, u, S.IsSigned ? Avx2.Sign(xb, w) : xb);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(in Eights e, int i, Vector256<float> acc)
    {
        float* y = e.Y + (long)i * e.Ldy;
        if (e.Rows == 8)
        {
            acc.Store(y);
            return;
        }
        for (int j = 0; j < e.Rows; j++) y[j] = acc.GetElement(j);
    }

    // Four activation rows against the eight interleaved weight rows: each lane is one weight row.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Four<T, S, H, N>(in Eights e, int i) where T : struct, IU8S8 where S : struct, ISign where H : struct, IHalves where N : struct, ISteps
    {
        int kp = e.Kp, nb = e.K / 32, ls = kp / 4, nbo = Pad8(nb);
        sbyte* x0 = e.Xq + (long)i * kp, x1 = x0 + kp, x2 = x1 + kp, x3 = x2 + kp;
        float* d0 = e.Xs + (long)i * ls;
        float* o0 = e.Xo + (long)i * nbo;
        Vector256<float> f0 = default, f1 = default, f2 = default, f3 = default;
        Vector256<short> p0 = default, p1 = default, p2 = default, p3 = default;
        for (int b = 0; b < nb; b++)
        {
            Vector256<int> a0 = default, a1 = default, a2 = default, a3 = default;
            var sc = Avx.LoadVector256(e.Isv + 16 * b);
            for (int g = 0; g < 8; g++)
            {
                var w = Avx.LoadVector256((sbyte*)(e.Iv + 8 * (8 * b + g)));
                var u = S.IsSigned ? Avx2.Abs(w) : w.AsByte();
                int at = 32 * b + 4 * g;
                if (N.Count > 1)
                {
                    // AVX2: N steps of pair sums add up in int16, then one pmaddwd each (see Int16Steps)
                    p0 += Pairs<S>(u, w, x0 + at);
                    p1 += Pairs<S>(u, w, x1 + at);
                    p2 += Pairs<S>(u, w, x2 + at);
                    p3 += Pairs<S>(u, w, x3 + at);
                    if ((g + 1) % N.Count == 0)
                    {
                        var one = Vector256.Create((short)1);
                        a0 += Avx2.MultiplyAddAdjacent(p0, one);
                        a1 += Avx2.MultiplyAddAdjacent(p1, one);
                        a2 += Avx2.MultiplyAddAdjacent(p2, one);
                        a3 += Avx2.MultiplyAddAdjacent(p3, one);
                        p0 = p1 = p2 = p3 = default;
                    }
                }
                else
                {
                    a0 = Add<T, S>(a0, u, w, x0 + at);
                    a1 = Add<T, S>(a1, u, w, x1 + at);
                    a2 = Add<T, S>(a2, u, w, x2 + at);
                    a3 = Add<T, S>(a3, u, w, x3 + at);
                }
                if (H.IsSplit && g == 3)
                {
                    // Q6_K: values 0-15 of the block have their own scale
                    f0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(a0), sc * Vector256.Create(d0[8 * b]), f0);
                    f1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(a1), sc * Vector256.Create(d0[ls + 8 * b]), f1);
                    f2 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(a2), sc * Vector256.Create(d0[2 * ls + 8 * b]), f2);
                    f3 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(a3), sc * Vector256.Create(d0[3 * ls + 8 * b]), f3);
                    a0 = a1 = a2 = a3 = default;
                    sc = Avx.LoadVector256(e.Isv + 16 * b + 8);
                }
            }
            f0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(a0), sc * Vector256.Create(d0[8 * b]), f0);
            f1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(a1), sc * Vector256.Create(d0[ls + 8 * b]), f1);
            f2 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(a2), sc * Vector256.Create(d0[2 * ls + 8 * b]), f2);
            f3 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(a3), sc * Vector256.Create(d0[3 * ls + 8 * b]), f3);
            if (e.HasOffsets)
            {
                var wo = Avx.LoadVector256(e.Iwo + 8 * b);
                f0 = Fma.MultiplyAdd(wo, Vector256.Create(o0[b]), f0);
                f1 = Fma.MultiplyAdd(wo, Vector256.Create(o0[nbo + b]), f1);
                f2 = Fma.MultiplyAdd(wo, Vector256.Create(o0[2 * nbo + b]), f2);
                f3 = Fma.MultiplyAdd(wo, Vector256.Create(o0[3 * nbo + b]), f3);
            }
        }
        Store(e, i, f0);
        Store(e, i + 1, f1);
        Store(e, i + 2, f2);
        Store(e, i + 3, f3);
    }

    // One activation row: the same steps as one lane group of Four.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void One<T, S, H>(in Eights e, int i) where T : struct, IU8S8 where S : struct, ISign where H : struct, IHalves
    {
        int kp = e.Kp, nb = e.K / 32, ls = kp / 4, nbo = Pad8(nb);
        sbyte* x0 = e.Xq + (long)i * kp;
        float* d0 = e.Xs + (long)i * ls;
        float* o0 = e.Xo + (long)i * nbo;
        Vector256<float> f0 = default;
        for (int b = 0; b < nb; b++)
        {
            Vector256<int> a0 = default;
            var sc = Avx.LoadVector256(e.Isv + 16 * b);
            for (int g = 0; g < 8; g++)
            {
                var w = Avx.LoadVector256((sbyte*)(e.Iv + 8 * (8 * b + g)));
                var u = S.IsSigned ? Avx2.Abs(w) : w.AsByte();
                a0 = Add<T, S>(a0, u, w, x0 + 32 * b + 4 * g);
                if (H.IsSplit && g == 3)
                {
                    f0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(a0), sc * Vector256.Create(d0[8 * b]), f0);
                    a0 = default;
                    sc = Avx.LoadVector256(e.Isv + 16 * b + 8);
                }
            }
            f0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(a0), sc * Vector256.Create(d0[8 * b]), f0);
            if (e.HasOffsets) f0 = Fma.MultiplyAdd(Avx.LoadVector256(e.Iwo + 8 * b), Vector256.Create(o0[b]), f0);
        }
        Store(e, i, f0);
    }

    /// <summary>
    /// Scalar twin of one product entry, from the format's dequantization formula and the quantized activation
    /// row i: sum over blocks of the weight block's values times the int8 activations, scaled, plus the minimums.
    /// </summary>
    internal static double RowReference(GgmlType type, ReadOnlySpan<byte> row, Rows x, int i)
    {
        int k = x.K;
        var w = new float[k];
        GgmlQuant.Dequantize(type, row, w);
        // the weight's dequantized values against the activation's (q * dx); Q8_1's minimum uses ggml's s instead
        double sum = 0;
        for (int b = 0; b < k / 32; b++)
        {
            float dx = x.BlockScale(i, b);
            for (int j = 0; j < 32; j++) sum += (double)w[32 * b + j] * x.Q[(long)i * x.Kp + 32 * b + j] * dx;
        }
        if (type is GgmlType.Q4_1 or GgmlType.Q5_1)
        {
            // ggml: + m s, s = f16(d sum q) (Q8_1) where the dequantized form gives + m dx sum q
            int bytes = type == GgmlType.Q4_1 ? 20 : 24, nbo = Pad8(k / 32);
            for (int b = 0; b < k / 32; b++)
            {
                float mn = Fp16.ToSingle(System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(row[(bytes * b + 2)..]));
                int qs = 0;
                for (int j = 0; j < 32; j++) qs += x.Q[(long)i * x.Kp + 32 * b + j];
                sum += (double)mn * (x.Offset[i * nbo + b] - (double)x.BlockScale(i, b) * qs);
            }
        }
        return sum;
    }
}
