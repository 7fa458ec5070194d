// The ARM64 (NEON) decode dots of the block formats besides Q8_0 and Q4_0 (those two live beside their x86 kernels in
// IntegerDot.cs): Q4_1, Q5_0, Q5_1 (32-value blocks) and the K-quants Q4_K, Q5_K, Q6_K (256-value super-blocks), one
// weight row against an int8 activation (Q8Activation). The weights are unpacked to small non-negative int8 values (4,
// 5 or 6 bits: the nibble; Q5_0 / Q5_1's fifth bit spread from its 32-bit word by table lookup and bit test, Q5_K's
// fifth bit and Q6_K's two high bits put in by shift-and-insert), multiplied with the activation by `sdot` where the
// core has the dot-product extension (Dp), else by widening multiplies and pairwise adds (ARMv8.0: Cortex-A53/A57/A72,
// older servers); the offsets and minimums are folded in through the activation's block sums, as on x86.
// K-quants: one row loop (KRow) over a super-block kernel per type (ISuperBlock). Every product of a super-block is
// summed exactly in int32 lanes (sub-block dots, pairwise-reduced so that lane j holds sub-block j, times the sub-block
// scales), and the float arithmetic per super-block is the reference twin's own expression on the same integers, so
// these kernels equal Q4_KReference / Q5_KReference / Q6_KReference bit for bit (`quill version --check` holds them to
// that under qemu-aarch64). Q4_1 / Q5_0 / Q5_1 accumulate blocks in four float lanes, as the x86 kernel does, so they
// equal SmallReference up to float reassociation.
// Integer ranges: weights 0..63, |activation| <= 127, so a widening pair sum is at most 2 * 63 * 127 < 2^15 and a
// super-block's scaled sum at most 16 * 16 * 63 * 127 * 128 < 2^31.
// Does not handle: x86 (IntegerDot.cs), Q8_0 / Q4_0 (IntegerDot.cs), row parallelism (QuantDot).
// Glossary: nb = blocks in the row; xb = the activation's block; d, dmin = weight scales; dx = activation scale;
// bs = the activation's sums of 16 values (Q8_K's bsums); sc, m = sub-block scales and minimums.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;

namespace Quill.Quantization;

internal static unsafe partial class IntegerDot
{
    // ---- Q4_1 / Q5_0 / Q5_1 ----

