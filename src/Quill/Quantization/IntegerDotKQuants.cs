// The K-quant decode dots (x86 and the scalar twins): one weight row in Q4_K, Q5_K or Q6_K (256-value super-blocks
// of 16- or 32-value sub-blocks, each with its own 6- or 8-bit scale) against an activation quantized to Q8_K
// (Q8Activation's 256-value groups and their sums of 16 values). Per super-block the packed sub-block scales are
// unpacked once into one vector and applied inside the pmaddwd that sums each sub-block's products (DotScaled); the
// minimums (Q4_K, Q5_K) and Q6_K's -32 offset meet the activation's 16-value sums in one pmaddwd each. The 32-value
// block formats, the dispatch, the f16 table and the u8 x s8 instruction sets are in IntegerDot.cs; ARM64 in
// IntegerDotNeon.cs.
// Does not handle: row parallelism (QuantDot), rows that are not whole super-blocks (the quantizers fall back).
// Glossary: nb = super-blocks in the row; xb = the activation's super-block; d, dmin = weight scales; dx = activation
// scale; bs = the activation's sums of 16 values (Q8_K's bsums); sc, m = sub-block scales and minimums.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Quill.Kernels;

namespace Quill.Quantization;

internal static unsafe partial class IntegerDot
{
    // ---- Q4_K: 144-byte super-blocks; sub-block j value = d sc_j q - dmin m_j ----

    public static float Q4_K(byte* w, Q8Activation x, int block0, int nb) =>
        AvxVnni.IsSupported ? Q4_K<VnniU8S8>(w, x, block0, nb)
        : Vectorized ? Q4_K<Avx2U8S8>(w, x, block0, nb)
        : Neon ? Q4_KNeon(w, x, block0, nb)
        : Q4_KReference(w, x, block0, nb);

    public static float Q4_K<T>(byte* w, Q8Activation x, int block0, int nb) where T : struct, IU8S8 => OnQ8K(&Q4_KRow<T>, w, x, block0, nb);

    // A K-quant row kernel on x's Q8_K values, sums of 16 and scales from super-block block0 on, and the f16 table.
    private static float OnQ8K(delegate*<byte*, sbyte*, short*, float*, int, float*, float> row, byte* w, Q8Activation x, int block0, int nb)
    {
        fixed (sbyte* xq = x.Q256)
        fixed (short* bs = x.Sum16)
        fixed (float* xd = x.Scale256)
        fixed (float* table = HalfTable)
            return row(w, xq + (long)block0 * 256, bs + (long)block0 * 16, xd + block0, nb, table);
    }

    /// <summary>
    /// One Q4_K row against Q8_K values xq [nb * 256], sums of 16 bs [nb * 16], scales xd [nb]. Per super-block the 12
    /// packed bytes become the 8 scales and 8 minimums in one vector with 32-bit integer operations (no per-sub-block
    /// unpacking); each sub-block's 32 products are summed to int16 pairs and multiplied by its scale in the same
    /// pmaddwd (the scale broadcast by one byte shuffle); the minimums meet the activation's sums in one pmaddwd,
    /// accumulated in a second float vector.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal static float Q4_KRow<T>(byte* w, sbyte* xq, short* bs, float* xd, int nb, float* table) where T : struct, IU8S8 =>
        Q45KRow<T, Q4KLayout>(w, xq, bs, xd, nb, table);

    /// <summary>One Q5_K row: Q4_KRow's kernel with the fifth bit of each value from the 32 qh bytes (bit j for sub-block j).</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal static float Q5_KRow<T>(byte* w, sbyte* xq, short* bs, float* xd, int nb, float* table) where T : struct, IU8S8 =>
        Q45KRow<T, Q5KLayout>(w, xq, bs, xd, nb, table);

    /// <summary>Where Q4_K and Q5_K super-blocks differ: their size, where the packed nibbles start, and Q5_K's 32 qh bytes.</summary>
    private interface IK45Layout
    {
        static abstract int Bytes { get; }
        static abstract int Nibbles { get; }
        static abstract bool FifthBit { get; }
    }

    private readonly struct Q4KLayout : IK45Layout
    {
        public static int Bytes => 144;
        public static int Nibbles => 16;
        public static bool FifthBit => false;
    }

    private readonly struct Q5KLayout : IK45Layout
    {
        public static int Bytes => 176;
        public static int Nibbles => 48;
        public static bool FifthBit => true;
    }

