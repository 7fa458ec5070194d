// QuantGemm's weight side: Unpack turns one row of any block format into the one shape every kernel reads (values
// as bytes in natural order, a float scale per 16- or 32-value part, a float offset per block), as QuantGemm.cs's
// header describes.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Quill.Kernels;

namespace Quill.Quantization;

internal static unsafe partial class QuantGemm
{
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
}
