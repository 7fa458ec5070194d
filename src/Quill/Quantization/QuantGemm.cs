// The integer GEMM of quantized prefill: Y [m, R] = X [m, K] W [R, K]^T for a block-format weight W and many rows
// of float activations X, the way llama.cpp multiplies them: every activation row is quantized once per product
// (Q8Activation's ggml rules: Q8_0 for Q8_0 / Q4_0 / Q5_0 weights, Q8_1 for Q4_1 / Q5_1, Q8_K for K-quants) and each
// 32-value block of a weight row meets each activation block as one int8 dot product.
// Weights are unpacked a slab of rows at a time (per thread, into L1/L2) to one shape every format fits:
// - values as bytes, in natural order: signed (Q8_0 as stored, Q4_0 nibble - 8, Q5_0 - 16, Q6_K - 32) or unsigned
//   (Q4_1, Q5_1, Q4_K, Q5_K without their minimums);
// - per 32-value block eight float lane scales (lanes 0-3 cover values 0-15 and 4-7 values 16-31, so Q6_K's
//   16-value sub-blocks keep their own scale; other formats repeat one scale);
// - per block a float offset (the minimum terms: Q4_1 / Q5_1 m, K-quants -dmin m_j), met by the activation's block
//   offsets (Q8_1's s; Q8_K's dx * block sum) in one vector FMA per 8 blocks.
// A 4 x 4 tile (four activation rows x four weight rows, 16 vector accumulators) takes per block and pair one u8 x s8
// dot (vpdpbusd with AVX-VNNI, else pmaddubsw + pmaddwd; signed weights through the sign trick, |w| . sign(x, w)),
// a conversion, and one FMA with the lane scales times the activation scale. Each (row, column) sum runs through the
// same steps in the same order whatever tile it lands in, so a product row does not depend on m or on threads.
// Slabs of weight rows split across KernelThreads. RowReference is the scalar twin the tests hold the kernel to.
// Does not handle: CPUs without AVX2 + FMA (Enabled false: WeightMatrix keeps dequantize + SGEMM there, NEON too),
// F32 / F16 / BF16 weights (SGEMM), K not a multiple of the block size (the loaders refuse such tensors).
// Glossary: m activation rows, R weight rows, K values per row, nb = K / 32 blocks, nbo = nb rounded up to 8.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Quill.Kernels;

namespace Quill.Quantization;

/// <summary>Integer GEMM of block-format weights against many activation rows quantized to int8 (quantized prefill).</summary>
internal static unsafe class QuantGemm
{
    /// <summary>Weight rows unpacked per slab (per thread at a time).</summary>
    private const int Slab = 16;

    // QUILL_QUANT_GEMM=0 turns it off (to compare with the dequantize + SGEMM path)
    private static bool enabled = IntegerDot.Vectorized && Environment.GetEnvironmentVariable("QUILL_QUANT_GEMM") != "0";

    /// <summary>
    /// True where quantized products of many rows take this GEMM: the default on CPUs with AVX2 + FMA (elsewhere
    /// quantized prefill dequantizes for SGEMM). Benchmarks and tests may turn it off to compare; it cannot be
    /// turned on where the kernels cannot run.
    /// </summary>
    public static bool Enabled
    {
        get => enabled;
        set => enabled = value && IntegerDot.Vectorized;
    }

    /// <summary>The path on this CPU, for quill version.</summary>
    public static string PathName => !Enabled ? "off (dequantize + sgemm)"
        : Use512 && Avx512BW.IsSupported ? "avx512bw 4x4" : AvxVnni.IsSupported ? "avx-vnni 4x4" : "avx2 4x4";

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

    /// <summary>
    /// m activation rows of K values quantized in one flavor, rows Kp = K rounded up to 64 apart (zero padded, so the
    /// 512-bit kernel takes blocks in pairs): Q and NegQ (-Q, for the signed weights' sign select) [m, Kp], lane
    /// scales [m, Kp / 4] (each block's scale in 8 lanes; 0 in the padding), offsets [m, nbo] (zero padded).
    /// </summary>
    internal sealed class Rows
    {
        [ThreadStatic] private static Rows? perThread;

        public int M { get; private set; }

        public int K { get; private set; }

        /// <summary>Row stride of Q, NegQ: K rounded up to 64.</summary>
        public int Kp { get; private set; }

        public Flavor Kind { get; private set; }

        public sbyte[] Q { get; private set; } = [];

        public sbyte[] NegQ { get; private set; } = [];