    // The kernel of Q4_KRow and Q5_KRow, inlined into each (the layout's constants fold away).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Q45KRow<T, L>(byte* w, sbyte* xq, short* bs, float* xd, int nb, float* table) where T : struct, IU8S8 where L : struct, IK45Layout
    {
        var m4 = Vector256.Create((byte)0x0F);
        var acc = Vector256<float>.Zero;
        var accMin = Vector256<float>.Zero;
        // minimum j as the 16-bit pair (m_j, m_j), to meet the two 16-value sums of sub-block j
        var pairMins = Vector128.Create((byte)8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
        {
            for (int b = 0; b < nb; b++, w += L.Bytes, xq += 256, bs += 16)
            {
                PrefetchLines3(w);
                var packed = Q4_KScales(w + 4);
                var sc = Sse41.ConvertToVector128Int16(packed);
                var scales = Vector256.Create(sc, sc).AsByte();
                var qh = L.FifthBit ? Avx.LoadVector256(w + 16) : default;
                byte* qs = w + L.Nibbles;
                // the four sub-block pairs unrolled, so that the shuffle controls and qh shifts are constants
                var isum = K45Pair<T, L>(qs, xq, scales, Vector256.Create((ushort)0x0100).AsByte(), Vector256.Create((ushort)0x0302).AsByte(), m4, qh, 0);
                isum += K45Pair<T, L>(qs + 32, xq + 64, scales, Vector256.Create((ushort)0x0504).AsByte(), Vector256.Create((ushort)0x0706).AsByte(), m4, qh, 2);
                isum += K45Pair<T, L>(qs + 64, xq + 128, scales, Vector256.Create((ushort)0x0908).AsByte(), Vector256.Create((ushort)0x0B0A).AsByte(), m4, qh, 4);
                isum += K45Pair<T, L>(qs + 96, xq + 192, scales, Vector256.Create((ushort)0x0D0C).AsByte(), Vector256.Create((ushort)0x0F0E).AsByte(), m4, qh, 6);
                var mins = Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(Ssse3.Shuffle(packed, pairMins)), Avx.LoadVector256(bs));
                float dx = xd[b];
                acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(isum), Vector256.Create(table[*(ushort*)w] * dx), acc);
                accMin = Fma.MultiplyAdd(Avx.ConvertToVector256Single(mins), Vector256.Create(table[*(ushort*)(w + 2)] * dx), accMin);
            }
        }
        return Vector256.Sum(acc - accMin);
    }

    /// <summary>
    /// The 12 packed scale bytes of a Q4_K / Q5_K super-block as 16 bytes: scales 0-7, then minimums 0-7 (6 bits each;
    /// as Q4_K.ScaleMin: j &lt; 4 the low 6 bits of bytes j and j + 4; j &gt;= 4 a nibble of byte j + 4 and the top 2
    /// bits of bytes j - 4 and j), four values per 32-bit word.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> Q4_KScales(byte* q)
    {
        uint w0 = *(uint*)q, w1 = *(uint*)(q + 4), w2 = *(uint*)(q + 8);
        return Vector128.Create(
            w0 & 0x3F3F3F3F,
            (w2 & 0x0F0F0F0F) | ((w0 >> 2) & 0x30303030),
            w1 & 0x3F3F3F3F,
            ((w2 >> 4) & 0x0F0F0F0F) | ((w1 >> 2) & 0x30303030)).AsByte();
    }

    /// <summary>
    /// One sub-block pair j, j + 1 (j even) of a Q4_K / Q5_K super-block: 32 packed bytes at qs (low nibbles sub-block j,
    /// high sub-block j + 1) against 64 activation values, each sub-block scaled by the 16-bit scale the control
    /// broadcasts (scale bytes 2j, 2j + 1). Q5_K ors in bit j (and j + 1) of each qh byte at bit 4: values up to 31, so
    /// the pmaddubsw pair sums stay within int16 (2 * 31 * 127).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> K45Pair<T, L>(byte* qs, sbyte* xq, Vector256<byte> scales, Vector256<byte> first, Vector256<byte> second, Vector256<byte> m4,
        Vector256<byte> qh, int j) where T : struct, IU8S8 where L : struct, IK45Layout
    {
        var v = Avx.LoadVector256(qs);
        var lo = v & m4;
        var hi = Avx2.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & m4;
        if (L.FifthBit)
        {
            lo |= BitTo4(qh, j);
            hi |= BitTo4(qh, j + 1);
        }
        return T.DotScaled(lo, Avx.LoadVector256(xq), Avx2.Shuffle(scales, first).AsInt16())
            + T.DotScaled(hi, Avx.LoadVector256(xq + 32), Avx2.Shuffle(scales, second).AsInt16());
    }

    // Bit j of each byte, moved to bit 4 (j a constant after inlining; 16-bit shifts, masked per byte).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> BitTo4(Vector256<byte> qh, int j)
    {
        var moved = j <= 4 ? qh.AsUInt16() << (4 - j) : qh.AsUInt16() >>> (j - 4);
        return moved.AsByte() & Vector256.Create((byte)0x10);
    }

    public static float Q4_KReference(byte* w, Q8Activation x, int block0, int nb) => Q45KReference<Q4KLayout>(w, x, block0, nb);

    // The scalar twin of Q4_KRow and Q5_KRow: each sub-block's integer dot and sum, then d and dmin in float.
    private static float Q45KReference<L>(byte* w, Q8Activation x, int block0, int nb) where L : struct, IK45Layout
    {
        float sum = 0;
        for (int b = 0; b < nb; b++)
        {
            byte* blk = w + (long)b * L.Bytes;
            int xb = block0 + b;
            var scales = new ReadOnlySpan<byte>(blk + 4, 12);
            long scaled = 0, mins = 0;
            for (int j = 0; j < 8; j++)
            {
                var (sc, m) = global::Quill.Quantization.Q4_K.ScaleMin(j, scales);
                int dot = 0, xsum = 0;
                for (int l = 0; l < 32; l++)
                {
                    int value = j / 2 * 64 + (j % 2) * 32 + l;
                    byte packed = blk[L.Nibbles + j / 2 * 32 + l];
                    int q = j % 2 == 0 ? packed & 0x0F : packed >> 4;
                    if (L.FifthBit) q |= ((blk[16 + l] >> j) & 1) << 4;
                    int xv = x.Q256[xb * 256 + value];
                    dot += q * xv;
                    xsum += xv;
                }
                scaled += (long)sc * dot;
                mins += (long)m * xsum;
            }
            float dx = x.Scale256[xb];
            sum += Fp16.ToSingle(*(ushort*)blk) * dx * scaled - Fp16.ToSingle(*(ushort*)(blk + 2)) * dx * mins;
        }
        return sum;
    }

    // ---- Q5_K: 176-byte super-blocks; as Q4_K with a fifth bit per value from qh ----

    public static float Q5_K(byte* w, Q8Activation x, int block0, int nb) =>
        AvxVnni.IsSupported ? Q5_K<VnniU8S8>(w, x, block0, nb)
        : Vectorized ? Q5_K<Avx2U8S8>(w, x, block0, nb)
        : Neon ? Q5_KNeon(w, x, block0, nb)
        : Q5_KReference(w, x, block0, nb);

    public static float Q5_K<T>(byte* w, Q8Activation x, int block0, int nb) where T : struct, IU8S8 => OnQ8K(&Q5_KRow<T>, w, x, block0, nb);

    public static float Q5_KReference(byte* w, Q8Activation x, int block0, int nb) => Q45KReference<Q5KLayout>(w, x, block0, nb);

    // ---- Q6_K: 210-byte super-blocks; sub-block k value = d sc_k (q - 32); sum (q - 32) x = sum q x - 32 sum x ----

    public static float Q6_K(byte* w, Q8Activation x, int block0, int nb) =>
        AvxVnni.IsSupported ? Q6_K<VnniU8S8>(w, x, block0, nb)
        : Vectorized ? Q6_K<Avx2U8S8>(w, x, block0, nb)
        : Neon ? Q6_KNeon(w, x, block0, nb)
        : Q6_KReference(w, x, block0, nb);

    public static float Q6_K<T>(byte* w, Q8Activation x, int block0, int nb) where T : struct, IU8S8 => OnQ8K(&Q6_KRow<T>, w, x, block0, nb);

    /// <summary>
    /// One Q6_K row against Q8_K values xq [nb * 256], sums of 16 bs [nb * 16], scales xd [nb]. The 16 int8 scales are
    /// widened to int16 once per super-block; each 32-byte product (two 16-value sub-blocks, one per 128-bit lane) is
    /// multiplied by its two scales in the pmaddwd that sums it; the -32 offset is -32 sum_k sc_k bs_k, one pmaddwd.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal static float Q6_KRow<T>(byte* w, sbyte* xq, short* bs, float* xd, int nb, float* table) where T : struct, IU8S8
    {
        var acc = Vector256<float>.Zero;
        {
            for (int b = 0; b < nb; b++, w += 210, xq += 256, bs += 16)
            {
                PrefetchLines4(w);
                var sc = Avx2.ConvertToVector256Int16(Sse2.LoadVector128((sbyte*)(w + 192)));
                // start at the offset, -32 sum_k sc_k bs_k, spread over the lanes
                var isum = Vector256<int>.Zero - Avx2.ShiftLeftLogical(Avx2.MultiplyAddAdjacent(sc, Avx.LoadVector256(bs)), 5);
                // scales 0-7 in both lanes for the first 128 values, 8-15 for the second
                isum = Q6Half<T>(w, w + 128, xq, Avx2.Permute2x128(sc, sc, 0x00).AsByte(), isum);
                isum = Q6Half<T>(w + 64, w + 160, xq + 128, Avx2.Permute2x128(sc, sc, 0x11).AsByte(), isum);
                acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(isum), Vector256.Create(table[*(ushort*)(w + 208)] * xd[b]), acc);
            }
        }
        return Vector256.Sum(acc);
    }

    /// <summary>
    /// 128 values of a Q6_K super-block (low bits ql [64], high bits qh [32]) against xh [128], scales of its 8
    /// sub-blocks as int16 in both 128-bit lanes of half; added to isum.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Q6Half<T>(byte* ql, byte* qhp, sbyte* xh, Vector256<byte> half, Vector256<int> isum) where T : struct, IU8S8
    {
        var m4 = Vector256.Create((byte)0x0F);
        var m30 = Vector256.Create((byte)0x30);
        var ql0 = Avx.LoadVector256(ql);
        var ql1 = Avx.LoadVector256(ql + 32);
        var qh = Avx.LoadVector256(qhp).AsUInt16();
        // value bits 4-5 from qh bits 0-1, 2-3, 4-5, 6-7 (16-bit shifts; the mask keeps each byte's own bits)
        var qa = (ql0 & m4) | (Avx2.ShiftLeftLogical(qh, 4).AsByte() & m30);
        var qb = (ql1 & m4) | (Avx2.ShiftLeftLogical(qh, 2).AsByte() & m30);
        var qc = (Avx2.ShiftRightLogical(ql0.AsUInt16(), 4).AsByte() & m4) | (qh.AsByte() & m30);
        var qd = (Avx2.ShiftRightLogical(ql1.AsUInt16(), 4).AsByte() & m4) | (Avx2.ShiftRightLogical(qh, 2).AsByte() & m30);
        // product g (32 values, two 16-value sub-blocks) takes scale 2g in the low lane, 2g + 1 in the high
        isum += T.DotScaled(qa, Avx.LoadVector256(xh), Avx2.Shuffle(half, PairScale(0)).AsInt16());
        isum += T.DotScaled(qb, Avx.LoadVector256(xh + 32), Avx2.Shuffle(half, PairScale(1)).AsInt16());
        isum += T.DotScaled(qc, Avx.LoadVector256(xh + 64), Avx2.Shuffle(half, PairScale(2)).AsInt16());
        return isum + T.DotScaled(qd, Avx.LoadVector256(xh + 96), Avx2.Shuffle(half, PairScale(3)).AsInt16());
    }

    /// <summary>Byte-shuffle control: 16-bit element 2g across the low 128-bit lane, 2g + 1 across the high lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> PairScale(int g) =>
        Vector256.Create(Vector128.Create((ushort)(4 * g | (4 * g + 1) << 8)), Vector128.Create((ushort)((4 * g + 2) | (4 * g + 3) << 8))).AsByte();

    public static float Q6_KReference(byte* w, Q8Activation x, int block0, int nb)
    {
        float sum = 0;
        for (int b = 0; b < nb; b++)
        {
            byte* blk = w + (long)b * 210;
            int xb = block0 + b;
            long total = 0;
            for (int h = 0; h < 2; h++)
            {
                byte* ql = blk + 64 * h, qh = blk + 128 + 32 * h;
                sbyte* sc = (sbyte*)(blk + 192 + 8 * h);
                for (int l = 0; l < 32; l++)
                {
                    int k = l / 16;
                    int q1 = ((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) - 32;
                    int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    int xi = xb * 256 + 128 * h + l;
                    total += sc[k] * q1 * x.Q256[xi] + sc[k + 2] * q2 * x.Q256[xi + 32]
                           + sc[k + 4] * q3 * x.Q256[xi + 64] + sc[k + 6] * q4 * x.Q256[xi + 96];
                }
            }
            sum += Fp16.ToSingle(*(ushort*)(blk + 208)) * x.Scale256[xb] * total;
        }
        return sum;
    }
}
