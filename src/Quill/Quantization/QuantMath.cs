// Small helpers the block formats share: reading and writing the little-endian f16 fields of a block, f16
// rounding in a chosen direction (so a quantizer can make sure the stored scale never clips), argument checks
// and the nearest-integer rounding ggml uses.
using System.Buffers.Binary;
using Quill.Kernels;

namespace Quill.Quantization;

internal static class QuantMath
{
    public static float ReadHalf(ReadOnlySpan<byte> b, int offset) => Fp16.ToSingle(BinaryPrimitives.ReadUInt16LittleEndian(b[offset..]));

    public static void WriteHalf(Span<byte> b, int offset, float value) => BinaryPrimitives.WriteUInt16LittleEndian(b[offset..], Fp16.FromSingle(value));

    public static void WriteHalfBits(Span<byte> b, int offset, ushort bits) => BinaryPrimitives.WriteUInt16LittleEndian(b[offset..], bits);

    /// <summary>The f16 bits of the smallest half >= v (v finite, |v| &lt; 65504).</summary>
    public static ushort HalfAtLeast(float v)
    {
        ushort h = Fp16.FromSingle(v);
        if (Fp16.ToSingle(h) >= v) return h;
        // step one ulp towards +infinity
        if ((h & 0x8000) == 0) return (ushort)(h + 1);
        return h == 0x8000 ? (ushort)0x0001 : (ushort)(h - 1);
    }

    /// <summary>The f16 bits of the largest half &lt;= v (v finite, |v| &lt; 65504).</summary>
    public static ushort HalfAtMost(float v)
    {
        ushort h = Fp16.FromSingle(v);
        if (Fp16.ToSingle(h) <= v) return h;
        if ((h & 0x8000) != 0) return (ushort)(h + 1);
        return h == 0 ? (ushort)0x8001 : (ushort)(h - 1);
    }

    /// <summary>Round to nearest, halves away from zero (C roundf).</summary>
    public static int RoundToInt(float v) => (int)MathF.Round(v, MidpointRounding.AwayFromZero);

    public static void CheckSizes(string format, int blockSize, int blockBytes, int values, int bytes)
    {
        if (values % blockSize != 0)
            throw new ArgumentException($"{format} works on blocks of {blockSize} values; {values} is not a multiple of {blockSize}.");
        if ((long)values / blockSize * blockBytes != bytes)
            throw new ArgumentException($"{format}: {values} values take {values / blockSize * blockBytes} bytes, the byte span has {bytes}.");
    }
}
