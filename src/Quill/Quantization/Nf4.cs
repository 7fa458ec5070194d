// bitsandbytes' NormalFloat4 (NF4), the QLoRA paper's type, as Quill holds it in memory: blocks of 64 values, each
// an f32 absmax (bytes 0-3) and 32 bytes of 4-bit codes, two per byte with the first value in the high nibble
// (36 bytes, 4.5 bits a value). A value is code[q] * absmax with bitsandbytes' 16 code values (get_4bit_type("nf4"),
// quoted in ../shared/research/wave2-facts.md 1.4). Quantize follows bitsandbytes' reference backend: absmax = max
// |x| of the block, s = clamp(x * (1 / absmax), -1, 1), q = the code nearest s (the lower one on a tie, as argmin).
// Not a GGUF type: it is never written to or read from a file (a QLoRA base is quantized to it at load, and merging
// dequantizes). bitsandbytes keeps absmax apart from the codes; Quill puts each block's absmax before its codes so a
// row of a matrix is a whole number of self-contained blocks, like ggml's types. No double quantization of absmax.
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Quill.Quantization;

/// <summary>NF4: blocks of 64 4-bit NormalFloat codes with one f32 absmax (bitsandbytes' quant_type "nf4", blocksize 64).</summary>
public static class Nf4
{
    public const int BlockSize = 64;
    public const int BlockBytes = 36;

    /// <summary>bitsandbytes' NF4 code values, index 0 to 15 (7 negative, an exact 0, 8 positive).</summary>
    public static ReadOnlySpan<float> Codes =>
    [
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f, -0.18477343022823334f,
        -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
        0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
    ];

    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst)
    {
        QuantMath.CheckSizes("NF4", BlockSize, BlockBytes, src.Length, dst.Length);
        ReadOnlySpan<float> codes = Codes;
        for (int b = 0; b < src.Length / BlockSize; b++)
        {
            ReadOnlySpan<float> x = src.Slice(b * BlockSize, BlockSize);
            Span<byte> o = dst.Slice(b * BlockBytes, BlockBytes);
            float amax = 0;
            foreach (float v in x) amax = MathF.Max(amax, MathF.Abs(v));
            BinaryPrimitives.WriteSingleLittleEndian(o, amax);
            float inv = 1f / amax;
            for (int j = 0; j < BlockSize / 2; j++)
            {
                int hi = amax == 0 ? 7 : Nearest(codes, Math.Clamp(x[2 * j] * inv, -1f, 1f));
                int lo = amax == 0 ? 7 : Nearest(codes, Math.Clamp(x[2 * j + 1] * inv, -1f, 1f));
                o[4 + j] = (byte)((hi << 4) | lo);
            }
        }
    }

    /// <summary>The index of the code nearest s, the lower index on a tie (torch.argmin of |s - code|).</summary>
    internal static int Nearest(ReadOnlySpan<float> codes, float s)
    {
        // binary search on the codes, then settle between the two neighbours with the exact distances
        int lo = 0, hi = codes.Length - 1;
        while (hi - lo > 1)
        {
            int mid = (lo + hi) >> 1;
            if (codes[mid] <= s) lo = mid;
            else hi = mid;
        }
        return MathF.Abs(s - codes[hi]) < MathF.Abs(s - codes[lo]) ? hi : lo;
    }

    public static unsafe void Dequantize(ReadOnlySpan<byte> src, Span<float> dst)
    {
        QuantMath.CheckSizes("NF4", BlockSize, BlockBytes, dst.Length, src.Length);
        int nb = dst.Length / BlockSize;
        fixed (byte* ps = src)
        fixed (float* pd = dst)
        {
            if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported)
            {
                DequantizeAvx512(ps, pd, nb);
                return;
            }
            ReadOnlySpan<float> codes = Codes;
            for (int b = 0; b < nb; b++)
            {
                byte* blk = ps + (long)b * BlockBytes;
                float* y = pd + (long)b * BlockSize;
                float d = Unsafe.ReadUnaligned<float>(blk);
                for (int j = 0; j < BlockSize / 2; j++)
                {
                    y[2 * j] = codes[blk[4 + j] >> 4] * d;
                    y[2 * j + 1] = codes[blk[4 + j] & 0x0F] * d;
                }
            }
        }
    }

    /// <summary>Plain twin of <see cref="Dequantize"/>: one value at a time.</summary>
    internal static void DequantizeReference(ReadOnlySpan<byte> src, Span<float> dst)
    {
        QuantMath.CheckSizes("NF4", BlockSize, BlockBytes, dst.Length, src.Length);
        for (int i = 0; i < dst.Length; i++)
        {
            ReadOnlySpan<byte> blk = src.Slice(i / BlockSize * BlockBytes, BlockBytes);
            int j = i % BlockSize;
            int q = (j & 1) == 0 ? blk[4 + j / 2] >> 4 : blk[4 + j / 2] & 0x0F;
            dst[i] = Codes[q] * BinaryPrimitives.ReadSingleLittleEndian(blk);
        }
    }

    // 16 nibbles at a time: split a byte vector into high and low nibbles, interleave them back into value order,
    // widen to int32 indices and look the 16 codes (one 512-bit register) up with a permute.
    private static unsafe void DequantizeAvx512(byte* ps, float* pd, int nb)
    {
        Vector512<float> codes = Vector512.Create(Codes);
        Vector128<byte> mask = Vector128.Create((byte)0x0F);
        for (int b = 0; b < nb; b++)
        {
            byte* blk = ps + (long)b * BlockBytes;
            float* y = pd + (long)b * BlockSize;
            var d = Vector512.Create(Unsafe.ReadUnaligned<float>(blk));
            for (int h = 0; h < 2; h++)
            {
                Vector128<byte> v = Vector128.Load(blk + 4 + 16 * h);
                Vector128<byte> hi = Vector128.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & mask, lo = v & mask;
                Vector128<byte> first = Sse2.UnpackLow(hi, lo), second = Sse2.UnpackHigh(hi, lo);
                (Avx512F.PermuteVar16x32(codes, Avx512F.ConvertToVector512Int32(first)) * d).Store(y + 32 * h);
                (Avx512F.PermuteVar16x32(codes, Avx512F.ConvertToVector512Int32(second)) * d).Store(y + 32 * h + 16);
            }
        }
    }
}
