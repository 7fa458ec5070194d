// ggml's Q4_1 block format: 32 values per 20-byte block = f16 scale d, f16 minimum m, then 16 bytes of nibbles
// (byte j: value j low, value j + 16 high); value = nibble * d + m. Quantize stores m rounded down and d rounded
// up to f16, so no value clips and every value is within d/2 of its original (d ~ (max - min) / 15).
using Quill.Kernels;

namespace Quill.Quantization;

/// <summary>Q4_1: blocks of 32 4-bit values with an f16 scale and an f16 minimum.</summary>
public static class Q4_1
{
    public const int BlockSize = 32;
    public const int BlockBytes = 20;

    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst)
    {
        QuantMath.CheckSizes("Q4_1", BlockSize, BlockBytes, src.Length, dst.Length);
        for (int b = 0; b < src.Length / BlockSize; b++)
        {
            ReadOnlySpan<float> x = src.Slice(b * BlockSize, BlockSize);
            Span<byte> o = dst.Slice(b * BlockBytes, BlockBytes);
            var (_, m, id) = AffineScale.Compute(x, 15, o);
            for (int j = 0; j < 16; j++)
            {
                int q0 = Math.Clamp(QuantMath.RoundToInt((x[j] - m) * id), 0, 15);
                int q1 = Math.Clamp(QuantMath.RoundToInt((x[j + 16] - m) * id), 0, 15);
                o[4 + j] = (byte)(q0 | (q1 << 4));
            }
        }
    }

    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst)
    {
        QuantMath.CheckSizes("Q4_1", BlockSize, BlockBytes, dst.Length, src.Length);
        for (int b = 0; b < dst.Length / BlockSize; b++)
        {
            ReadOnlySpan<byte> blk = src.Slice(b * BlockBytes, BlockBytes);
            Span<float> y = dst.Slice(b * BlockSize, BlockSize);
            float d = QuantMath.ReadHalf(blk, 0), m = QuantMath.ReadHalf(blk, 2);
            for (int j = 0; j < 16; j++)
            {
                y[j] = (blk[4 + j] & 0x0F) * d + m;
                y[j + 16] = (blk[4 + j] >> 4) * d + m;
            }
        }
    }
}

/// <summary>The scale and minimum of the affine formats (Q4_1, Q5_1), stored in the first 4 bytes of a block.</summary>
internal static class AffineScale
{
    /// <summary>Writes f16 d and m (m rounded down, d rounded up so levels cover [min, max]); returns d, m and 1/d.</summary>
    public static (float D, float M, float InvD) Compute(ReadOnlySpan<float> x, int levels, Span<byte> block)
    {
        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        foreach (float v in x)
        {
            min = MathF.Min(min, v);
            max = MathF.Max(max, v);
        }
        ushort mh = QuantMath.HalfAtMost(min);
        float m = Fp16.ToSingle(mh);
        ushort dh = QuantMath.HalfAtLeast((max - m) / levels);
        float d = Fp16.ToSingle(dh);
        QuantMath.WriteHalfBits(block, 0, dh);
        QuantMath.WriteHalfBits(block, 2, mh);
        return (d, m, d > 0 ? 1f / d : 0f);
    }
}
