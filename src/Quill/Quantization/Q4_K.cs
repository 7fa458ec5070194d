// ggml's Q4_K super-block format: 256 values per 144-byte block = f16 d, f16 dmin, 12 bytes packing eight 6-bit
// scales and eight 6-bit mins (one pair per sub-block of 32), then 128 bytes of nibbles. Sub-blocks come in pairs:
// qs[32p + l] holds value 64p + l in its low nibble and value 64p + 32 + l in its high nibble. Sub-block j's value
// is d * sc_j * q - dmin * m_j. The 12 scale bytes: for j < 4, byte j = sc_j (low 6 bits) and byte j + 4 = m_j;
// for j >= 4, byte j + 4 = (sc_j & 15) | (m_j & 15) << 4, and their top two bits sit in bits 6-7 of bytes j - 4
// (scale) and j (min).
// Quantize (Quill's own, not ggml's search): per sub-block min' = min(min, 0) and range; mins then scales are
// stored rounded up (6-bit codes and f16 super-scales), so nothing clips and each value is within step/2, where
// step = d * sc_j <= (range_j + dmin) / 15 + d.
using Quill.Kernels;

namespace Quill.Quantization;

/// <summary>Q4_K: 256-value super-blocks of eight 32-value sub-blocks, 4-bit values, 6-bit scales and mins.</summary>
public static class Q4_K
{
    public const int BlockSize = 256;
    public const int BlockBytes = 144;

    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst)
    {
        QuantMath.CheckSizes("Q4_K", BlockSize, BlockBytes, src.Length, dst.Length);
        Span<int> sc = stackalloc int[8];
        Span<int> mc = stackalloc int[8];
        for (int b = 0; b < src.Length / BlockSize; b++)
        {
            ReadOnlySpan<float> x = src.Slice(b * BlockSize, BlockSize);
            Span<byte> o = dst.Slice(b * BlockBytes, BlockBytes);
            var (d, dmin) = ChooseScales(x, 15, sc, mc, o);
            Span<byte> qs = o.Slice(16, 128);
            for (int p = 0; p < 4; p++)
            {
                int j0 = 2 * p, j1 = 2 * p + 1;
                float d0 = d * sc[j0], m0 = dmin * mc[j0], id0 = d0 > 0 ? 1f / d0 : 0;
                float d1 = d * sc[j1], m1 = dmin * mc[j1], id1 = d1 > 0 ? 1f / d1 : 0;
                for (int l = 0; l < 32; l++)
                {
                    int q0 = Math.Clamp(QuantMath.RoundToInt((x[64 * p + l] + m0) * id0), 0, 15);
                    int q1 = Math.Clamp(QuantMath.RoundToInt((x[64 * p + 32 + l] + m1) * id1), 0, 15);
                    qs[32 * p + l] = (byte)(q0 | (q1 << 4));
                }
            }
        }
    }

    /// <summary>
    /// Picks the 6-bit scale and min codes of the eight 32-value sub-blocks of one super-block for codes 0..levels,
    /// rounding every stored quantity up so that no value clips, and writes f16 d, f16 dmin and the 12 packed bytes
    /// to the first 16 bytes of <paramref name="block"/> (the header Q4_K and Q5_K share). x: [256]
    /// </summary>
    internal static (float D, float Dmin) ChooseScales(ReadOnlySpan<float> x, int levels, Span<int> sc, Span<int> mc, Span<byte> block)
    {
        Span<float> mins = stackalloc float[8];
        Span<float> scales = stackalloc float[8];
        float maxMin = 0;
        for (int j = 0; j < 8; j++)
        {
            float lo = 0, hi = float.NegativeInfinity;
            foreach (float v in x.Slice(32 * j, 32))
            {
                lo = MathF.Min(lo, v);
                hi = MathF.Max(hi, v);
            }
            mins[j] = -lo; // >= 0
            scales[j] = hi;
            maxMin = MathF.Max(maxMin, -lo);
        }
        ushort dminH = QuantMath.HalfAtLeast(maxMin / 63f);
        float dmin = Fp16.ToSingle(dminH);
        float maxScale = 0;
        for (int j = 0; j < 8; j++)
        {
            mc[j] = dmin > 0 ? Math.Min(63, (int)MathF.Ceiling(mins[j] / dmin)) : 0;
            scales[j] = MathF.Max(0, (scales[j] + dmin * mc[j]) / levels);
            maxScale = MathF.Max(maxScale, scales[j]);
        }
        ushort dH = QuantMath.HalfAtLeast(maxScale / 63f);
        float d = Fp16.ToSingle(dH);
        for (int j = 0; j < 8; j++) sc[j] = d > 0 ? Math.Min(63, (int)MathF.Ceiling(scales[j] / d)) : 0;
        QuantMath.WriteHalfBits(block, 0, dH);
        QuantMath.WriteHalfBits(block, 2, dminH);
        PackScales(sc, mc, block.Slice(4, 12));
        return (d, dmin);
    }

    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst)
    {
        QuantMath.CheckSizes("Q4_K", BlockSize, BlockBytes, dst.Length, src.Length);
        for (int b = 0; b < dst.Length / BlockSize; b++)
        {
            ReadOnlySpan<byte> blk = src.Slice(b * BlockBytes, BlockBytes);
            Span<float> y = dst.Slice(b * BlockSize, BlockSize);
            float d = QuantMath.ReadHalf(blk, 0), dmin = QuantMath.ReadHalf(blk, 2);
            ReadOnlySpan<byte> scales = blk.Slice(4, 12);
            ReadOnlySpan<byte> qs = blk.Slice(16, 128);
            for (int p = 0; p < 4; p++)
            {
                var (s0, m0) = ScaleMin(2 * p, scales);
                var (s1, m1) = ScaleMin(2 * p + 1, scales);
                float d0 = d * s0, n0 = dmin * m0, d1 = d * s1, n1 = dmin * m1;
                for (int l = 0; l < 32; l++)
                {
                    byte q = qs[32 * p + l];
                    y[64 * p + l] = d0 * (q & 0x0F) - n0;
                    y[64 * p + 32 + l] = d1 * (q >> 4) - n1;
                }
            }
        }
    }

    /// <summary>The 6-bit scale and min of sub-block j from the 12 packed bytes.</summary>
    internal static (int Scale, int Min) ScaleMin(int j, ReadOnlySpan<byte> q)
    {
        if (j < 4) return (q[j] & 63, q[j + 4] & 63);
        return ((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }

    internal static void PackScales(ReadOnlySpan<int> sc, ReadOnlySpan<int> mc, Span<byte> q)
    {
        q.Clear();
        for (int j = 0; j < 8; j++)
        {
            if (j < 4)
            {
                q[j] |= (byte)sc[j];
                q[j + 4] |= (byte)mc[j];
            }
            else
            {
                q[j + 4] = (byte)((sc[j] & 0x0F) | ((mc[j] & 0x0F) << 4));
                q[j - 4] |= (byte)((sc[j] >> 4) << 6);
                q[j] |= (byte)((mc[j] >> 4) << 6);
            }
        }
    }
}