    /// <summary>One Q4_1, Q5_0 or Q5_1 row on NEON; the twin is <see cref="SmallReference"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float SmallNeon(GgmlType type, byte* w, Q8Activation x, int block0, int nb)
    {
        var (bytes, qhAt, qsAt, hasMin) = Layout(type);
        var mask = Vector128.Create((byte)0x0F);
        var sixteen = Vector128.Create((byte)0x10);
        // the 32 fifth bits (a u32, bit j for value j) to bytes: byte j of the low half has bit j % 8 of qh byte j / 8
        var pickLo = Vector128.Create((byte)0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
        var pickHi = Vector128.Create((byte)2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
        var bit = Vector128.Create((byte)1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
        var acc = Vector128<float>.Zero;
        float offsetSum = 0;
        fixed (float* table = HalfTable)
        fixed (sbyte* xq0 = x.Q32)
        fixed (float* xs0 = x.Scale32)
        fixed (int* xsum0 = x.Sum32)
        fixed (float* xoff0 = x.Offset32)
        {
            for (int b = 0; b < nb; b++)
            {
                byte* blk = w + (long)b * bytes;
                int xb = block0 + b;
                sbyte* xq = xq0 + (long)xb * 32;
                var v = AdvSimd.LoadVector128(blk + qsAt);
                var lo = AdvSimd.And(v, mask);
                var hi = AdvSimd.ShiftRightLogical(v, 4);
                if (qhAt >= 0)
                {
                    var h = Vector128.Create(*(uint*)(blk + qhAt)).AsByte();
                    lo = AdvSimd.Or(lo, AdvSimd.And(AdvSimd.CompareTest(AdvSimd.Arm64.VectorTableLookup(h, pickLo), bit), sixteen));
                    hi = AdvSimd.Or(hi, AdvSimd.And(AdvSimd.CompareTest(AdvSimd.Arm64.VectorTableLookup(h, pickHi), bit), sixteen));
                }
                var p = NeonDot(lo.AsSByte(), AdvSimd.LoadVector128(xq), hi.AsSByte(), AdvSimd.LoadVector128(xq + 16));
                float d = table[*(ushort*)blk] * xs0[xb];
                acc = AdvSimd.FusedMultiplyAdd(acc, AdvSimd.ConvertToSingle(p), Vector128.Create(d));
                // Q4_1 / Q5_1: + m s (Q8_1's s); Q5_0: - 16 d sum q
                offsetSum += hasMin ? table[*(ushort*)(blk + 2)] * xoff0[xb] : -16 * d * xsum0[xb];
            }
        }
        return Vector128.Sum(acc) + offsetSum;
    }

    // ---- Q4_K / Q5_K: 8 sub-blocks of 32 values; 6-bit scales and minimums packed in 12 bytes ----

    /// <summary>
    /// The 12 packed scale bytes of a Q4_K / Q5_K super-block as eight int32 scales (lanes 0-3: sub-blocks 0-3, 4-7)
    /// and the integer sum over sub-blocks of minimum times the activation's sub-block sum. Sub-blocks 0-3 keep the
    /// low 6 bits of bytes 0-3 (scales) and 4-7 (minimums); sub-blocks 4-7 take the nibbles of bytes 8-11 (scale low,
    /// minimum high) with the top two bits of bytes 0-3 (scales) and 4-7 (minimums) as bits 4-5: four bytes at a time
    /// in 32-bit words, the same numbers as <see cref="global::Quill.Quantization.Q4_K.ScaleMin"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int KScales(byte* packed, short* bs, out Vector128<int> scLo, out Vector128<int> scHi)
    {
        uint a = *(uint*)packed, b = *(uint*)(packed + 4), c = *(uint*)(packed + 8);
        ulong scales = (a & 0x3F3F3F3F) | ((ulong)((c & 0x0F0F0F0F) | ((a >> 2) & 0x30303030)) << 32);
        ulong mins = (b & 0x3F3F3F3F) | ((ulong)(((c >> 4) & 0x0F0F0F0F) | ((b >> 2) & 0x30303030)) << 32);
        var sc16 = AdvSimd.ZeroExtendWideningLower(Vector64.Create(scales).AsByte());
        scLo = AdvSimd.ZeroExtendWideningLower(sc16.GetLower()).AsInt32();
        scHi = AdvSimd.ZeroExtendWideningUpper(sc16).AsInt32();
        // the activation's sums of 32 values (pairs of its 16-value sums: |sum| <= 32 * 127 fits int16) times the minimums
        var xs = AdvSimd.Arm64.AddPairwise(AdvSimd.LoadVector128(bs), AdvSimd.LoadVector128(bs + 8));
        var m16 = AdvSimd.ZeroExtendWideningLower(Vector64.Create(mins).AsByte()).AsInt16();
        var mv = AdvSimd.MultiplyWideningLower(m16.GetLower(), xs.GetLower());
        return Vector128.Sum(AdvSimd.MultiplyWideningUpperAndAdd(mv, m16, xs));
    }

    /// <summary>Lanes 0-3 times scales 0-3 plus lanes 4-7 times scales 4-7, summed: a super-block's scaled dot.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Scaled(Vector128<int> p0, Vector128<int> p1, Vector128<int> p2, Vector128<int> p3, Vector128<int> scLo, Vector128<int> scHi)
    {
        // each p holds two sub-blocks as [a, a, b, b] partial sums; pairwise adds give lane j = sub-block j
        var dots03 = AdvSimd.Arm64.AddPairwise(p0, p1);
        var dots47 = AdvSimd.Arm64.AddPairwise(p2, p3);
        return Vector128.Sum(AdvSimd.MultiplyAdd(AdvSimd.Multiply(dots03, scLo), dots47, scHi));
    }

    /// <summary>One Q4_K row on NEON, bit for bit <see cref="Q4_KReference"/>.</summary>
    public static float Q4_KNeon(byte* w, Q8Activation x, int block0, int nb) => KRow<Q4KBlock>(w, x, block0, nb);

    /// <summary>One Q5_K row on NEON, bit for bit <see cref="Q5_KReference"/>.</summary>
    public static float Q5_KNeon(byte* w, Q8Activation x, int block0, int nb) => KRow<Q5KBlock>(w, x, block0, nb);

    /// <summary>One Q6_K row on NEON, bit for bit <see cref="Q6_KReference"/>.</summary>
    public static float Q6_KNeon(byte* w, Q8Activation x, int block0, int nb) => KRow<Q6KBlock>(w, x, block0, nb);

    /// <summary>One K-quant super-block's share of the row, computed as the reference twin computes it.</summary>
    private interface ISuperBlock
    {
        /// <summary>Bytes of one super-block.</summary>
        static abstract int Bytes { get; }

        /// <summary>The block's term of the row sum. xq: its 256 activation values; bs: their 16 sums of 16; dx: their scale.</summary>
        static abstract float Term(byte* blk, sbyte* xq, short* bs, float dx, float* table);
    }

    /// <summary>A K-quant row: the super-blocks' terms added in order, as the reference twins add them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float KRow<T>(byte* w, Q8Activation x, int block0, int nb) where T : struct, ISuperBlock
    {
        float sum = 0;
        fixed (float* table = HalfTable)
        fixed (sbyte* xq0 = x.Q256)
        fixed (short* bs0 = x.Sum16)
        fixed (float* xs0 = x.Scale256)
        {
            for (int b = 0; b < nb; b++)
            {
                int xb = block0 + b;
                sum += T.Term(w + (long)b * T.Bytes, xq0 + (long)xb * 256, bs0 + (long)xb * 16, xs0[xb], table);
            }
        }
        return sum;
    }

    private readonly struct Q4KBlock : ISuperBlock
    {
        public static int Bytes => 144;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Term(byte* blk, sbyte* xq, short* bs, float dx, float* table)
        {
            var mask = Vector128.Create((byte)0x0F);
            int mins = KScales(blk + 4, bs, out var scLo, out var scHi);
            byte* qs = blk + 16;
            int scaled = Scaled(Q4Pair(qs, xq, mask), Q4Pair(qs + 32, xq + 64, mask), Q4Pair(qs + 64, xq + 128, mask),
                Q4Pair(qs + 96, xq + 192, mask), scLo, scHi);
            // the reference's expression on the same integers
            return table[*(ushort*)blk] * dx * scaled - table[*(ushort*)(blk + 2)] * dx * mins;
        }
    }

    /// <summary>32 bytes of nibbles against 64 activation values: sub-block 2p (low nibbles) and 2p + 1 (high) as [a, a, b, b].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> Q4Pair(byte* qs, sbyte* xq, Vector128<byte> mask)
    {
        var v0 = AdvSimd.LoadVector128(qs);
        var v1 = AdvSimd.LoadVector128(qs + 16);
        var lo = NeonDot(AdvSimd.And(v0, mask).AsSByte(), AdvSimd.LoadVector128(xq), AdvSimd.And(v1, mask).AsSByte(), AdvSimd.LoadVector128(xq + 16));
        var hi = NeonDot(AdvSimd.ShiftRightLogical(v0, 4).AsSByte(), AdvSimd.LoadVector128(xq + 32),
            AdvSimd.ShiftRightLogical(v1, 4).AsSByte(), AdvSimd.LoadVector128(xq + 48));
        return AdvSimd.Arm64.AddPairwise(lo, hi);
    }

    private readonly struct Q5KBlock : ISuperBlock
    {
        public static int Bytes => 176;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Term(byte* blk, sbyte* xq, short* bs, float dx, float* table)
        {
            int mins = KScales(blk + 4, bs, out var scLo, out var scHi);
            // value l of sub-block j takes bit j of qh[l]: shifted down two bits per pair of sub-blocks
            var h0 = AdvSimd.LoadVector128(blk + 16);
            var h1 = AdvSimd.LoadVector128(blk + 32);
            byte* qs = blk + 48;
            var p0 = Q5Pair(qs, xq, h0, h1);
            h0 = AdvSimd.ShiftRightLogical(h0, 2);
            h1 = AdvSimd.ShiftRightLogical(h1, 2);
            var p1 = Q5Pair(qs + 32, xq + 64, h0, h1);
            h0 = AdvSimd.ShiftRightLogical(h0, 2);
            h1 = AdvSimd.ShiftRightLogical(h1, 2);
            var p2 = Q5Pair(qs + 64, xq + 128, h0, h1);
            h0 = AdvSimd.ShiftRightLogical(h0, 2);
            h1 = AdvSimd.ShiftRightLogical(h1, 2);
            var p3 = Q5Pair(qs + 96, xq + 192, h0, h1);
            int scaled = Scaled(p0, p1, p2, p3, scLo, scHi);
            return table[*(ushort*)blk] * dx * scaled - table[*(ushort*)(blk + 2)] * dx * mins;
        }
    }

    /// <summary>As <see cref="Q4Pair"/> with the fifth bits: bit 0 of h for the low nibbles, bit 1 for the high.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> Q5Pair(byte* qs, sbyte* xq, Vector128<byte> h0, Vector128<byte> h1)
    {
        var one = Vector128.Create((byte)1);
        var sixteen = Vector128.Create((byte)0x10);
        var v0 = AdvSimd.LoadVector128(qs);
        var v1 = AdvSimd.LoadVector128(qs + 16);
        // low: insert (h & 1) above the low nibble (sli keeps bits 0-3 of v); high: h's bit 1 moved to bit 4 under v >> 4
        var lo0 = AdvSimd.ShiftLeftAndInsert(v0, AdvSimd.And(h0, one), 4);
        var lo1 = AdvSimd.ShiftLeftAndInsert(v1, AdvSimd.And(h1, one), 4);
        var hi0 = AdvSimd.ShiftRightAndInsert(AdvSimd.And(AdvSimd.ShiftLeftLogical(h0, 3), sixteen), v0, 4);
        var hi1 = AdvSimd.ShiftRightAndInsert(AdvSimd.And(AdvSimd.ShiftLeftLogical(h1, 3), sixteen), v1, 4);
        var lo = NeonDot(lo0.AsSByte(), AdvSimd.LoadVector128(xq), lo1.AsSByte(), AdvSimd.LoadVector128(xq + 16));
        var hi = NeonDot(hi0.AsSByte(), AdvSimd.LoadVector128(xq + 32), hi1.AsSByte(), AdvSimd.LoadVector128(xq + 48));
        return AdvSimd.Arm64.AddPairwise(lo, hi);
    }

    // ---- Q6_K: 16 sub-blocks of 16 values, int8 scales; value = d sc (q - 32), q = 4 low bits from ql, 2 from qh ----

    private readonly struct Q6KBlock : ISuperBlock
    {
        public static int Bytes => 210;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Term(byte* blk, sbyte* xq, short* bs, float dx, float* table)
        {
            var three = Vector128.Create((byte)0x03);
            var bits45 = Vector128.Create((byte)0x30);
            var sc = AdvSimd.LoadVector128((sbyte*)(blk + 192));
            var sc0 = AdvSimd.SignExtendWideningLower(sc.GetLower());
            var sc1 = AdvSimd.SignExtendWideningUpper(sc);
            // sum (q - 32) x = sum q x - 32 sum x: the scaled sums of the activation's 16-value sums
            var cv = AdvSimd.MultiplyWideningLower(sc0.GetLower(), AdvSimd.LoadVector64(bs));
            cv = AdvSimd.MultiplyWideningUpperAndAdd(cv, sc0, AdvSimd.LoadVector128(bs));
            cv = AdvSimd.MultiplyWideningLowerAndAdd(cv, sc1.GetLower(), AdvSimd.LoadVector64(bs + 8));
            cv = AdvSimd.MultiplyWideningUpperAndAdd(cv, sc1, AdvSimd.LoadVector128(bs + 8));
            var isum = Vector128<int>.Zero;
            for (int h = 0; h < 2; h++)
            {
                byte* ql = blk + 64 * h, qh = blk + 128 + 32 * h;
                sbyte* xh = xq + 128 * h;
                var l0 = AdvSimd.LoadVector128(ql);
                var l1 = AdvSimd.LoadVector128(ql + 16);
                var l2 = AdvSimd.LoadVector128(ql + 32);
                var l3 = AdvSimd.LoadVector128(ql + 48);
                var h0 = AdvSimd.LoadVector128(qh);
                var h1 = AdvSimd.LoadVector128(qh + 16);
                // values 0-31: low nibbles of ql[0..32) | qh bits 0-1; 32-63: of ql[32..64) | bits 2-3;
                // 64-95: high nibbles of ql[0..32) | bits 4-5; 96-127: of ql[32..64) | bits 6-7
                var a0 = AdvSimd.ShiftLeftAndInsert(l0, AdvSimd.And(h0, three), 4);
                var a1 = AdvSimd.ShiftLeftAndInsert(l1, AdvSimd.And(h1, three), 4);
                var b0 = AdvSimd.ShiftLeftAndInsert(l2, AdvSimd.And(AdvSimd.ShiftRightLogical(h0, 2), three), 4);
                var b1 = AdvSimd.ShiftLeftAndInsert(l3, AdvSimd.And(AdvSimd.ShiftRightLogical(h1, 2), three), 4);
                var c0 = AdvSimd.ShiftRightAndInsert(AdvSimd.And(h0, bits45), l0, 4);
                var c1 = AdvSimd.ShiftRightAndInsert(AdvSimd.And(h1, bits45), l1, 4);
                var d0 = AdvSimd.ShiftRightAndInsert(AdvSimd.ShiftRightLogical(h0, 2), l2, 4);
                var d1 = AdvSimd.ShiftRightAndInsert(AdvSimd.ShiftRightLogical(h1, 2), l3, 4);
                // sub-blocks 8h .. 8h + 7 in lanes: two pairwise adds per four 16-value dots
                var s03 = AdvSimd.Arm64.AddPairwise(
                    AdvSimd.Arm64.AddPairwise(Dot16(a0, xh), Dot16(a1, xh + 16)),
                    AdvSimd.Arm64.AddPairwise(Dot16(b0, xh + 32), Dot16(b1, xh + 48)));
                var s47 = AdvSimd.Arm64.AddPairwise(
                    AdvSimd.Arm64.AddPairwise(Dot16(c0, xh + 64), Dot16(c1, xh + 80)),
                    AdvSimd.Arm64.AddPairwise(Dot16(d0, xh + 96), Dot16(d1, xh + 112)));
                var scw = h == 0 ? sc0 : sc1;
                isum = AdvSimd.MultiplyAdd(isum, s03, AdvSimd.SignExtendWideningLower(scw.GetLower()));
                isum = AdvSimd.MultiplyAdd(isum, s47, AdvSimd.SignExtendWideningUpper(scw));
            }
            int total = Vector128.Sum(isum) - 32 * Vector128.Sum(cv);
            return table[*(ushort*)(blk + 208)] * dx * total;
        }
    }

    /// <summary>16 weights (0..63) . 16 activation values as four int32 partial sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> Dot16(Vector128<byte> q, sbyte* xq)
    {
        var xv = AdvSimd.LoadVector128(xq);
        if (Dp.IsSupported) return Dp.DotProduct(Vector128<int>.Zero, q.AsSByte(), xv);
        var s = AdvSimd.MultiplyWideningLower(q.AsSByte().GetLower(), xv.GetLower());
        return AdvSimd.AddPairwiseWidening(AdvSimd.MultiplyWideningUpperAndAdd(s, q.AsSByte(), xv));
    }
}