        public float[] LaneScale { get; private set; } = [];

        public float[] Offset { get; private set; } = [];

        /// <summary>
        /// Quantizes x [m, K] (rows ldx apart) into the calling thread's reused buffers (valid until this thread calls
        /// again); vector false pins the scalar quantizer (tests).
        /// </summary>
        public static Rows Quantize(Flavor kind, float* x, int ldx, int m, int k, bool vector = true)
        {
            var r = perThread ??= new Rows();
            r.Fill(kind, x, ldx, m, k, vector && Avx2.IsSupported);
            return r;
        }

        /// <summary>The scale of activation row i's block b.</summary>
        public float BlockScale(int i, int b) => LaneScale[(long)i * (Kp / 4) + 8 * b];

        private void Fill(Flavor kind, float* x, int ldx, int m, int k, bool vector)
        {
            int blockSize = kind == Flavor.Q8_K ? 256 : 32;
            if (k % blockSize != 0) throw new ArgumentException($"rows of {k} values are not whole {blockSize}-value blocks.", nameof(k));
            int kp = Pad64(k), nb = k / 32, nbo = Pad8(nb);
            if (Q.Length < (long)m * kp)
            {
                Q = GC.AllocateUninitializedArray<sbyte>(checked(m * kp), pinned: true);
                NegQ = GC.AllocateUninitializedArray<sbyte>(m * kp, pinned: true);
                LaneScale = GC.AllocateUninitializedArray<float>(m * kp / 4, pinned: true);
            }
            if (Offset.Length < m * nbo) Offset = GC.AllocateUninitializedArray<float>(m * nbo, pinned: true);
            M = m;
            K = k;
            Kp = kp;
            Kind = kind;
            nint xa = (nint)x;
            fixed (sbyte* q0 = Q)
            fixed (sbyte* n0 = NegQ)
            fixed (float* s0 = LaneScale)
            fixed (float* o0 = Offset)
            {
                nint qa = (nint)q0, na = (nint)n0, sa = (nint)s0, oa = (nint)o0;
                KernelThreads.ParallelFor(m, Math.Max(1, 16384 / k), (i0, i1) =>
                {
                    int* sums = stackalloc int[nb];
                    float* scales = stackalloc float[nb];
                    float* offs = stackalloc float[nb];
                    short* sum16 = stackalloc short[k / 16];
                    float* d256 = stackalloc float[Math.Max(1, k / 256)];
                    for (int i = i0; i < i1; i++)
                    {
                        float* xi = (float*)xa + (long)i * ldx;
                        sbyte* qi = (sbyte*)qa + (long)i * kp;
                        float* si = (float*)sa + (long)i * kp / 4;
                        float* oi = (float*)oa + (long)i * nbo;
                        if (kind == Flavor.Q8_K)
                        {
                            Q8Activation.QuantizeRow256(xi, k, qi, d256, sum16, vector);
                            for (int b = 0; b < nb; b++)
                            {
                                scales[b] = d256[b / 8];
                                offs[b] = scales[b] * (sum16[2 * b] + sum16[2 * b + 1]);
                            }
                        }
                        else
                        {
                            Q8Activation.QuantizeRow32(xi, k, qi, scales, sums, offs, vector);
                            // Q8_1: ggml's s; Q8_0: dx * sum q (for Q4_0's -8 and Q5_0's -16, taken as minimums)
                            if (kind == Flavor.Q8_0) for (int b = 0; b < nb; b++) offs[b] = scales[b] * sums[b];
                        }
                        for (int b = 0; b < nbo; b++) oi[b] = b < nb ? offs[b] : 0f;
                        for (int b = 0; b < kp / 32; b++) Vector256.Store(Vector256.Create(b < nb ? scales[b] : 0f), si + 8 * b);
                        for (int j = k; j < kp; j++) qi[j] = 0;
                        sbyte* ni = (sbyte*)na + (long)i * kp;
                        for (int j = 0; j < kp; j += 32) Vector256.Store(-Vector256.Load(qi + j), ni + j);
                    }
                });
            }
        }
    }

    private static int Pad64(int k) => (k + 63) & ~63;

    /// <summary>True when the 512-bit kernels run (AVX-512 BW); tests turn it off to hold the 256-bit ones too.</summary>
    internal static bool Use512 { get; set; } = Avx512BW.IsSupported;

