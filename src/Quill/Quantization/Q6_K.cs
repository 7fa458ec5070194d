// ggml's Q6_K super-block format: 256 values per 210-byte block = 128 bytes ql (low 4 bits), 64 bytes qh (high 2
// bits), 16 int8 scales (one per sub-block of 16 values), then f16 d; value = d * scale_k * (q - 32), q in 0..63.
// Bits are laid out per half of 128 values: for l < 32, ql[l] holds values l (low nibble) and l + 64 (high),
// ql[l + 32] holds l + 32 and l + 96, and qh[l] holds the top two bits of l, l + 32, l + 64, l + 96 at bits 0, 2,
// 4, 6; the second half uses ql[64..], qh[32..]. Quantize (Quill's own): scale_k = amax_k / 31 rounded up to a
// whole multiple of d = max scale / 127 (f16, rounded up), so nothing clips and each value is within step/2,
// step = d * scale_k <= amax_k / 31 + d.
using Quill.Kernels;

namespace Quill.Quantization;

/// <summary>Q6_K: 256-value super-blocks of sixteen 16-value sub-blocks, 6-bit values, int8 scales.</summary>
public static class Q6_K
{
    public const int BlockSize = 256;
    public const int BlockBytes = 210;

    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst)
    {
        QuantMath.CheckSizes("Q6_K", BlockSize, BlockBytes, src.Length, dst.Length);
        Span<float> scales = stackalloc float[16];
        Span<byte> q = stackalloc byte[256];
        for (int b = 0; b < src.Length / BlockSize; b++)
        {
            ReadOnlySpan<float> x = src.Slice(b * BlockSize, BlockSize);
            Span<byte> o = dst.Slice(b * BlockBytes, BlockBytes);
            float maxScale = 0;
            for (int k = 0; k < 16; k++)
            {
                float amax = 0;
                foreach (float v in x.Slice(16 * k, 16)) amax = MathF.Max(amax, MathF.Abs(v));
                scales[k] = amax / 31f;
                maxScale = MathF.Max(maxScale, scales[k]);
            }
            ushort dH = QuantMath.HalfAtLeast(maxScale / 127f);
            float d = Fp16.ToSingle(dH);
            for (int k = 0; k < 16; k++)
            {
                int s = d > 0 ? Math.Min(127, (int)MathF.Ceiling(scales[k] / d)) : 0;
                o[192 + k] = (byte)(sbyte)s;
                float step = d * s, inv = step > 0 ? 1f / step : 0;
                for (int i = 0; i < 16; i++) q[16 * k + i] = (byte)(Math.Clamp(QuantMath.RoundToInt(x[16 * k + i] * inv), -32, 31) + 32);
            }
            QuantMath.WriteHalfBits(o, 208, dH);
            Pack(q, o);
        }
    }

    /// <summary>Writes 256 six-bit codes q (0..63) into a block's ql and qh bytes (the first 192).</summary>
    internal static void Pack(ReadOnlySpan<byte> q, Span<byte> o)
    {
        for (int h = 0; h < 2; h++)
        {
            Span<byte> ql = o.Slice(64 * h, 64);
            Span<byte> qh = o.Slice(128 + 32 * h, 32);
            ReadOnlySpan<byte> qq = q.Slice(128 * h, 128);
            for (int l = 0; l < 32; l++)
            {
                ql[l] = (byte)((qq[l] & 0x0F) | ((qq[l + 64] & 0x0F) << 4));
                ql[l + 32] = (byte)((qq[l + 32] & 0x0F) | ((qq[l + 96] & 0x0F) << 4));
                qh[l] = (byte)((qq[l] >> 4) | ((qq[l + 32] >> 4) << 2) | ((qq[l + 64] >> 4) << 4) | ((qq[l + 96] >> 4) << 6));
            }
        }
    }

    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst)
    {
        QuantMath.CheckSizes("Q6_K", BlockSize, BlockBytes, dst.Length, src.Length);
        for (int b = 0; b < dst.Length / BlockSize; b++)
        {
            ReadOnlySpan<byte> blk = src.Slice(b * BlockBytes, BlockBytes);
            Span<float> y = dst.Slice(b * BlockSize, BlockSize);
            float d = QuantMath.ReadHalf(blk, 208);
            for (int h = 0; h < 2; h++)
            {
                ReadOnlySpan<byte> ql = blk.Slice(64 * h, 64);
                ReadOnlySpan<byte> qh = blk.Slice(128 + 32 * h, 32);
                ReadOnlySpan<byte> sc = blk.Slice(192 + 8 * h, 8);
                Span<float> yy = y.Slice(128 * h, 128);
                for (int l = 0; l < 32; l++)
                {
                    int k = l / 16;
                    int q1 = ((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) - 32;
                    int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    yy[l] = d * (sbyte)sc[k] * q1;
                    yy[l + 32] = d * (sbyte)sc[k + 2] * q2;
                    yy[l + 64] = d * (sbyte)sc[k + 4] * q3;
                    yy[l + 96] = d * (sbyte)sc[k + 6] * q4;
                }
            }
        }
    }
}
