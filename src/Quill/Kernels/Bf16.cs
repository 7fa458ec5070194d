// bfloat16 (BF16: the top 16 bits of a float32) <-> float32 conversion over spans, vectorized with Vector512 /
// Vector256 and a scalar tail. BF16 -> float is exact; float -> BF16 rounds to nearest, ties to even, keeps NaN a
// (quiet) NaN and lets large finite values round up to infinity as IEEE rounding does. The reference twins are
// plain scalar loops. Does not handle: big-endian byte order.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Quill.Kernels;

/// <summary>Span conversions between float32 and bfloat16 bit patterns.</summary>
public static class Bf16
{
    /// <summary>BF16 bits -> float, exactly.</summary>
    public static void ToSingle(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException($"destination holds {dst.Length} values, source has {src.Length}.", nameof(dst));
        int n = src.Length, i = 0;
        ref ushort s = ref MemoryMarshal.GetReference(src);
        ref uint d = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(dst));
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + 32 <= n; i += 32)
            {
                var (lo, hi) = Vector512.Widen(Vector512.LoadUnsafe(ref s, (nuint)i));
                (lo << 16).StoreUnsafe(ref d, (nuint)i);
                (hi << 16).StoreUnsafe(ref d, (nuint)(i + 16));
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 16 <= n; i += 16)
            {
                var (lo, hi) = Vector256.Widen(Vector256.LoadUnsafe(ref s, (nuint)i));
                (lo << 16).StoreUnsafe(ref d, (nuint)i);
                (hi << 16).StoreUnsafe(ref d, (nuint)(i + 8));
            }
        }
        for (; i < n; i++) Unsafe.Add(ref d, i) = (uint)Unsafe.Add(ref s, i) << 16;
    }

    /// <summary>Float -> BF16 bits, round to nearest even.</summary>
    public static void FromSingle(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException($"destination holds {dst.Length} values, source has {src.Length}.", nameof(dst));
        int n = src.Length, i = 0;
        ref uint s = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(src));
        ref ushort d = ref MemoryMarshal.GetReference(dst);
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + 32 <= n; i += 32)
            {
                var lo = Round512(Vector512.LoadUnsafe(ref s, (nuint)i));
                var hi = Round512(Vector512.LoadUnsafe(ref s, (nuint)(i + 16)));
                Vector512.Narrow(lo, hi).StoreUnsafe(ref d, (nuint)i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 16 <= n; i += 16)
            {
                var lo = Round256(Vector256.LoadUnsafe(ref s, (nuint)i));
                var hi = Round256(Vector256.LoadUnsafe(ref s, (nuint)(i + 8)));
                Vector256.Narrow(lo, hi).StoreUnsafe(ref d, (nuint)i);
            }
        }
        for (; i < n; i++) Unsafe.Add(ref d, i) = FromSingle(BitConverter.UInt32BitsToSingle(Unsafe.Add(ref s, i)));
    }

    /// <summary>Little-endian BF16 bytes (2 per value) -> float.</summary>
    public static void ToSingle(ReadOnlySpan<byte> src, Span<float> dst) => ToSingle(MemoryMarshal.Cast<byte, ushort>(src), dst);

    /// <summary>Float -> little-endian BF16 bytes (2 per value).</summary>
    public static void FromSingle(ReadOnlySpan<float> src, Span<byte> dst) => FromSingle(src, MemoryMarshal.Cast<byte, ushort>(dst));

    /// <summary>One BF16 -> float.</summary>
    public static float ToSingle(ushort b) => BitConverter.UInt32BitsToSingle((uint)b << 16);

    /// <summary>One float -> BF16 bits (round to nearest even).</summary>
    public static ushort FromSingle(float f)
    {
        uint x = BitConverter.SingleToUInt32Bits(f);
        if ((x & 0x7FFFFFFF) > 0x7F800000) return (ushort)((x >> 16) | 0x40);
        return (ushort)((x + 0x7FFF + ((x >> 16) & 1)) >> 16);
    }

    /// <summary>Reference twin of <see cref="ToSingle(ReadOnlySpan{ushort}, Span{float})"/>.</summary>
    internal static void ToSingleReference(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        for (int i = 0; i < src.Length; i++) dst[i] = ToSingle(src[i]);
    }

    /// <summary>Reference twin of <see cref="FromSingle(ReadOnlySpan{float}, Span{ushort})"/>.</summary>
    internal static void FromSingleReference(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        for (int i = 0; i < src.Length; i++) dst[i] = FromSingle(src[i]);
    }

    private static Vector512<uint> Round512(Vector512<uint> x)
    {
        var rounded = (x + Vector512.Create(0x7FFFu) + ((x >> 16) & Vector512<uint>.One)) >> 16;
        var nan = (x >> 16) | Vector512.Create(0x40u);
        var isNan = Vector512.GreaterThan(x & Vector512.Create(0x7FFFFFFFu), Vector512.Create(0x7F800000u));
        return Vector512.ConditionalSelect(isNan, nan, rounded);
    }

    private static Vector256<uint> Round256(Vector256<uint> x)
    {
        var rounded = (x + Vector256.Create(0x7FFFu) + ((x >> 16) & Vector256<uint>.One)) >> 16;
        var nan = (x >> 16) | Vector256.Create(0x40u);
        var isNan = Vector256.GreaterThan(x & Vector256.Create(0x7FFFFFFFu), Vector256.Create(0x7F800000u));
        return Vector256.ConditionalSelect(isNan, nan, rounded);
    }
}