    /// <summary>
    /// y[i, r] = W[r] . x[i] for a block-format W [rows, K] at w (rows rowBytes apart) and x quantized in
    /// <see cref="FlavorOf"/>(type); y rows ldy apart.
    /// </summary>
    public static void Multiply(GgmlType type, byte* w, int rows, long rowBytes, Rows x, float* y, int ldy)
    {
        if (x.Kind != FlavorOf(type)) throw new ArgumentException($"{type} weights need {FlavorOf(type)} activations, got {x.Kind}.", nameof(x));
        int k = x.K, kp = x.Kp, m = x.M, slabs = (rows + Slab - 1) / Slab;
        nint wa = (nint)w, ya = (nint)y;
        bool signed = SignedValues(type), wide = Use512 && Avx512BW.IsSupported;
        // about a million multiply-adds per slab before a second thread joins
        KernelThreads.ParallelFor(slabs, Math.Max(1, (1 << 20) / Math.Max(1, Slab * k * m)), (s0, s1) =>
        {
            var buf = SlabBuffer.ForThread(kp);
            fixed (byte* v = buf.Values)
            fixed (float* sv = buf.LaneScales)
            fixed (float* wo = buf.Offsets)
            fixed (sbyte* xq = x.Q)
            fixed (sbyte* xn = x.NegQ)
            fixed (float* xs = x.LaneScale)
            fixed (float* xo = x.Offset)
            {
                for (int s = s0; s < s1; s++)
                {
                    int r0 = s * Slab, n = Math.Min(Slab, rows - r0);
                    for (int r = 0; r < n; r++)
                        Unpack(type, (byte*)wa + (r0 + r) * rowBytes, k, v + (long)r * kp, sv + (long)r * kp / 4, wo + (long)r * Pad8(k / 32));
                    var args = new Args(v, sv, wo, xq, xn, xs, xo, k, kp, (float*)ya + r0, ldy, !signed);
                    if (wide)
                    {
                        if (signed) Slabs512<Signed>(args, m, n);
                        else Slabs512<Unsigned>(args, m, n);
                    }
                    else if (signed)
                    {
                        Slabs<Signed>(args, m, n);
                    }
                    else
                    {
                        Slabs<Unsigned>(args, m, n);
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

        public static SlabBuffer ForThread(int kp)
        {
            var b = perThread ??= new SlabBuffer();
            if (b.Values.Length < Slab * kp)
            {
                b.Values = GC.AllocateUninitializedArray<byte>(Slab * kp, pinned: true);
                b.LaneScales = GC.AllocateUninitializedArray<float>(Slab * kp / 4, pinned: true);
                b.Offsets = GC.AllocateUninitializedArray<float>(Slab * Pad8(kp / 32), pinned: true);
            }
            return b;
        }
    }

    private readonly struct Args(byte* v, float* sv, float* wo, sbyte* xq, sbyte* xn, float* xs, float* xo, int k, int kp, float* y, int ldy, bool offsets)
    {
        public readonly byte* V = v;
        public readonly float* Sv = sv;
        public readonly float* Wo = wo;
        public readonly sbyte* Xq = xq;
        public readonly sbyte* Xn = xn;
        public readonly float* Xs = xs;
        public readonly float* Xo = xo;
        public readonly int K = k;
        public readonly int Kp = kp;
        public readonly float* Y = y;
        public readonly int Ldy = ldy;
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

    private static void Slabs<S>(in Args a, int m, int n) where S : struct, ISign
    {
        if (AvxVnni.IsSupported) Slabs<VnniU8S8, S>(a, m, n);
        else Slabs<Avx2U8S8, S>(a, m, n);
    }

    // The slab's n rows against all m activation rows: 4 x 4 tiles, then the edges one pair at a time.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Slabs<T, S>(in Args a, int m, int n) where T : struct, IU8S8 where S : struct, ISign
    {
        int m4 = m & ~3, n4 = n & ~3;
        for (int i = 0; i < m4; i += 4)
        {
            for (int r = 0; r < n4; r += 4) Tile<T, S>(a, i, r);
            for (int r = n4; r < n; r++)
                for (int ii = i; ii < i + 4; ii++) a.Y[(long)ii * a.Ldy + r] = Pair<T, S>(a, ii, r);
        }
        for (int i = m4; i < m; i++)
            for (int r = 0; r < n; r++) a.Y[(long)i * a.Ldy + r] = Pair<T, S>(a, i, r);
    }

    /// <summary>One block of one (activation, weight) pair: acc + float(dot) * lane scales * dx.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Step<T, S>(Vector256<float> acc, Vector256<byte> u, Vector256<sbyte> w, Vector256<sbyte> x, Vector256<float> scale)
        where T : struct, IU8S8 where S : struct, ISign
    {
        var p = S.IsSigned ? T.Dot(u, Avx2.Sign(x, w)) : T.Dot(u, x);
        return Fma.MultiplyAdd(Avx.ConvertToVector256Single(p), scale, acc);
    }

    /// <summary>The offsets' dot (8 blocks per FMA) added into the pair's accumulator, then the horizontal sum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Finish(in Args a, Vector256<float> acc, int i, int r)
    {
        if (a.HasOffsets)
        {
            int nbo = Pad8(a.K / 32);
            float* wo = a.Wo + (long)r * nbo, xo = a.Xo + (long)i * nbo;
            for (int c = 0; c < nbo; c += 8) acc = Fma.MultiplyAdd(Avx.LoadVector256(wo + c), Avx.LoadVector256(xo + c), acc);
        }
        return Vector256.Sum(acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Pair<T, S>(in Args a, int i, int r) where T : struct, IU8S8 where S : struct, ISign
    {
        int kp = a.Kp, nb = a.K / 32;
        byte* v = a.V + (long)r * kp;
        float* sv = a.Sv + (long)r * kp / 4;
        sbyte* xq = a.Xq + (long)i * kp;
        float* xs = a.Xs + (long)i * kp / 4;
        var acc = Vector256<float>.Zero;
        for (int b = 0; b < nb; b++)
        {
            var w = Avx.LoadVector256((sbyte*)v + 32 * b);
            var u = S.IsSigned ? Avx2.Abs(w) : w.AsByte();
            acc = Step<T, S>(acc, u, w, Avx.LoadVector256(xq + 32 * b), Avx.LoadVector256(sv + 8 * b) * Avx.LoadVector256(xs + 8 * b));
        }
        return Finish(a, acc, i, r);
    }

    // Four activation rows (i .. i + 3) x four weight rows (r .. r + 3) of the slab, 256-bit.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile<T, S>(in Args a, int i, int r) where T : struct, IU8S8 where S : struct, ISign
    {
        int kp = a.Kp, nb = a.K / 32, ls = kp / 4;
        byte* v0 = a.V + (long)r * kp;
        float* sv0 = a.Sv + (long)r * ls;
        sbyte* x0 = a.Xq + (long)i * kp;
        float* xs0 = a.Xs + (long)i * ls;
        Vector256<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector256<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector256<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector256<float> c30 = default, c31 = default, c32 = default, c33 = default;
        for (int b = 0; b < nb; b++)
        {
            var w0 = Avx.LoadVector256((sbyte*)v0 + 32 * b);
            var w1 = Avx.LoadVector256((sbyte*)v0 + kp + 32 * b);
            var w2 = Avx.LoadVector256((sbyte*)v0 + 2 * kp + 32 * b);
            var w3 = Avx.LoadVector256((sbyte*)v0 + 3 * kp + 32 * b);
            var u0 = S.IsSigned ? Avx2.Abs(w0) : w0.AsByte();
            var u1 = S.IsSigned ? Avx2.Abs(w1) : w1.AsByte();
            var u2 = S.IsSigned ? Avx2.Abs(w2) : w2.AsByte();
            var u3 = S.IsSigned ? Avx2.Abs(w3) : w3.AsByte();
            var s0 = Avx.LoadVector256(sv0 + 8 * b);
            var s1 = Avx.LoadVector256(sv0 + ls + 8 * b);
            var s2 = Avx.LoadVector256(sv0 + 2 * ls + 8 * b);
            var s3 = Avx.LoadVector256(sv0 + 3 * ls + 8 * b);

            var x = Avx.LoadVector256(x0 + 32 * b);
            var dx = Avx.LoadVector256(xs0 + 8 * b);
            c00 = Step<T, S>(c00, u0, w0, x, s0 * dx);
            c01 = Step<T, S>(c01, u1, w1, x, s1 * dx);
            c02 = Step<T, S>(c02, u2, w2, x, s2 * dx);
            c03 = Step<T, S>(c03, u3, w3, x, s3 * dx);
            x = Avx.LoadVector256(x0 + kp + 32 * b);
            dx = Avx.LoadVector256(xs0 + ls + 8 * b);
            c10 = Step<T, S>(c10, u0, w0, x, s0 * dx);
            c11 = Step<T, S>(c11, u1, w1, x, s1 * dx);
            c12 = Step<T, S>(c12, u2, w2, x, s2 * dx);
            c13 = Step<T, S>(c13, u3, w3, x, s3 * dx);
            x = Avx.LoadVector256(x0 + 2 * kp + 32 * b);
            dx = Avx.LoadVector256(xs0 + 2 * ls + 8 * b);
            c20 = Step<T, S>(c20, u0, w0, x, s0 * dx);
            c21 = Step<T, S>(c21, u1, w1, x, s1 * dx);
            c22 = Step<T, S>(c22, u2, w2, x, s2 * dx);
            c23 = Step<T, S>(c23, u3, w3, x, s3 * dx);
            x = Avx.LoadVector256(x0 + 3 * kp + 32 * b);
            dx = Avx.LoadVector256(xs0 + 3 * ls + 8 * b);
            c30 = Step<T, S>(c30, u0, w0, x, s0 * dx);
            c31 = Step<T, S>(c31, u1, w1, x, s1 * dx);
            c32 = Step<T, S>(c32, u2, w2, x, s2 * dx);
            c33 = Step<T, S>(c33, u3, w3, x, s3 * dx);
        }
        float* y = a.Y + (long)i * a.Ldy + r;
        int ld = a.Ldy;
        y[0] = Finish(a, c00, i, r);
        y[1] = Finish(a, c01, i, r + 1);
        y[2] = Finish(a, c02, i, r + 2);
        y[3] = Finish(a, c03, i, r + 3);
        y[ld] = Finish(a, c10, i + 1, r);
        y[ld + 1] = Finish(a, c11, i + 1, r + 1);
        y[ld + 2] = Finish(a, c12, i + 1, r + 2);
        y[ld + 3] = Finish(a, c13, i + 1, r + 3);
        y[2 * ld] = Finish(a, c20, i + 2, r);
        y[2 * ld + 1] = Finish(a, c21, i + 2, r + 1);
        y[2 * ld + 2] = Finish(a, c22, i + 2, r + 2);
        y[2 * ld + 3] = Finish(a, c23, i + 2, r + 3);
        y[3 * ld] = Finish(a, c30, i + 3, r);
        y[3 * ld + 1] = Finish(a, c31, i + 3, r + 1);
        y[3 * ld + 2] = Finish(a, c32, i + 3, r + 2);
        y[3 * ld + 3] = Finish(a, c33, i + 3, r + 3);
    }

    // ---- 512-bit (AVX-512 BW): two blocks per instruction (rows zero padded to whole pairs); signed weights take
    // x or -x by the weight's sign mask (AVX-512 has no vpsignb) ----

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Slabs512<S>(in Args a, int m, int n) where S : struct, ISign
    {
        int m4 = m & ~3, n4 = n & ~3;
        for (int i = 0; i < m4; i += 4)
        {
            for (int r = 0; r < n4; r += 4) Tile512<S>(a, i, r);
            for (int r = n4; r < n; r++)
                for (int ii = i; ii < i + 4; ii++) a.Y[(long)ii * a.Ldy + r] = Pair512<S>(a, ii, r);
        }
        for (int i = m4; i < m; i++)
            for (int r = 0; r < n; r++) a.Y[(long)i * a.Ldy + r] = Pair512<S>(a, i, r);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Step512<S>(Vector512<float> acc, Vector512<byte> u, Vector512<sbyte> negative, Vector512<sbyte> x, Vector512<sbyte> nx, Vector512<float> scale)
        where S : struct, ISign
    {
        var xs = S.IsSigned ? Vector512.ConditionalSelect(negative, nx, x) : x;
        var p = Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(u, xs), Vector512.Create((short)1));
        return Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(p), scale, acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Finish512(in Args a, Vector512<float> acc, int i, int r) => Finish(a, acc.GetLower() + acc.GetUpper(), i, r);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Pair512<S>(in Args a, int i, int r) where S : struct, ISign
    {
        int kp = a.Kp;
        byte* v = a.V + (long)r * kp;
        float* sv = a.Sv + (long)r * kp / 4;
        sbyte* xq = a.Xq + (long)i * kp, xn = a.Xn + (long)i * kp;
        float* xs = a.Xs + (long)i * kp / 4;
        var acc = Vector512<float>.Zero;
        for (int b = 0; b < kp / 32; b += 2)
        {
            var w = Vector512.Load((sbyte*)v + 32 * b);
            var u = S.IsSigned ? Avx512BW.Abs(w) : w.AsByte();
            var neg = Vector512.LessThan(w, Vector512<sbyte>.Zero);
            acc = Step512<S>(acc, u, neg, Vector512.Load(xq + 32 * b), Vector512.Load(xn + 32 * b), Vector512.Load(sv + 8 * b) * Vector512.Load(xs + 8 * b));
        }
        return Finish512(a, acc, i, r);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile512<S>(in Args a, int i, int r) where S : struct, ISign
    {
        int kp = a.Kp, ls = kp / 4;
        byte* v0 = a.V + (long)r * kp;
        float* sv0 = a.Sv + (long)r * ls;
        sbyte* x0 = a.Xq + (long)i * kp, n0 = a.Xn + (long)i * kp;
        float* xs0 = a.Xs + (long)i * ls;
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default;
        for (int b = 0; b < kp / 32; b += 2)
        {
            var w0 = Vector512.Load((sbyte*)v0 + 32 * b);
            var w1 = Vector512.Load((sbyte*)v0 + kp + 32 * b);
            var w2 = Vector512.Load((sbyte*)v0 + 2 * kp + 32 * b);
            var w3 = Vector512.Load((sbyte*)v0 + 3 * kp + 32 * b);
            var u0 = S.IsSigned ? Avx512BW.Abs(w0) : w0.AsByte();
            var u1 = S.IsSigned ? Avx512BW.Abs(w1) : w1.AsByte();
            var u2 = S.IsSigned ? Avx512BW.Abs(w2) : w2.AsByte();
            var u3 = S.IsSigned ? Avx512BW.Abs(w3) : w3.AsByte();
            var g0 = S.IsSigned ? Vector512.LessThan(w0, Vector512<sbyte>.Zero) : default;
            var g1 = S.IsSigned ? Vector512.LessThan(w1, Vector512<sbyte>.Zero) : default;
            var g2 = S.IsSigned ? Vector512.LessThan(w2, Vector512<sbyte>.Zero) : default;
            var g3 = S.IsSigned ? Vector512.LessThan(w3, Vector512<sbyte>.Zero) : default;
            var s0 = Vector512.Load(sv0 + 8 * b);
            var s1 = Vector512.Load(sv0 + ls + 8 * b);
            var s2 = Vector512.Load(sv0 + 2 * ls + 8 * b);
            var s3 = Vector512.Load(sv0 + 3 * ls + 8 * b);

            var x = Vector512.Load(x0 + 32 * b);
            var nx = S.IsSigned ? Vector512.Load(n0 + 32 * b) : default;
            var dx = Vector512.Load(xs0 + 8 * b);
            c00 = Step512<S>(c00, u0, g0, x, nx, s0 * dx);
            c01 = Step512<S>(c01, u1, g1, x, nx, s1 * dx);
            c02 = Step512<S>(c02, u2, g2, x, nx, s2 * dx);
            c03 = Step512<S>(c03, u3, g3, x, nx, s3 * dx);
            x = Vector512.Load(x0 + kp + 32 * b);
            nx = S.IsSigned ? Vector512.Load(n0 + kp + 32 * b) : default;
            dx = Vector512.Load(xs0 + ls + 8 * b);
            c10 = Step512<S>(c10, u0, g0, x, nx, s0 * dx);
            c11 = Step512<S>(c11, u1, g1, x, nx, s1 * dx);
            c12 = Step512<S>(c12, u2, g2, x, nx, s2 * dx);
            c13 = Step512<S>(c13, u3, g3, x, nx, s3 * dx);
            x = Vector512.Load(x0 + 2 * kp + 32 * b);
            nx = S.IsSigned ? Vector512.Load(n0 + 2 * kp + 32 * b) : default;
            dx = Vector512.Load(xs0 + 2 * ls + 8 * b);
            c20 = Step512<S>(c20, u0, g0, x, nx, s0 * dx);
            c21 = Step512<S>(c21, u1, g1, x, nx, s1 * dx);
            c22 = Step512<S>(c22, u2, g2, x, nx, s2 * dx);
            c23 = Step512<S>(c23, u3, g3, x, nx, s3 * dx);
            x = Vector512.Load(x0 + 3 * kp + 32 * b);
            nx = S.IsSigned ? Vector512.Load(n0 + 3 * kp + 32 * b) : default;
            dx = Vector512.Load(xs0 + 3 * ls + 8 * b);
            c30 = Step512<S>(c30, u0, g0, x, nx, s0 * dx);
            c31 = Step512<S>(c31, u1, g1, x, nx, s1 * dx);
            c32 = Step512<S>(c32, u2, g2, x, nx, s2 * dx);
            c33 = Step512<S>(c33, u3, g3, x, nx, s3 * dx);
        }
        float* y = a.Y + (long)i * a.Ldy + r;
        int ld = a.Ldy;
        y[0] = Finish512(a, c00, i, r);
        y[1] = Finish512(a, c01, i, r + 1);
        y[2] = Finish512(a, c02, i, r + 2);
        y[3] = Finish512(a, c03, i, r + 3);
        y[ld] = Finish512(a, c10, i + 1, r);
        y[ld + 1] = Finish512(a, c11, i + 1, r + 1);
        y[ld + 2] = Finish512(a, c12, i + 1, r + 2);
        y[ld + 3] = Finish512(a, c13, i + 1, r + 3);
        y[2 * ld] = Finish512(a, c20, i + 2, r);
        y[2 * ld + 1] = Finish512(a, c21, i + 2, r + 1);
        y[2 * ld + 2] = Finish512(a, c22, i + 2, r + 2);
        y[2 * ld + 3] = Finish512(a, c23, i + 2, r + 3);
        y[3 * ld] = Finish512(a, c30, i + 3, r);
        y[3 * ld + 1] = Finish512(a, c31, i + 3, r + 1);
        y[3 * ld + 2] = Finish512(a, c32, i + 3, r + 2);
        y[3 * ld + 3] = Finish512(a, c33, i + 3, r + 3);
    }

    /// <summary>
    /// One weight row of <paramref name="type"/> (k values) into the kernel's shape: values [Kp] (signed or unsigned
    /// bytes, natural order), lane scales [Kp / 4] (8 per block), both zero past k (Kp = k rounded up to 64), and
    /// offsets [nbo] (zero padded; zeros for the signed formats).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Unpack(GgmlType type, byte* row, int k, byte* v, float* sv, float* wo)
    {
        int nb = k / 32, nbo = Pad8(nb);
        var m4 = Vector128.Create((byte)0x0F);
        switch (type)
        {
            case GgmlType.Q8_0:
                for (int b = 0; b < nb; b++)
                {
                    byte* blk = row + 34 * b;
                    Vector256.Store(Vector256.Load(blk + 2), v + 32 * b);
                    Vector256.Store(Vector256.Create(Fp16.ToSingle(*(ushort*)blk)), sv + 8 * b);
                }
                break;
            case GgmlType.Q4_0:
            {
                for (int b = 0; b < nb; b++)
                {
                    byte* blk = row + 18 * b;
                    var q = Vector128.Load(blk + 2);
                    Vector128.Store(q & m4, v + 32 * b);
                    Vector128.Store(Vector128.ShiftRightLogical(q, 4), v + 32 * b + 16);
                    float d = Fp16.ToSingle(*(ushort*)blk);
                    Vector256.Store(Vector256.Create(d), sv + 8 * b);
                    wo[b] = -8 * d; // nibble - 8
                }
                break;
            }
            case GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1:
            {
                int bytes = type == GgmlType.Q4_1 ? 20 : type == GgmlType.Q5_0 ? 22 : 24;
                int qsAt = type == GgmlType.Q4_1 ? 4 : type == GgmlType.Q5_0 ? 6 : 8, qhAt = type == GgmlType.Q5_0 ? 2 : 4;
                bool five = type != GgmlType.Q4_1;
                for (int b = 0; b < nb; b++)
                {
                    byte* blk = row + bytes * b;
                    var q = Vector128.Load(blk + qsAt);
                    var lo = q & m4;
                    var hi = Vector128.ShiftRightLogical(q, 4);
                    if (five)
                    {
                        uint qh = *(uint*)(blk + qhAt);
                        lo |= HighBits((ushort)qh);
                        hi |= HighBits((ushort)(qh >> 16));
                    }
                    Vector128.Store(lo, v + 32 * b);
                    Vector128.Store(hi, v + 32 * b + 16);
                    float d = Fp16.ToSingle(*(ushort*)blk);
                    Vector256.Store(Vector256.Create(d), sv + 8 * b);
                    wo[b] = type == GgmlType.Q5_0 ? -16 * d : Fp16.ToSingle(*(ushort*)(blk + 2)); // 5-bit - 16, or + m
                }
                break;
            }
            case GgmlType.Q4_K or GgmlType.Q5_K:
            {
                bool five = type == GgmlType.Q5_K;
                int bytes = five ? 176 : 144, qsAt = five ? 48 : 16;
                var m4w = Vector256.Create((byte)0x0F);
                var one = Vector256.Create((byte)1);
                for (int s = 0; s < nb / 8; s++)
                {
                    byte* blk = row + (long)bytes * s;
                    float d = Fp16.ToSingle(*(ushort*)blk), dmin = Fp16.ToSingle(*(ushort*)(blk + 2));
                    var scales = new ReadOnlySpan<byte>(blk + 4, 12);
                    var qh = five ? Vector256.Load(blk + 16) : default;
                    for (int p = 0; p < 4; p++)
                    {
                        var q = Vector256.Load(blk + qsAt + 32 * p);
                        var lo = q & m4w;
                        var hi = Vector256.ShiftRightLogical(q, 4);
                        if (five)
                        {
                            lo |= (Vector256.ShiftRightLogical(qh, 2 * p) & one) << 4;
                            hi |= (Vector256.ShiftRightLogical(qh, 2 * p + 1) & one) << 4;
                        }
                        int b = 8 * s + 2 * p;
                        Vector256.Store(lo, v + 32 * b);
                        Vector256.Store(hi, v + 32 * b + 32);
                        var (s0, n0) = Q4_K.ScaleMin(2 * p, scales);
                        var (s1, n1) = Q4_K.ScaleMin(2 * p + 1, scales);
                        Vector256.Store(Vector256.Create(d * s0), sv + 8 * b);
                        Vector256.Store(Vector256.Create(d * s1), sv + 8 * b + 8);
                        wo[b] = -dmin * n0;
                        wo[b + 1] = -dmin * n1;
                    }
                }
                break;
            }
            case GgmlType.Q6_K:
            {
                var m4w = Vector256.Create((byte)0x0F);
                var m2 = Vector256.Create((byte)0x03);
                var bias = Vector256.Create((byte)32);
                for (int s = 0; s < nb / 8; s++)
                {
                    byte* blk = row + 210L * s;
                    float d = Fp16.ToSingle(*(ushort*)(blk + 208));
                    sbyte* sc = (sbyte*)(blk + 192);
                    for (int h = 0; h < 2; h++)
                    {
                        var ql0 = Vector256.Load(blk + 64 * h);
                        var ql1 = Vector256.Load(blk + 64 * h + 32);
                        var qhv = Vector256.Load(blk + 128 + 32 * h);
                        byte* o = v + 256L * s + 128 * h;
                        Vector256.Store(((ql0 & m4w) | ((qhv & m2) << 4)) - bias, o);
                        Vector256.Store(((ql1 & m4w) | ((Vector256.ShiftRightLogical(qhv, 2) & m2) << 4)) - bias, o + 32);
                        Vector256.Store((Vector256.ShiftRightLogical(ql0, 4) | ((Vector256.ShiftRightLogical(qhv, 4) & m2) << 4)) - bias, o + 64);
                        Vector256.Store((Vector256.ShiftRightLogical(ql1, 4) | ((Vector256.ShiftRightLogical(qhv, 6) & m2) << 4)) - bias, o + 96);
                    }
                    for (int j = 0; j < 8; j++)
                    {
                        // block j of 32 values: sub-blocks 2j (lanes 0-3) and 2j + 1 (lanes 4-7)
                        Vector256.Store(Vector256.Create(Vector128.Create(d * sc[2 * j]), Vector128.Create(d * sc[2 * j + 1])), sv + 8 * (8 * s + j));
                    }
                }
                break;
            }
            default:
                throw new ArgumentException($"{type} has no integer GEMM.", nameof(type));
        }
        // the zero padding: blocks up to a whole pair (values and scales), offsets up to a multiple of 8
        for (int b = nb; b < Pad64(k) / 32; b++)
        {
            Vector256.Store(Vector256<byte>.Zero, v + 32 * b);
            Vector256.Store(Vector256<float>.Zero, sv + 8 * b);
        }
        if (SignedValues(type)) nb = 0; // offsets unused
        for (int b = nb; b < nbo; b++) wo[b] = 0f;
    }

    /// <summary>Bit j of 16 fifth bits as 0x10 in byte j.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> HighBits(ushort bits)
    {
        var pick = Vector128.Create((byte)0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
        var bit = Vector128.Create((byte)1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
        var h = Vector128.Shuffle(Vector128.Create(bits).AsByte(), pick);
        return Vector128.Equals(h & bit, bit) & Vector128.Create((byte)0x10);
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
