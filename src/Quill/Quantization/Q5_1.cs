// ggml's Q5_1 block format: 32 values per 24-byte block = f16 scale d, f16 minimum m, 4 bytes qh (fifth bit of
// value j at bit j), then 16 bytes of low nibbles (byte j: value j low, value j + 16 high); value = q * d + m.
// Quantize stores m rounded down and d rounded up to f16, so every value is within d/2 (d ~ (max - min) / 31).
using System.Buffers.Binary;

namespace Quill.Quantization;

/// <summary>Q5_1: blocks of 32 5-bit values with an f16 scale and an f16 minimum.</summary>
public static class Q5_1
{
    public const int BlockSize = 32;
    public const int BlockBytes = 24;

    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst)
    {
        QuantMath.CheckSizes("Q5_1", BlockSize, BlockBytes, src.Length, dst.Length);
        for (int b = 0; b < src.Length / BlockSize; b++)
        {
            ReadOnlySpan<float> x = src.Slice(b * BlockSize, BlockSize);
            Span<byte> o = dst.Slice(b * BlockBytes, BlockBytes);
            var (_, m, id) = AffineScale.Compute(x, 31, o);
            uint qh = 0;
            for (int j = 0; j < 16; j++)
            {
                int q0 = Math.Clamp(QuantMath.RoundToInt((x[j] - m) * id), 0, 31);
                int q1 = Math.Clamp(QuantMath.RoundToInt((x[j + 16] - m) * id), 0, 31);
                o[8 + j] = (byte)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
                qh |= (uint)(q0 >> 4) << j;
                qh |= (uint)(q1 >> 4) << (j + 16);
            }
            BinaryPrimitives.WriteUInt32LittleEndian(o[4..], qh);
        }
    }

    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst)
    {
        QuantMath.CheckSizes("Q5_1", BlockSize, BlockBytes, dst.Length, src.Length);
        for (int b = 0; b < dst.Length / BlockSize; b++)
        {
            ReadOnlySpan<byte> blk = src.Slice(b * BlockBytes, BlockBytes);
            Span<float> y = dst.Slice(b * BlockSize, BlockSize);
            float d = QuantMath.ReadHalf(blk, 0), m = QuantMath.ReadHalf(blk, 2);
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(blk[4..]);
            for (int j = 0; j < 16; j++)
            {
                int h0 = (int)((qh >> j) & 1) << 4;
                int h1 = (int)((qh >> (j + 16)) & 1) << 4;
                y[j] = ((blk[8 + j] & 0x0F) | h0) * d + m;
                y[j + 16] = ((blk[8 + j] >> 4) | h1) * d + m;
            }
        }
    }
}
