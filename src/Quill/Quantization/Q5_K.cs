// ggml's Q5_K super-block format: 256 values per 176-byte block = f16 d, f16 dmin, the same 12 bytes of 6-bit
// scales and mins as Q4_K, 32 bytes qh, then 128 bytes of low nibbles. Pair p of sub-blocks (values 64p..64p+63):
// qs[32p + l] holds the low 4 bits of value 64p + l (low nibble) and 64p + 32 + l (high nibble); bit 2p of qh[l]
// is the fifth bit of value 64p + l and bit 2p + 1 that of value 64p + 32 + l. Sub-block j's value is
// d * sc_j * q - dmin * m_j, q in 0..31. Quantize uses Q4_K's non-clipping scale choice with 31 levels, so each
// value is within step/2, step = d * sc_j <= (range_j + dmin) / 31 + d.
namespace Quill.Quantization;

/// <summary>Q5_K: 256-value super-blocks of eight 32-value sub-blocks, 5-bit values, 6-bit scales and mins.</summary>
public static class Q5_K
{
    public const int BlockSize = 256;
    public const int BlockBytes = 176;

    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst)
    {
        QuantMath.CheckSizes("Q5_K", BlockSize, BlockBytes, src.Length, dst.Length);
        Span<int> sc = stackalloc int[8];
        Span<int> mc = stackalloc int[8];
        for (int b = 0; b < src.Length / BlockSize; b++)
        {
            ReadOnlySpan<float> x = src.Slice(b * BlockSize, BlockSize);
            Span<byte> o = dst.Slice(b * BlockBytes, BlockBytes);
            var (d, dmin) = Q4_K.ChooseScales(x, 31, sc, mc, o);
            Span<byte> qh = o.Slice(16, 32);
            Span<byte> qs = o.Slice(48, 128);
            qh.Clear();
            for (int p = 0; p < 4; p++)
            {
                int j0 = 2 * p, j1 = 2 * p + 1;
                float d0 = d * sc[j0], m0 = dmin * mc[j0], id0 = d0 > 0 ? 1f / d0 : 0;
                float d1 = d * sc[j1], m1 = dmin * mc[j1], id1 = d1 > 0 ? 1f / d1 : 0;
                for (int l = 0; l < 32; l++)
                {
                    int q0 = Math.Clamp(QuantMath.RoundToInt((x[64 * p + l] + m0) * id0), 0, 31);
                    int q1 = Math.Clamp(QuantMath.RoundToInt((x[64 * p + 32 + l] + m1) * id1), 0, 31);
                    qs[32 * p + l] = (byte)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
                    qh[l] |= (byte)(((q0 >> 4) << (2 * p)) | ((q1 >> 4) << (2 * p + 1)));
                }
            }
        }
    }

    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst)
    {
        QuantMath.CheckSizes("Q5_K", BlockSize, BlockBytes, dst.Length, src.Length);
        for (int b = 0; b < dst.Length / BlockSize; b++)
        {
            ReadOnlySpan<byte> blk = src.Slice(b * BlockBytes, BlockBytes);
            Span<float> y = dst.Slice(b * BlockSize, BlockSize);
            float d = QuantMath.ReadHalf(blk, 0), dmin = QuantMath.ReadHalf(blk, 2);
            ReadOnlySpan<byte> scales = blk.Slice(4, 12);
            ReadOnlySpan<byte> qh = blk.Slice(16, 32);
            ReadOnlySpan<byte> qs = blk.Slice(48, 128);
            for (int p = 0; p < 4; p++)
            {
                var (s0, m0) = Q4_K.ScaleMin(2 * p, scales);
                var (s1, m1) = Q4_K.ScaleMin(2 * p + 1, scales);
                float d0 = d * s0, n0 = dmin * m0, d1 = d * s1, n1 = dmin * m1;
                for (int l = 0; l < 32; l++)
                {
                    byte q = qs[32 * p + l];
                    int h0 = ((qh[l] >> (2 * p)) & 1) << 4;
                    int h1 = ((qh[l] >> (2 * p + 1)) & 1) << 4;
                    y[64 * p + l] = d0 * ((q & 0x0F) | h0) - n0;
                    y[64 * p + 32 + l] = d1 * ((q >> 4) | h1) - n1;
                }
            }
        }
    }
}
