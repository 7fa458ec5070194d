// The integer dot kernels: one weight row in Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K or Q6_K against an activation
// quantized to int8 (Q8Activation). Each block's uint8 x int8 products are summed with AVX-VNNI vpdpbusd where
// available, else AVX2 pmaddubsw + pmaddwd, else plain loops; the block (or sub-block) scales are applied
// afterwards, and the offsets of the formats (Q4_0's -8, Q5_0's -16, Q6_K's -32, the minimums of Q4_1 / Q5_1 /
// K-quants) are folded in through the activation's block sums. Q8_0 weights are signed, so |w| is the unsigned
// operand and x takes w's sign. Q8_0 and Q4_0, the common decode formats, have kernels tuned for streaming
// weights from memory (prefetch, table scales) that take the activation as raw pointers, so QuantDot's parallel
// region calls them without touching the Q8Activation object per row. Each kernel has a scalar reference twin
// written from the format's dequantization formula, which the tests hold the vector paths to. The vector kernels
// are generic over the u8 x s8 instruction (VnniU8S8 / Avx2U8S8) so that both paths can be tested on one machine.
// Q4_0 also has an AVX-512 VBMI kernel (four blocks per step), which QuantDot takes where the CPU has it. The
// kernels proper take the f16 table as an argument and are never inlined, so the JIT keeps their accumulators in
// registers (a static read or a call in the loop's method made it spill them to the stack: 2x slower).
// The K-quant kernels (Q4_K, Q5_K, Q6_K) are in IntegerDotKQuants.cs, the ARM64 ones in IntegerDotNeon.cs.
// Does not handle: row parallelism (QuantDot), float activations (QuantDot.Dot dequantizes for those).
// Glossary: nb = blocks in the row; d = weight scale, dx = activation scale; q = int8 activation values.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;
using Quill.Kernels;

namespace Quill.Quantization;

internal static unsafe partial class IntegerDot
{
    /// <summary>True when the vector kernels can run (AVX2 + FMA); otherwise the scalar twins are used.</summary>
    public static bool Vectorized => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>Every f16 bit pattern as a float, for callers that pass it to the row kernels: [65536].</summary>
    internal static float[] Halves => HalfTable;

    /// <summary>The path the dispatching kernels take on this CPU.</summary>
    public static string PathName => (AvxVnni.IsSupported ? "avx-vnni" : Vectorized ? "avx2" : "") is { Length: > 0 } x86
        ? (Avx512Q4, Avx512Small) switch
        {
            (true, true) => x86 + " (q4_0: avx-512 vbmi; q4_1, q5_0, q5_1: avx-512 bw)",
            (true, false) => x86 + " (q4_0: avx-512 vbmi)",
            (false, true) => x86 + " (q4_1, q5_0, q5_1: avx-512 bw)",
            _ => x86,
        }
        : Neon ? (Dp.IsSupported ? "neon sdot" : "neon") : "scalar";

    /// <summary>ARM64 with AdvSimd: every block format runs on NEON (Q8_0 and Q4_0 here, the others in IntegerDotNeon.cs).</summary>
    public static bool Neon => AdvSimd.Arm64.IsSupported;

    // ---- Q8_0 and Q4_0: the decode kernels. One row against the activation's 32-value groups (q int8 values, d
    // scales, Q4_0 also the block sums); block scales (f16) read through a 64 K-entry table; two blocks per step into
    // two accumulators; weights prefetched PrefetchBytes ahead. Rows go one after another, so the weights are read as
    // one sequential stream (four interleaved rows stalled the prefetcher: 3-4x slower from memory). ----

    /// <summary>
    /// How far ahead of the row being read the Q8_0 / Q4_0 kernels prefetch: from memory 4 KiB measured 6-12% faster
    /// than none (the hardware prefetcher alone runs too little ahead of a kernel this busy) and 8 KiB another 4-5%
    /// (16 KiB and 1 KiB slower); from cache prefetching costs about 7%, but decode reads weights from memory.
    /// </summary>
    private const int PrefetchBytes = 8192;

