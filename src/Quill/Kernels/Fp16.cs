// IEEE half precision (F16) <-> float32 conversion over spans, vectorized with Vector512 / Vector256 and a scalar
// tail, exact in both directions (float -> half rounds to nearest, ties to even; NaN stays NaN, overflow gives
// infinity, tiny values become subnormals or signed zero). The plain reference twins use System.Half.
// Does not handle: big-endian byte order (byte overloads read/write little-endian, the only order GGUF and
// safetensors use).
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Quill.Kernels;

/// <summary>Span conversions between float32 and IEEE binary16 bit patterns.</summary>
public static class Fp16
{
    /// <summary>Half bits -> float, exactly.</summary>
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
                Widen512(lo).StoreUnsafe(ref d, (nuint)i);
                Widen512(hi).StoreUnsafe(ref d, (nuint)(i + 16));
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 16 <= n; i += 16)
            {
                var (lo, hi) = Vector256.Widen(Vector256.LoadUnsafe(ref s, (nuint)i));
                Widen256(lo).StoreUnsafe(ref d, (nuint)i);
                Widen256(hi).StoreUnsafe(ref d, (nuint)(i + 8));
            }
        }
        for (; i < n; i++) Unsafe.Add(ref d, i) = HalfBitsToSingleBits(Unsafe.Add(ref s, i));
    }

    /// <summary>Float -> half bits, round to nearest even.</summary>
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
                var lo = Narrow512(Vector512.LoadUnsafe(ref s, (nuint)i));
                var hi = Narrow512(Vector512.LoadUnsafe(ref s, (nuint)(i + 16)));
                Vector512.Narrow(lo, hi).StoreUnsafe(ref d, (nuint)i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 16 <= n; i += 16)
            {
                var lo = Narrow256(Vector256.LoadUnsafe(ref s, (nuint)i));
                var hi = Narrow256(Vector256.LoadUnsafe(ref s, (nuint)(i + 8)));
                Vector256.Narrow(lo, hi).StoreUnsafe(ref d, (nuint)i);
            }
        }
        for (; i < n; i++) Unsafe.Add(ref d, i) = SingleBitsToHalfBits(Unsafe.Add(ref s, i));
    }

    /// <summary>Little-endian half bytes (2 per value) -> float.</summary>
    public static void ToSingle(ReadOnlySpan<byte> src, Span<float> dst) => ToSingle(MemoryMarshal.Cast<byte, ushort>(src), dst);

    /// <summary>Float -> little-endian half bytes (2 per value).</summary>
    public static void FromSingle(ReadOnlySpan<float> src, Span<byte> dst) => FromSingle(src, MemoryMarshal.Cast<byte, ushort>(dst));

    /// <summary>One half -> float.</summary>
    public static float ToSingle(ushort h) => BitConverter.UInt32BitsToSingle(HalfBitsToSingleBits(h));

    /// <summary>One float -> half bits (round to nearest even).</summary>
    public static ushort FromSingle(float f) => SingleBitsToHalfBits(BitConverter.SingleToUInt32Bits(f));

    /// <summary>Reference twin of <see cref="ToSingle(ReadOnlySpan{ushort}, Span{float})"/> using System.Half.</summary>
    internal static void ToSingleReference(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        for (int i = 0; i < src.Length; i++) dst[i] = (float)BitConverter.UInt16BitsToHalf(src[i]);
    }

    /// <summary>Reference twin of <see cref="FromSingle(ReadOnlySpan{float}, Span{ushort})"/> using System.Half.</summary>
    internal static void FromSingleReference(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        for (int i = 0; i < src.Length; i++) dst[i] = BitConverter.HalfToUInt16Bits((Half)src[i]);
    }

    // ---- the math, once per width ----
    // half -> float: normal numbers re-bias the exponent (+112 << 23); inf/NaN re-bias to 255; zero and subnormal
    // halves are exact integers times 2^-24, done through an int -> float conversion.

    private const uint ExpAdjust = (127 - 15) << 23;
    private const float TwoPowMinus24 = 5.9604645e-08f;

    private static uint HalfBitsToSingleBits(ushort h)
    {
        uint em = h & 0x7FFFu;
        uint sign = (uint)(h & 0x8000) << 16;
        uint r;
        if (em >= 0x7C00) r = (em << 13) + ExpAdjust * 2;
        else if (em >= 0x0400) r = (em << 13) + ExpAdjust;
        else r = BitConverter.SingleToUInt32Bits(em * TwoPowMinus24);
        return sign | r;
    }

    /// <summary>
    /// 16 half bit patterns -> floats, exactly, in fewer instructions than Widen512: (bits &amp; 0x7FFF) &lt;&lt; 13 read as a
    /// float is the half's value times 2^-112 for normal and subnormal halves alike (a subnormal half becomes a float
    /// denormal), so one multiply by 2^112 rescales both; infinities and NaNs take the exponent 255 by an add; the
    /// sign is or-ed back.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Widen512Fast(Vector256<ushort> half)
    {
        var h = Vector512.WidenLower(half.ToVector512Unsafe()).AsUInt32();
        var shifted = (h & Vector512.Create(0x7FFFu)) << 13;
        var value = (shifted.AsSingle() * Vector512.Create(0x77800000u).AsSingle()).AsUInt32(); // times 2^112
        var special = shifted + Vector512.Create(ExpAdjust * 2);
        var r = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(shifted, Vector512.Create(0x7C00u << 13)), special, value);
        return (r | ((h & Vector512.Create(0x8000u)) << 16)).AsSingle();
    }

    /// <summary>Widen512Fast at 8 lanes (AVX2).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Widen256Fast(Vector128<ushort> half)
    {
        var h = Vector256.WidenLower(half.ToVector256Unsafe()).AsUInt32();
        var shifted = (h & Vector256.Create(0x7FFFu)) << 13;
        var value = (shifted.AsSingle() * Vector256.Create(0x77800000u).AsSingle()).AsUInt32(); // times 2^112
        var special = shifted + Vector256.Create(ExpAdjust * 2);
        var r = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(shifted, Vector256.Create(0x7C00u << 13)), special, value);
        return (r | ((h & Vector256.Create(0x8000u)) << 16)).AsSingle();
    }

    /// <summary>Widen512Fast at 4 lanes (NEON, SSE).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<float> Widen128Fast(Vector64<ushort> half)
    {
        var h = Vector128.WidenLower(half.ToVector128Unsafe()).AsUInt32();
        var shifted = (h & Vector128.Create(0x7FFFu)) << 13;
        var value = (shifted.AsSingle() * Vector128.Create(0x77800000u).AsSingle()).AsUInt32(); // times 2^112
        var special = shifted + Vector128.Create(ExpAdjust * 2);
        var r = Vector128.ConditionalSelect(Vector128.GreaterThanOrEqual(shifted, Vector128.Create(0x7C00u << 13)), special, value);
        return (r | ((h & Vector128.Create(0x8000u)) << 16)).AsSingle();
    }

    /// <summary>Whether none of <paramref name="count"/> half bit patterns is an infinity or NaN (exponent bits all set).</summary>
    internal static unsafe bool AllFinite(ushort* p, long count)
    {
        long i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var any = Vector256<ushort>.Zero;
            var e = Vector256.Create((ushort)0x7C00);
            for (; i + 16 <= count; i += 16) any |= Vector256.Equals(Vector256.Load(p + i) & e, e);
            if (any != Vector256<ushort>.Zero) return false;
        }
        else if (Vector128.IsHardwareAccelerated)
        {
            var any = Vector128<ushort>.Zero;
            var e = Vector128.Create((ushort)0x7C00);
            for (; i + 8 <= count; i += 8) any |= Vector128.Equals(Vector128.Load(p + i) & e, e);
            if (any != Vector128<ushort>.Zero) return false;
        }
        for (; i < count; i++)
            if ((p[i] & 0x7C00) == 0x7C00) return false;
        return true;
    }

    private static Vector512<uint> Widen512(Vector512<uint> h)
    {
        var em = h & Vector512.Create(0x7FFFu);
        var sign = (h & Vector512.Create(0x8000u)) << 16;
        var shifted = em << 13;
        var normal = shifted + Vector512.Create(ExpAdjust);
        var special = shifted + Vector512.Create(ExpAdjust * 2);
        var sub = (Vector512.ConvertToSingle(em.AsInt32()) * Vector512.Create(TwoPowMinus24)).AsUInt32();
        var r = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(em, Vector512.Create(0x7C00u)), special, normal);
        r = Vector512.ConditionalSelect(Vector512.LessThan(em, Vector512.Create(0x0400u)), sub, r);
        return r | sign;
    }

    private static Vector256<uint> Widen256(Vector256<uint> h)
    {
        var em = h & Vector256.Create(0x7FFFu);
        var sign = (h & Vector256.Create(0x8000u)) << 16;
        var shifted = em << 13;
        var normal = shifted + Vector256.Create(ExpAdjust);
        var special = shifted + Vector256.Create(ExpAdjust * 2);
        var sub = (Vector256.ConvertToSingle(em.AsInt32()) * Vector256.Create(TwoPowMinus24)).AsUInt32();
        var r = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(em, Vector256.Create(0x7C00u)), special, normal);
        r = Vector256.ConditionalSelect(Vector256.LessThan(em, Vector256.Create(0x0400u)), sub, r);
        return r | sign;
    }

    // float -> half: NaN keeps its top mantissa bits and is made quiet; |x| >= 65520 overflows to infinity;
    // |x| < 2^-14 lands in the subnormal range, where adding 0.5f makes the float hardware round at 2^-24 steps
    // (to nearest even) and the low mantissa bits are the half's bits; otherwise re-bias and round the 13 dropped
    // bits to nearest even by adding 0xFFF plus the lowest kept bit.

    private const uint InfOrNan = 0x7F800000;
    private const uint Overflow = 0x477FF000;   // 65520.0f
    private const uint MinNormal = 0x38800000;  // 2^-14
    private const uint HalfBitsOfPoint5 = 0x3F000000;

    private static ushort SingleBitsToHalfBits(uint x)
    {
        uint sign = (x >> 16) & 0x8000;
        uint a = x & 0x7FFFFFFF;
        uint r;
        if (a > InfOrNan) r = 0x7E00 | ((a >> 13) & 0x3FF);
        else if (a >= Overflow) r = 0x7C00;
        else if (a < MinNormal) r = BitConverter.SingleToUInt32Bits(BitConverter.UInt32BitsToSingle(a) + 0.5f) - HalfBitsOfPoint5;
        else r = (a + unchecked((uint)(-(int)ExpAdjust)) + 0xFFF + ((a >> 13) & 1)) >> 13;
        return (ushort)(sign | r);
    }

    private static Vector512<uint> Narrow512(Vector512<uint> x)
    {
        var sign = (x >> 16) & Vector512.Create(0x8000u);
        var a = x & Vector512.Create(0x7FFFFFFFu);
        var nan = Vector512.Create(0x7E00u) | ((a >> 13) & Vector512.Create(0x3FFu));
        var sub = (a.AsSingle() + Vector512.Create(0.5f)).AsUInt32() - Vector512.Create(HalfBitsOfPoint5);
        var normal = (a + Vector512.Create(unchecked((uint)(-(int)ExpAdjust)) + 0xFFF) + ((a >> 13) & Vector512<uint>.One)) >> 13;
        var r = Vector512.ConditionalSelect(Vector512.LessThan(a, Vector512.Create(MinNormal)), sub, normal);
        r = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(a, Vector512.Create(Overflow)), Vector512.Create(0x7C00u), r);
        r = Vector512.ConditionalSelect(Vector512.GreaterThan(a, Vector512.Create(InfOrNan)), nan, r);
        return r | sign;
    }

    private static Vector256<uint> Narrow256(Vector256<uint> x)
    {
        var sign = (x >> 16) & Vector256.Create(0x8000u);
        var a = x & Vector256.Create(0x7FFFFFFFu);
        var nan = Vector256.Create(0x7E00u) | ((a >> 13) & Vector256.Create(0x3FFu));
        var sub = (a.AsSingle() + Vector256.Create(0.5f)).AsUInt32() - Vector256.Create(HalfBitsOfPoint5);
        var normal = (a + Vector256.Create(unchecked((uint)(-(int)ExpAdjust)) + 0xFFF) + ((a >> 13) & Vector256<uint>.One)) >> 13;
        var r = Vector256.ConditionalSelect(Vector256.LessThan(a, Vector256.Create(MinNormal)), sub, normal);
        r = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(a, Vector256.Create(Overflow)), Vector256.Create(0x7C00u), r);
        r = Vector256.ConditionalSelect(Vector256.GreaterThan(a, Vector256.Create(InfOrNan)), nan, r);
        return r | sign;
    }
}
