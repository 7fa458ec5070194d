// ggml's Q5_0 block format: 32 values per 22-byte block = f16 scale d, 4 bytes qh holding the fifth bit of each
// value (bit j for value j), then 16 bytes of low nibbles (byte j: value j low, value j + 16 high);
// value = (q - 16) * d. Quantize follows ggml: the value of largest magnitude m maps to q = 0 (d = m / -16);
// values are within max(|d|/2, |x| - 15|d|).
using System.Buffers.Binary;
using Quill.Kernels;

namespace Quill.Quantization;

/// <summary>Q5_0: blocks of 32 5-bit values with one f16 scale (symmetric, offset 16).</summary>
public static class Q5_0
{
    public const int BlockSize = 32;
    public const int BlockBytes = 22;

    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst)
    {
        QuantMath.CheckSizes("Q5_0", BlockSize, BlockBytes, src.Length, dst.Length);
        for (int b = 0; b < src.Length / BlockSize; b++)
        {
            ReadOnlySpan<float> x = src.Slice(b * BlockSize, BlockSize);
            Span<byte> o = dst.Slice(b * BlockBytes, BlockBytes);
            float amax = 0, max = 0;
            foreach (float v in x)
            {
                if (MathF.Abs(v) > amax)
                {
                    amax = MathF.Abs(v);
                    max = v;
                }
            }
            ushort dh = Fp16.FromSingle(max / -16f);
            float d = Fp16.ToSingle(dh);
            float id = d != 0 ? 1f / d : 0f;
            QuantMath.WriteHalfBits(o, 0, dh);
            uint qh = 0;
            for (int j = 0; j < 16; j++)
            {
                int q0 = Math.Clamp((int)MathF.Floor(x[j] * id + 16.5f), 0, 31);
                int q1 = Math.Clamp((int)MathF.Floor(x[j + 16] * id + 16.5f), 0, 31);
                o[6 + j] = (byte)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
                qh |= (uint)(q0 >> 4) << j;
                qh |= (uint)(q1 >> 4) << (j + 16);
            }
            BinaryPrimitives.WriteUInt32LittleEndian(o[2..], qh);
        }
    }

    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst)
    {
        QuantMath.CheckSizes("Q5_0", BlockSize, BlockBytes, dst.Length, src.Length);
        for (int b = 0; b < dst.Length / BlockSize; b++)
        {
            ReadOnlySpan<byte> blk = src.Slice(b * BlockBytes, BlockBytes);
            Span<float> y = dst.Slice(b * BlockSize, BlockSize);
            float d = QuantMath.ReadHalf(blk, 0);
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(blk[2..]);
            for (int j = 0; j < 16; j++)
            {
                int h0 = (int)((qh >> j) & 1) << 4;
                int h1 = (int)((qh >> (j + 16)) & 1) << 4;
                y[j] = (((blk[6 + j] & 0x0F) | h0) - 16) * d;
                y[j + 16] = (((blk[6 + j] >> 4) | h1) - 16) * d;
            }
        }
    }
}
