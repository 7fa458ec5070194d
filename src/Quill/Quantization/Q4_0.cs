// ggml's Q4_0 block format: 32 values per 18-byte block = an f16 scale d, then 16 bytes; byte j holds value j in
// its low nibble and value j + 16 in its high nibble; value = (nibble - 8) * d. Quantize follows ggml's scheme:
// the value of largest magnitude, m, maps exactly to nibble 0 (d = m / -8), so values on m's side are within d/2
// and values on the other side (which only reach 7|d|) within max(|d|/2, |x| - 7|d|).
using Quill.Kernels;

namespace Quill.Quantization;

/// <summary>Q4_0: blocks of 32 4-bit values with one f16 scale (symmetric, offset 8).</summary>
public static class Q4_0
{
    public const int BlockSize = 32;
    public const int BlockBytes = 18;

    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst)
    {
        QuantMath.CheckSizes("Q4_0", BlockSize, BlockBytes, src.Length, dst.Length);
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
            ushort dh = Fp16.FromSingle(max / -8f);
            float d = Fp16.ToSingle(dh);
            float id = d != 0 ? 1f / d : 0f;
            QuantMath.WriteHalfBits(o, 0, dh);
            for (int j = 0; j < 16; j++)
            {
                int q0 = Math.Clamp((int)MathF.Floor(x[j] * id + 8.5f), 0, 15);
                int q1 = Math.Clamp((int)MathF.Floor(x[j + 16] * id + 8.5f), 0, 15);
                o[2 + j] = (byte)(q0 | (q1 << 4));
            }
        }
    }

    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst)
    {
        QuantMath.CheckSizes("Q4_0", BlockSize, BlockBytes, dst.Length, src.Length);
        for (int b = 0; b < dst.Length / BlockSize; b++)
        {
            ReadOnlySpan<byte> blk = src.Slice(b * BlockBytes, BlockBytes);
            Span<float> y = dst.Slice(b * BlockSize, BlockSize);
            float d = QuantMath.ReadHalf(blk, 0);
            for (int j = 0; j < 16; j++)
            {
                y[j] = ((blk[2 + j] & 0x0F) - 8) * d;
                y[j + 16] = ((blk[2 + j] >> 4) - 8) * d;
            }
        }
    }
}