    // Every cache line of the next `bytes` bytes read, PrefetchBytes ahead: one prefetch per 64 bytes, so a step that
    // reads more than a line (two Q8_0 blocks, a K-quant super-block) leaves none to the hardware prefetcher. (One per
    // step had covered 44% of Q4_K's lines and 30% of Q6_K's: from memory that was slower than no prefetch at all,
    // 54 against 41 cycles per Q4_K super-block on one thread; with every line, 35-37.)
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchLines2(byte* p)
    {
        Sse.Prefetch0(p + PrefetchBytes);
        Sse.Prefetch0(p + PrefetchBytes + 64);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchLines3(byte* p)
    {
        PrefetchLines2(p);
        Sse.Prefetch0(p + PrefetchBytes + 128);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchLines4(byte* p)
    {
        PrefetchLines3(p);
        Sse.Prefetch0(p + PrefetchBytes + 192);
    }

    /// <summary>Every f16 bit pattern as a float: [65536].</summary>
    private static readonly float[] HalfTable = BuildHalfTable();

    private static float[] BuildHalfTable()
    {
        var t = new float[65536];
        for (int i = 0; i < t.Length; i++) t[i] = Fp16.ToSingle((ushort)i);
        return t;
    }

    // ---- Q8_0: 34-byte blocks, value = q * d; per block |w| . (x given w's sign) ----

    /// <summary>One Q8_0 row (nb blocks) on the best path this CPU has. q: [nb * 32]; d: [nb]</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Q8_0(byte* w, sbyte* q, float* d, int nb) =>
        AvxVnni.IsSupported ? Q8_0<VnniU8S8>(w, q, d, nb)
        : Vectorized ? Q8_0<Avx2U8S8>(w, q, d, nb)
        : Neon ? Q8_0Neon(w, q, d, nb)
        : Q8_0Reference(w, q, d, nb);

    public static float Q8_0<T>(byte* w, sbyte* q, float* d, int nb) where T : struct, IU8S8
    {
        fixed (float* table = HalfTable)
            return Q8_0Kernel<T>(w, q, d, nb, table);
    }

    // The kernels proper take the f16 table as an argument: reading a static inside the loop's method brings a
    // class-initialization helper call, around which the JIT keeps the vector accumulators in memory (measured 2x
    // slower). For the same reason the row kernels are never inlined into their callers (QuantDot's parallel loop).
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Q8_0Kernel<T>(byte* w, sbyte* q, float* d, int nb, float* table) where T : struct, IU8S8
    {
        var a0 = Vector256<float>.Zero;
        var a1 = Vector256<float>.Zero;
        int b = 0;
        {
            for (; b + 2 <= nb; b += 2)
            {
                PrefetchLines2(w + b * 34); // 68 bytes a step
                a0 = Q8Block<T>(w + b * 34, Avx.LoadVector256(q + b * 32), d[b], table, a0);
                a1 = Q8Block<T>(w + (b + 1) * 34, Avx.LoadVector256(q + (b + 1) * 32), d[b + 1], table, a1);
            }
            if (b < nb) a0 = Q8Block<T>(w + b * 34, Avx.LoadVector256(q + b * 32), d[b], table, a0);
        }
        return Vector256.Sum(a0 + a1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Q8Block<T>(byte* block, Vector256<sbyte> xv, float dx, float* table, Vector256<float> acc) where T : struct, IU8S8
    {
        var wv = Avx.LoadVector256((sbyte*)(block + 2));
        var p = T.Dot(Avx2.Abs(wv), Avx2.Sign(xv, wv));
        return Fma.MultiplyAdd(Avx.ConvertToVector256Single(p), Vector256.Create(table[*(ushort*)block] * dx), acc);
    }

    /// <summary>
    /// One Q8_0 row on ARM64 NEON: per block, 32 int8 weights times 32 int8 activations into four int32 lanes (sdot
    /// when the core has the dot-product extension, else widening multiplies and pairwise adds), scaled into float.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q8_0Neon(byte* w, sbyte* q, float* d, int nb)
    {
        var acc = Vector128<float>.Zero;
        fixed (float* table = HalfTable)
        {
            for (int b = 0; b < nb; b++)
            {
                byte* block = w + (long)b * 34;
                var w0 = AdvSimd.LoadVector128((sbyte*)(block + 2));
                var w1 = AdvSimd.LoadVector128((sbyte*)(block + 18));
                var p = NeonDot(w0, AdvSimd.LoadVector128(q + b * 32), w1, AdvSimd.LoadVector128(q + b * 32 + 16));
                acc = AdvSimd.FusedMultiplyAdd(acc, AdvSimd.ConvertToSingle(p), Vector128.Create(table[*(ushort*)block] * d[b]));
            }
        }
        return Vector128.Sum(acc);
    }

    /// <summary>One Q4_0 row on ARM64 NEON: nibbles unpacked to signed values (nibble - 8), then as Q8_0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q4_0Neon(byte* w, sbyte* q, float* d, int nb)
    {
        var acc = Vector128<float>.Zero;
        var mask = Vector128.Create((byte)0x0F);
        var eight = Vector128.Create((byte)8);
        fixed (float* table = HalfTable)
        {
            for (int b = 0; b < nb; b++)
            {
                byte* block = w + (long)b * 18;
                var raw = AdvSimd.LoadVector128(block + 2);
                // (nibble - 8) wraps in bytes to the right two's-complement int8: values 0..15 and 16..31
                var lo = AdvSimd.Subtract(AdvSimd.And(raw, mask), eight).AsSByte();
                var hi = AdvSimd.Subtract(AdvSimd.ShiftRightLogical(raw, 4), eight).AsSByte();
                var p = NeonDot(lo, AdvSimd.LoadVector128(q + b * 32), hi, AdvSimd.LoadVector128(q + b * 32 + 16));
                acc = AdvSimd.FusedMultiplyAdd(acc, AdvSimd.ConvertToSingle(p), Vector128.Create(table[*(ushort*)block] * d[b]));
            }
        }
        return Vector128.Sum(acc);
    }

    /// <summary>a0 . b0 + a1 . b1 over int8 lanes, as four int32 partial sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> NeonDot(Vector128<sbyte> a0, Vector128<sbyte> b0, Vector128<sbyte> a1, Vector128<sbyte> b1)
    {
        if (Dp.IsSupported) return Dp.DotProduct(Dp.DotProduct(Vector128<int>.Zero, a0, b0), a1, b1);
        var s = AdvSimd.MultiplyWideningLower(a0.GetLower(), b0.GetLower());
        s = AdvSimd.MultiplyWideningUpperAndAdd(s, a0, b0);
        var t = AdvSimd.MultiplyWideningLower(a1.GetLower(), b1.GetLower());
        t = AdvSimd.MultiplyWideningUpperAndAdd(t, a1, b1);
        return AdvSimd.AddPairwiseWideningAndAdd(AdvSimd.AddPairwiseWidening(s), t);
    }

    /// <summary>Scalar twin of <see cref="Q8_0{T}"/>, from the format's formula.</summary>
    public static float Q8_0Reference(byte* w, sbyte* q, float* d, int nb)
    {
        float sum = 0;
        for (int b = 0; b < nb; b++)
        {
            byte* blk = w + (long)b * 34;
            int dot = 0;
            for (int i = 0; i < 32; i++) dot += (sbyte)blk[2 + i] * q[b * 32 + i];
            sum += dot * (Fp16.ToSingle(*(ushort*)blk) * d[b]);
        }
        return sum;
    }

    // ---- Q4_0: 18-byte blocks, value = (nibble - 8) * d; nibbles (unsigned) . x minus 8 * sum(x) per block ----

    /// <summary>One Q4_0 row (nb blocks) on the best path this CPU has. q: [nb * 32]; d, sums: [nb]</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Q4_0(byte* w, sbyte* q, float* d, int* sums, int nb) =>
        AvxVnni.IsSupported ? Q4_0<VnniU8S8>(w, q, d, sums, nb)
        : Vectorized ? Q4_0<Avx2U8S8>(w, q, d, sums, nb)
        : Neon ? Q4_0Neon(w, q, d, nb)
        : Q4_0Reference(w, q, d, nb);

    /// <summary>
    /// Two blocks per step, one per 128-bit lane: both blocks' 16 packed bytes in one vector give all 64 nibbles with
    /// one mask and one shift; the activation's halves are paired to match (values 0-15 of both blocks, then 16-31),
    /// the two products summed in int16 before one pmaddwd (nibbles are at most 15, so no int16 overflow), one
    /// conversion and one FMA with the two blocks' scales. The -8 offset: 8 d dx sum(x) per block, subtracted at the end.
    /// </summary>
    public static float Q4_0<T>(byte* w, sbyte* q, float* d, int* sums, int nb) where T : struct, IU8S8
    {
        fixed (float* table = HalfTable)
            return Q4_0Kernel<T>(w, q, d, sums, nb, table);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Q4_0Kernel<T>(byte* w, sbyte* q, float* d, int* sums, int nb, float* table) where T : struct, IU8S8
    {
        var acc = Vector256<float>.Zero;
        var mask = Vector256.Create((byte)0x0F);
        float corr0 = 0, corr1 = 0;
        int b = 0;
        {
            for (; b + 2 <= nb; b += 2)
            {
                byte* b0 = w + b * 18;
                Sse.Prefetch0(b0 + PrefetchBytes);
                var raw = Vector256.Create(Sse2.LoadVector128(b0 + 2), Sse2.LoadVector128(b0 + 20));
                var lo = raw & mask;
                var hi = Avx2.ShiftRightLogical(raw.AsUInt16(), 4).AsByte() & mask;
                var x0 = Avx.LoadVector256(q + b * 32);
                var x1 = Avx.LoadVector256(q + b * 32 + 32);
                var p = T.DotNibbles2(lo, Avx2.Permute2x128(x0, x1, 0x20), hi, Avx2.Permute2x128(x0, x1, 0x31));
                float s0 = table[*(ushort*)b0] * d[b], s1 = table[*(ushort*)(b0 + 18)] * d[b + 1];
                acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(p), Vector256.Create(Vector128.Create(s0), Vector128.Create(s1)), acc);
                corr0 += s0 * sums[b];
                corr1 += s1 * sums[b + 1];
            }
            if (b < nb) acc = Q4Block<T>(w + b * 18, Avx.LoadVector256(q + b * 32), d[b], 8 * sums[b], Vector128.Create((byte)0x0F), table, acc);
        }
        return Vector256.Sum(acc) - 8 * (corr0 + corr1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Q4Block<T>(byte* block, Vector256<sbyte> xv, float dx, int corr, Vector128<byte> mask, float* table, Vector256<float> acc) where T : struct, IU8S8
    {
        var raw = Sse2.LoadVector128(block + 2);
        var lo = raw & mask;
        var hi = Sse2.ShiftRightLogical(raw.AsUInt16(), 4).AsByte() & mask;
        var nib = Vector256.Create(lo, hi);
        // start lane 0 at the offset before the float conversion: sum over lanes = dot - 8 * sum(x)
        var p = T.DotAdd(Vector256.CreateScalar(-corr), nib, xv);
        return Fma.MultiplyAdd(Avx.ConvertToVector256Single(p), Vector256.Create(table[*(ushort*)block] * dx), acc);
    }

    /// <summary>True when the AVX-512 Q4_0 kernel can run: AVX-512 F, BW and VBMI (byte permutes), e.g. Zen 4, Ice Lake and later.</summary>
    public static bool Avx512Q4 => Avx512F.IsSupported && Avx512BW.IsSupported && Avx512Vbmi.IsSupported;

    /// <summary>
    /// One Q4_0 row, four blocks (128 values, 72 bytes) per step in 512-bit registers, for CPUs with AVX-512 VBMI.
    /// Two loads cover the four blocks; one two-source byte permute gathers their 64 packed bytes, another (one
    /// source) puts each block's f16 scale in the high half of its four int32 lanes, where shifts, a multiply by 2^112
    /// and a ternary-logic sign merge make it an f32 (exact for every finite f16, subnormals included; quantizers never
    /// write infinite or NaN scales). The activation's halves are paired with two qword permutes; products as in
    /// <see cref="Q4_0{T}"/> (int16 sums of both pmaddubsw, one pmaddwd); the -8 offsets (corr4) and scales (dx4) come
    /// precomputed with the activation, four int32 / f32 lanes per block. Blocks past the last whole four go to
    /// <see cref="Q4_0{T}"/>. q: [nb * 32]; dx4, corr4: [nb * 4]; d, sums: [nb]
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static float Q4_0Avx512(byte* w, sbyte* q, float* dx4, int* corr4, float* d, int* sums, int nb)
    {
        var acc = Vector512<float>.Zero;
        var mask = Vector512.Create((byte)0x0F);
        var ones = Vector512.Create((short)1);
        // byte k of the four blocks' packed nibbles: offset 18 (k / 16) + 2 + k % 16, from the load at 0 below 64 and
        // else from the load at 8 (index 64 + offset - 8)
        var nibbleIndex = Vector512.Create((byte)2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 56, 57, 58, 59, 60, 61, 62, 63, 120, 121, 122, 123, 124, 125, 126, 127);
        // int32 lane i: bytes 2, 3 (and 0, 1, ignored) the f16 scale of block i / 4, at offset 18 (i / 4)
        var scaleIndex = Vector512.Create((byte)0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 18, 19, 18, 19, 18, 19, 18, 19, 18, 19, 18, 19, 18, 19, 18, 19, 36, 37, 36, 37, 36, 37, 36, 37, 36, 37, 36, 37, 36, 37, 36, 37, 54, 55, 54, 55, 54, 55, 54, 55, 54, 55, 54, 55, 54, 55, 54, 55);
        var lowHalves = Vector512.Create(0L, 1, 4, 5, 8, 9, 12, 13);
        var highHalves = Vector512.Create(2L, 3, 6, 7, 10, 11, 14, 15);
        var magnitude = Vector512.Create(0x0FFFE000u);
        var sign = Vector512.Create(0x80000000u);
        var rebias = Vector512.Create(5.192297e33f); // 2^112: f16 exponent bias 15 -> f32 bias 127
        int b = 0;
        for (; b + 4 <= nb; b += 4)
        {
            byte* g = w + b * 18;
            PrefetchLines2(g); // 72 bytes a step
            var lower = Vector512.Load(g);
            var upper = Vector512.Load(g + 8);
            var packed = Avx512Vbmi.PermuteVar64x8x2(lower, nibbleIndex, upper);
            var lo = packed & mask;
            var hi = Avx512BW.ShiftRightLogical(packed.AsUInt16(), 4).AsByte() & mask;
            var x0 = Vector512.Load((long*)(q + b * 32));
            var x1 = Vector512.Load((long*)(q + b * 32 + 64));
            var xa = Avx512F.PermuteVar8x64x2(x0, lowHalves, x1).AsSByte();
            var xb = Avx512F.PermuteVar8x64x2(x0, highHalves, x1).AsSByte();
            var s16 = Avx512BW.MultiplyAddAdjacent(lo, xa) + Avx512BW.MultiplyAddAdjacent(hi, xb);
            var p = Avx512BW.MultiplyAddAdjacent(s16, ones) + Vector512.Load(corr4 + b * 4);
            // f16 scale bits h in the high half of each lane: |value| = f32 bits (h & 0x7FFF) << 13, times 2^112
            var h = Avx512Vbmi.PermuteVar64x8(lower, scaleIndex).AsUInt32();
            var mag = (Vector512.ShiftRightLogical(h, 3) & magnitude).AsSingle() * rebias;
            var scale = Avx512F.TernaryLogic(mag.AsUInt32(), h, sign, 0xF8).AsSingle(); // mag | (h & sign)
            acc = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(p), scale * Vector512.Load(dx4 + b * 4), acc);
        }
        float sum = Vector256.Sum(acc.GetLower() + acc.GetUpper());
        return b < nb ? sum + Q4_0Tail(w + b * 18, q + b * 32, d + b, sums + b, nb - b) : sum;
    }

    // The last nb % 4 blocks of Q4_0Avx512, not inlined: a call inside its loop's method makes the JIT keep the
    // accumulators in memory.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float Q4_0Tail(byte* w, sbyte* q, float* d, int* sums, int nb) => Q4_0<Avx2U8S8>(w, q, d, sums, nb);

    /// <summary>Scalar twin of <see cref="Q4_0{T}"/>: value = (nibble - 8) * d; low nibbles are values 0..15, high 16..31.</summary>
    public static float Q4_0Reference(byte* w, sbyte* q, float* d, int nb)
    {
        float sum = 0;
        for (int b = 0; b < nb; b++)
        {
            byte* blk = w + (long)b * 18;
            int dot = 0;
            for (int j = 0; j < 16; j++)
            {
                dot += ((blk[2 + j] & 0x0F) - 8) * q[b * 32 + j];
                dot += ((blk[2 + j] >> 4) - 8) * q[b * 32 + j + 16];
            }
            sum += dot * (Fp16.ToSingle(*(ushort*)blk) * d[b]);
        }
        return sum;
    }

    // ---- Q4_1 / Q5_0 / Q5_1: 32-value blocks with 4-bit nibbles, a fifth bit from a u32 (Q5), and either an offset
    // (Q5_0: q - 16) or a minimum m (Q4_1, Q5_1: q d + m, so sum = d sum q x + m sum x) ----

    public static float Small(GgmlType type, byte* w, Q8Activation x, int block0, int nb) =>
        Avx512Small ? SmallAvx512(type, w, x, block0, nb)
        : AvxVnni.IsSupported ? Small<VnniU8S8>(type, w, x, block0, nb)
        : Vectorized ? Small<Avx2U8S8>(type, w, x, block0, nb)
        : Neon ? SmallNeon(type, w, x, block0, nb)
        : SmallReference(type, w, x, block0, nb);

    /// <summary>Block geometry of Q4_1 / Q5_0 / Q5_1: bytes, offset of qh (-1: none), offset of qs, has a minimum.</summary>
    private static (int Bytes, int Qh, int Qs, bool HasMin) Layout(GgmlType type) => type switch
    {
        GgmlType.Q4_1 => (20, -1, 4, true),
        GgmlType.Q5_0 => (22, 2, 6, false),
        GgmlType.Q5_1 => (24, 4, 8, true),
        _ => throw new ArgumentException($"{type} is not Q4_1, Q5_0 or Q5_1.", nameof(type)),
    };

    public static float Small<T>(GgmlType type, byte* w, Q8Activation x, int block0, int nb) where T : struct, IU8S8 =>
        SmallPinned<T>(type, w, x, block0, nb, wide: false);

    /// <summary>Pins x's block arrays and the f16 table and runs SmallKernel&lt;T&gt;, or SmallKernel512 when wide.</summary>
    private static float SmallPinned<T>(GgmlType type, byte* w, Q8Activation x, int block0, int nb, bool wide) where T : struct, IU8S8
    {
        var (bytes, qhAt, qsAt, hasMin) = Layout(type);
        fixed (sbyte* xq0 = x.Q32)
        fixed (float* xs0 = x.Scale32)
        fixed (int* xsum0 = x.Sum32)
        fixed (float* xoff0 = x.Offset32)
        fixed (float* table = HalfTable)
        {
            sbyte* xq = xq0 + (long)block0 * 32;
            float* xoff = hasMin ? xoff0 + block0 : null;
            return wide
                ? SmallKernel512(w, bytes, qhAt, qsAt, hasMin, xq, xs0 + block0, xsum0 + block0, xoff, nb, table)
                : SmallKernel<T>(w, bytes, qhAt, qsAt, hasMin, xq, xs0 + block0, xsum0 + block0, xoff, nb, table);
        }
    }

    /// <summary>True where the Q4_1 / Q5_0 / Q5_1 decode dots take two blocks per step in AVX-512 BW (SmallKernel512).</summary>
    public static bool Avx512Small => Avx512BW.IsSupported && Vector512.IsHardwareAccelerated;

    /// <summary>Small through SmallKernel512 (AVX-512 BW CPUs): the same floats as Small&lt;T&gt;, bit for bit.</summary>
    public static float SmallAvx512(GgmlType type, byte* w, Q8Activation x, int block0, int nb) =>
        SmallPinned<Avx2U8S8>(type, w, x, block0, nb, wide: true);

    // SmallKernel with the integer work of two blocks in one 512-bit step: both blocks' nibbles (and fifth bits) in one
    // vector, laid out as the 64 activation bytes of the two blocks, one pmaddubsw + pmaddwd and one conversion; then
    // each block's float steps exactly as SmallBlock does them, block after block into the one accumulator, so the
    // result equals SmallKernel's bit for bit (the integer sums are exact either way). Measured on one thread from
    // memory (stories110M Q4_1): see docs/BENCHMARKS.md.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float SmallKernel512(byte* w, int bytes, int qhAt, int qsAt, bool hasMin, sbyte* xq, float* xs, int* xsum, float* xoff, int nb, float* table)
    {
        var acc = Vector256<float>.Zero;
        float offset = 0;
        var mask = Vector256.Create((byte)0x0F);
        var ones = Vector512.Create((short)1);
        // [lo0 | lo1 | hi0 | hi1] (128-bit lanes: low nibbles of block 0, of block 1, high nibbles...) -> [lo0 | hi0 | lo1 | hi1]
        var lanes = Vector512.Create(0L, 1, 4, 5, 2, 3, 6, 7);
        var pick = Vector512.Create((byte)0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3,
            0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
        var bit = Vector512.Create((byte)1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128,
            1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
        int b = 0;
        for (; b + 2 <= nb; b += 2)
        {
            byte* b0 = w + (long)b * bytes, b1 = b0 + bytes;
            var v = Vector256.Create(Vector128.Load(b0 + qsAt), Vector128.Load(b1 + qsAt));
            var lo = v & mask;
            var hi = Avx2.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & mask;
            var q = Avx512F.PermuteVar8x64(Vector512.Create(lo, hi).AsInt64(), lanes).AsByte();
            if (qhAt >= 0)
            {
                // as SmallBlock, each 256-bit half for its block
                var h = Avx512BW.Shuffle(Vector512.Create(Vector256.Create(*(uint*)(b0 + qhAt)), Vector256.Create(*(uint*)(b1 + qhAt))).AsByte(), pick);
                q |= Vector512.Equals(h & bit, bit) & Vector512.Create((byte)0x10);
            }
            var dot = Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q, Vector512.Load(xq + (long)b * 32)), ones));
            float d = table[*(ushort*)b0] * xs[b];
            offset += hasMin ? table[*(ushort*)(b0 + 2)] * xoff[b] : -16 * d * xsum[b];
            acc = Fma.MultiplyAdd(dot.GetLower(), Vector256.Create(d), acc);
            d = table[*(ushort*)b1] * xs[b + 1];
            offset += hasMin ? table[*(ushort*)(b1 + 2)] * xoff[b + 1] : -16 * d * xsum[b + 1];
            acc = Fma.MultiplyAdd(dot.GetUpper(), Vector256.Create(d), acc);
        }
        if (b < nb)
            acc = SmallBlock<Avx2U8S8>(w + (long)b * bytes, qhAt, qsAt, hasMin, xq + (long)b * 32, xs[b], xsum[b], hasMin ? xoff[b] : 0, table, ref offset, acc);
        return Vector256.Sum(acc) + offset;
    }

    // Q4_1 / Q5_0 / Q5_1 rows against Q8_1 / Q8_0 blocks, the f16 scales from the table argument (see Q8_0Kernel for
    // why the table is an argument and the kernel is never inlined). One accumulator and one offset sum in block
    // order: the roundings of the kernel before this one, so decoded logits did not move (a second accumulator was
    // within the noise of the
    // idle-host decode rounds and moved near-tied logits of ExportTests' random llama).
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float SmallKernel<T>(byte* w, int bytes, int qhAt, int qsAt, bool hasMin, sbyte* xq, float* xs, int* xsum, float* xoff, int nb, float* table)
        where T : struct, IU8S8
    {
        var acc = Vector256<float>.Zero;
        float offset = 0;
        for (int b = 0; b < nb; b++)
            acc = SmallBlock<T>(w + (long)b * bytes, qhAt, qsAt, hasMin, xq + (long)b * 32, xs[b], xsum[b], hasMin ? xoff[b] : 0, table, ref offset, acc);
        return Vector256.Sum(acc) + offset;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> SmallBlock<T>(byte* blk, int qhAt, int qsAt, bool hasMin, sbyte* xq, float dx, int xsum, float xoff, float* table,
        ref float offset, Vector256<float> acc) where T : struct, IU8S8
    {
        var mask = Vector128.Create((byte)0x0F);
        var v = Vector128.Load(blk + qsAt);
        var q = Vector256.Create(v & mask, Vector128.ShiftRightLogical(v, 4) & mask);
        if (qhAt >= 0)
        {
            // byte j of the expanded fifth bits takes bit j % 8 of qh byte j / 8
            var pick = Vector256.Create((byte)0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
            var bit = Vector256.Create((byte)1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
            var h = Avx2.Shuffle(Vector256.Create(*(uint*)(blk + qhAt)).AsByte(), pick);
            q |= Vector256.Equals(h & bit, bit) & Vector256.Create((byte)0x10);
        }
        float d = table[*(ushort*)blk] * dx;
        // Q4_1 / Q5_1: + m s (Q8_1's s = f16(dx sum q), as ggml); Q5_0: - 16 d sum q
        offset += hasMin ? table[*(ushort*)(blk + 2)] * xoff : -16 * d * xsum;
        return Fma.MultiplyAdd(Avx.ConvertToVector256Single(T.Dot(q, Avx.LoadVector256(xq))), Vector256.Create(d), acc);
    }

    public static float SmallReference(GgmlType type, byte* w, Q8Activation x, int block0, int nb)
    {
        var (bytes, qhAt, qsAt, hasMin) = Layout(type);
        float sum = 0;
        for (int b = 0; b < nb; b++)
        {
            byte* blk = w + (long)b * bytes;
            int xb = block0 + b;
            uint qh = qhAt >= 0 ? *(uint*)(blk + qhAt) : 0;
            int dot = 0, xsum = 0;
            for (int j = 0; j < 32; j++)
            {
                int nib = j < 16 ? blk[qsAt + j] & 0x0F : blk[qsAt + j - 16] >> 4;
                int q = nib | (int)(((qh >> j) & 1) << 4);
                int xv = x.Q32[xb * 32 + j];
                dot += q * xv;
                xsum += xv;
            }
            float d = Fp16.ToSingle(*(ushort*)blk) * x.Scale32[xb];
            sum += d * dot + (hasMin ? Fp16.ToSingle(*(ushort*)(blk + 2)) * x.Offset32[xb] : -16 * d * xsum);
        }
        return sum;
    }

}

/// <summary>Sum of four adjacent u8 x s8 products into each int32 lane: one instruction set per implementation.</summary>
internal interface IU8S8
{
    static abstract Vector256<int> Dot(Vector256<byte> u, Vector256<sbyte> s);

    /// <summary>acc + Dot(u, s).</summary>
    static abstract Vector256<int> DotAdd(Vector256<int> acc, Vector256<byte> u, Vector256<sbyte> s);

    /// <summary>
    /// Sum of four adjacent u8 x s8 products times scale, the 16-bit scale of each pair of products (equal within an
    /// int32 lane): pmaddubsw to int16 pairs, then pmaddwd by the scales, on both paths (vpdpbusd has no step to scale
    /// in; the pair is as short as vpdpbusd + vpmulld). |u s + u s| &lt;= 32512 as for <see cref="Avx2U8S8"/>.
    /// </summary>
    static abstract Vector256<int> DotScaled(Vector256<byte> u, Vector256<sbyte> s, Vector256<short> scale);

    /// <summary>Dot(u0, s0) + Dot(u1, s1) for u of at most 15 (nibbles): AVX2 adds the two pmaddubsw results in int16.</summary>
    static abstract Vector256<int> DotNibbles2(Vector256<byte> u0, Vector256<sbyte> s0, Vector256<byte> u1, Vector256<sbyte> s1);
}

/// <summary>AVX-VNNI vpdpbusd.</summary>
internal readonly struct VnniU8S8 : IU8S8
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Dot(Vector256<byte> u, Vector256<sbyte> s) => AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, u, s);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> DotAdd(Vector256<int> acc, Vector256<byte> u, Vector256<sbyte> s) => AvxVnni.MultiplyWideningAndAdd(acc, u, s);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> DotScaled(Vector256<byte> u, Vector256<sbyte> s, Vector256<short> scale) => Avx2U8S8.DotScaled(u, s, scale);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> DotNibbles2(Vector256<byte> u0, Vector256<sbyte> s0, Vector256<byte> u1, Vector256<sbyte> s1) =>
        AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, u0, s0), u1, s1);
}

/// <summary>AVX2 pmaddubsw + pmaddwd; each pair sum fits int16 for the operand ranges used (|u| &lt;= 128, |s| &lt;= 127, |u s + u s| &lt;= 32512).</summary>
internal readonly struct Avx2U8S8 : IU8S8
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Dot(Vector256<byte> u, Vector256<sbyte> s) =>
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, s), Vector256.Create((short)1));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> DotAdd(Vector256<int> acc, Vector256<byte> u, Vector256<sbyte> s) => acc + Dot(u, s);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> DotScaled(Vector256<byte> u, Vector256<sbyte> s, Vector256<short> scale) =>
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, s), scale);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> DotNibbles2(Vector256<byte> u0, Vector256<sbyte> s0, Vector256<byte> u1, Vector256<sbyte> s1) =>
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u0, s0) + Avx2.MultiplyAddAdjacent(u1, s1), Vector256.Create((short)1));
}
