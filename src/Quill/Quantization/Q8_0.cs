// ggml's Q8_0 block format: 32 values per 34-byte block = an f16 scale d, then 32 int8 q; value = q * d.
// Quantize picks d = amax / 127 rounded to f16 and rounds x / d to the nearest integer, so every value is within
// d / 2 of its original (d ~ amax / 127 of its block). Dequantize is vectorized (Vector256: int8 -> int32 -> float);
// DequantizeReference is its plain twin. Does not handle: Q8_1 or Q8_K (the activation formats of other dots).
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Quill.Kernels;

namespace Quill.Quantization;

/// <summary>Q8_0: blocks of 32 int8 values with one f16 scale.</summary>
public static class Q8_0
{
    public const int BlockSize = 32;
    public const int BlockBytes = 34;

    /// <summary>Quantizes <paramref name="src"/> (a multiple of 32 values) into Q8_0 blocks.</summary>
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst)
    {
        QuantMath.CheckSizes("Q8_0", BlockSize, BlockBytes, src.Length, dst.Length);
        for (int b = 0; b < src.Length / BlockSize; b++)
        {
            ReadOnlySpan<float> x = src.Slice(b * BlockSize, BlockSize);
            Span<byte> o = dst.Slice(b * BlockBytes, BlockBytes);
            float amax = 0;
            foreach (float v in x) amax = MathF.Max(amax, MathF.Abs(v));
            ushort dh = Fp16.FromSingle(amax / 127f);
            float d = Fp16.ToSingle(dh);
            float id = d > 0 ? 1f / d : 0f;
            QuantMath.WriteHalfBits(o, 0, dh);
            for (int i = 0; i < BlockSize; i++) o[2 + i] = (byte)(sbyte)Math.Clamp(QuantMath.RoundToInt(x[i] * id), -127, 127);
        }
    }

    /// <summary>Expands Q8_0 blocks to floats (vectorized).</summary>
    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst)
    {
        QuantMath.CheckSizes("Q8_0", BlockSize, BlockBytes, dst.Length, src.Length);
        if (!Vector256.IsHardwareAccelerated)
        {
            DequantizeReference(src, dst);
            return;
        }
        for (int b = 0; b < dst.Length / BlockSize; b++)
        {
            ReadOnlySpan<byte> blk = src.Slice(b * BlockBytes, BlockBytes);
            var d = Vector256.Create(QuantMath.ReadHalf(blk, 0));
            var q = Vector256.Create(MemoryMarshal.Cast<byte, sbyte>(blk.Slice(2, 32)));
            var (lo, hi) = Vector256.Widen(q);
            var (a0, a1) = Vector256.Widen(lo);
            var (a2, a3) = Vector256.Widen(hi);
            Span<float> y = dst.Slice(b * BlockSize, BlockSize);
            (Vector256.ConvertToSingle(a0) * d).CopyTo(y);
            (Vector256.ConvertToSingle(a1) * d).CopyTo(y[8..]);
            (Vector256.ConvertToSingle(a2) * d).CopyTo(y[16..]);
            (Vector256.ConvertToSingle(a3) * d).CopyTo(y[24..]);
        }
    }

    /// <summary>Plain twin of <see cref="Dequantize"/>.</summary>
    internal static void DequantizeReference(ReadOnlySpan<byte> src, Span<float> dst)
    {
        for (int b = 0; b < dst.Length / BlockSize; b++)
        {
            ReadOnlySpan<byte> blk = src.Slice(b * BlockBytes, BlockBytes);
            float d = QuantMath.ReadHalf(blk, 0);
            for (int i = 0; i < BlockSize; i++) dst[b * BlockSize + i] = (sbyte)blk[2 + i] * d;
        }
    }
}
