// Dot products of a quantized weight row with an activation vector, the inner loop of decoding. Dot handles any
// type GgmlQuant supports by dequantizing one block at a time into a stack buffer and taking a vectorized float
// dot. The fast path is Q8_0 x Q8_0: the activation is quantized to Q8_0 once (QuantizeActivation) and each block
// pair is an int8 dot product: AVX-VNNI vpdpbusd where available, else AVX2 (pmaddubsw + pmaddwd), else scalar;
// |w| is the unsigned operand and x takes w's sign, so every int8 w (even -128) is exact. MatVec runs rows over
// KernelThreads. DotReference and DotQ8_0Reference are the plain twins the tests hold the fast paths to.
// Glossary: n = row length (values), nb = blocks in a row.
using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Quill.Formats.Gguf;
using Quill.Kernels;

namespace Quill.Quantization;

/// <summary>Quantized row x float vector dot products for decoding.</summary>
public static class QuantDot
{
    /// <summary>dot(row, x) where row holds x.Length values of <paramref name="type"/>. row: [n] in type; x: [n]</summary>
    public static float Dot(GgmlType type, ReadOnlySpan<byte> row, ReadOnlySpan<float> x)
    {
        int n = x.Length;
        if (row.Length != GgmlTypeInfo.RowBytes(type, n))
            throw new ArgumentException($"a {type} row of {n} values takes {GgmlTypeInfo.RowBytes(type, n)} bytes, got {row.Length}.", nameof(row));
        if (type == GgmlType.F32) return FloatDot(MemoryMarshal.Cast<byte, float>(row), x);
        if (!GgmlQuant.IsSupported(type)) throw GgmlQuant.Unsupported(type);
        int chunk = type is GgmlType.F16 or GgmlType.BF16 ? 256 : GgmlTypeInfo.BlockSize(type);
        int chunkBytes = (int)GgmlTypeInfo.RowBytes(type, chunk);
        Span<float> buf = stackalloc float[256];
        float sum = 0;
        int i = 0;
        for (; i + chunk <= n; i += chunk)
        {
            GgmlQuant.Dequantize(type, row.Slice(i / chunk * chunkBytes, chunkBytes), buf[..chunk]);
            sum += FloatDot(buf[..chunk], x.Slice(i, chunk));
        }
        if (i < n)
        {
            // only F16 / BF16 rows have a tail shorter than the chunk
            int rest = n - i;
            GgmlQuant.Dequantize(type, row[(int)GgmlTypeInfo.RowBytes(type, i)..], buf[..rest]);
            sum += FloatDot(buf[..rest], x[i..]);
        }
        return sum;
    }

    /// <summary>Plain twin of <see cref="Dot"/>: dequantize the whole row, then a scalar sum in double.</summary>
    internal static float DotReference(GgmlType type, ReadOnlySpan<byte> row, ReadOnlySpan<float> x)
    {
        var w = new float[x.Length];
        GgmlQuant.Dequantize(type, row, w);
        double s = 0;
        for (int i = 0; i < w.Length; i++) s += (double)w[i] * x[i];
        return (float)s;
    }

    /// <summary>Quantizes an activation vector to Q8_0 once, for <see cref="DotQ8_0"/>. x: [n]; xq: [n / 32 * 34]</summary>
    public static void QuantizeActivation(ReadOnlySpan<float> x, Span<byte> xq) => Q8_0.Quantize(x, xq);

    /// <summary>dot of a Q8_0 row with a Q8_0 activation of the same length (int8 products, float block scales).</summary>
    public static unsafe float DotQ8_0(ReadOnlySpan<byte> row, ReadOnlySpan<byte> xq)
    {
        if (row.Length != xq.Length || row.Length % Q8_0.BlockBytes != 0)
            throw new ArgumentException($"Q8_0 row ({row.Length} bytes) and activation ({xq.Length} bytes) must be the same whole number of 34-byte blocks.", nameof(xq));
        int nb = row.Length / Q8_0.BlockBytes;
        float[] xs = ArrayPool<float>.Shared.Rent(nb);
        try
        {
            fixed (byte* w = row)
            fixed (byte* x = xq)
            fixed (float* xsp = xs)
            {
                BlockScales(x, xsp, nb);
                return DotQ8_0Blocks(w, x, xsp, nb);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(xs);
        }
    }

    /// <summary>The f16 scales of nb Q8_0 blocks as floats (vectorized conversion). q: [nb * 34]; scales: [nb]</summary>
    private static unsafe void BlockScales(byte* q, float* scales, int nb)
    {
        const int Chunk = 64;
        ushort* bits = stackalloc ushort[Chunk];
        for (int c = 0; c < nb; c += Chunk)
        {
            int m = Math.Min(Chunk, nb - c);
            for (int k = 0; k < m; k++) bits[k] = *(ushort*)(q + (long)(c + k) * Q8_0.BlockBytes);
            Fp16.ToSingle(new ReadOnlySpan<ushort>(bits, m), new Span<float>(scales + c, m));
        }
    }

    /// <summary>Q8_0 row dot Q8_0 activation whose block scales are already floats. w, x: [nb * 34]; xScales: [nb]</summary>
    private static unsafe float DotQ8_0Blocks(byte* w, byte* x, float* xScales, int nb)
    {
        const int Chunk = 64;
        float* s = stackalloc float[Chunk];
        float sum = 0;
        for (int c = 0; c < nb; c += Chunk)
        {
            int m = Math.Min(Chunk, nb - c);
            byte* wc = w + (long)c * Q8_0.BlockBytes, xc = x + (long)c * Q8_0.BlockBytes;
            BlockScales(wc, s, m);
            for (int k = 0; k < m; k++) s[k] *= xScales[c + k];
            if (AvxVnni.IsSupported) sum += DotQ8_0Vnni(wc, xc, s, m);
            else if (Avx2.IsSupported && Fma.IsSupported) sum += DotQ8_0Avx2(wc, xc, s, m);
            else sum += DotQ8_0Scalar(wc, xc, s, m);
        }
        return sum;
    }

    /// <summary>Plain twin of <see cref="DotQ8_0(ReadOnlySpan{byte}, ReadOnlySpan{byte})"/>: int sums, scales by the scalar f16 decoder.</summary>
    internal static unsafe float DotQ8_0Reference(ReadOnlySpan<byte> row, ReadOnlySpan<byte> xq)
    {
        float sum = 0;
        for (int b = 0; b < row.Length / Q8_0.BlockBytes; b++)
        {
            ReadOnlySpan<byte> wb = row.Slice(b * Q8_0.BlockBytes, Q8_0.BlockBytes), xb = xq.Slice(b * Q8_0.BlockBytes, Q8_0.BlockBytes);
            int dot = 0;
            for (int i = 0; i < 32; i++) dot += (sbyte)wb[2 + i] * (sbyte)xb[2 + i];
            sum += dot * (QuantMath.ReadHalf(wb, 0) * QuantMath.ReadHalf(xb, 0));
        }
        return sum;
    }

    // The three instruction paths below take the per-block products of the two scales, scales: [nb].

    internal static unsafe float DotQ8_0Scalar(byte* w, byte* x, float* scales, int nb)
    {
        float sum = 0;
        for (int b = 0; b < nb; b++)
        {
            sbyte* wb = (sbyte*)(w + b * Q8_0.BlockBytes + 2), xb = (sbyte*)(x + b * Q8_0.BlockBytes + 2);
            int dot = 0;
            for (int i = 0; i < 32; i++) dot += wb[i] * xb[i];
            sum += dot * scales[b];
        }
        return sum;
    }

    internal static unsafe float DotQ8_0Vnni(byte* w, byte* x, float* scales, int nb)
    {
        var acc0 = Vector256<float>.Zero;
        var acc1 = Vector256<float>.Zero;
        int b = 0;
        for (; b + 2 <= nb; b += 2)
        {
            byte* w0 = w + b * Q8_0.BlockBytes + 2, x0 = x + b * Q8_0.BlockBytes + 2;
            var wq0 = Avx.LoadVector256((sbyte*)w0);
            var wq1 = Avx.LoadVector256((sbyte*)(w0 + Q8_0.BlockBytes));
            var p0 = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Avx2.Abs(wq0), Avx2.Sign(Avx.LoadVector256((sbyte*)x0), wq0));
            var p1 = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Avx2.Abs(wq1), Avx2.Sign(Avx.LoadVector256((sbyte*)(x0 + Q8_0.BlockBytes)), wq1));
            acc0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(p0), Vector256.Create(scales[b]), acc0);
            acc1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(p1), Vector256.Create(scales[b + 1]), acc1);
        }
        float sum = Vector256.Sum(acc0 + acc1);
        if (b < nb) sum += DotQ8_0Scalar(w + b * Q8_0.BlockBytes, x + b * Q8_0.BlockBytes, scales + b, nb - b);
        return sum;
    }

    internal static unsafe float DotQ8_0Avx2(byte* w, byte* x, float* scales, int nb)
    {
        var ones = Vector256.Create((short)1);
        var acc0 = Vector256<float>.Zero;
        var acc1 = Vector256<float>.Zero;
        int b = 0;
        for (; b + 2 <= nb; b += 2)
        {
            byte* w0 = w + b * Q8_0.BlockBytes + 2, x0 = x + b * Q8_0.BlockBytes + 2;
            var wq0 = Avx.LoadVector256((sbyte*)w0);
            var wq1 = Avx.LoadVector256((sbyte*)(w0 + Q8_0.BlockBytes));
            // |w| * (x * sign w): at most 128 * 127 * 2 per pair, inside int16
            var p0 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx2.Abs(wq0), Avx2.Sign(Avx.LoadVector256((sbyte*)x0), wq0)), ones);
            var p1 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx2.Abs(wq1), Avx2.Sign(Avx.LoadVector256((sbyte*)(x0 + Q8_0.BlockBytes)), wq1)), ones);
            acc0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(p0), Vector256.Create(scales[b]), acc0);
            acc1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(p1), Vector256.Create(scales[b + 1]), acc1);
        }
        float sum = Vector256.Sum(acc0 + acc1);
        if (b < nb) sum += DotQ8_0Scalar(w + b * Q8_0.BlockBytes, x + b * Q8_0.BlockBytes, scales + b, nb - b);
        return sum;
    }

    /// <summary>
    /// y = W x for a row-major matrix of <paramref name="rows"/> rows of <paramref name="cols"/> values in
    /// <paramref name="type"/> (a GGUF tensor with ne0 = cols, ne1 = rows). Q8_0 weights take the int8 path with x
    /// quantized once. w: [rows, cols] in type; x: [cols]; y: [rows]
    /// </summary>
    public static unsafe void MatVec(GgmlType type, ReadOnlySpan<byte> w, int rows, int cols, ReadOnlySpan<float> x, Span<float> y)
    {
        long rowBytes = GgmlTypeInfo.RowBytes(type, cols);
        if (w.Length != rowBytes * rows) throw new ArgumentException($"a {type} [{rows}, {cols}] matrix takes {rowBytes * rows} bytes, got {w.Length}.", nameof(w));
        if (x.Length != cols || y.Length != rows) throw new ArgumentException($"x must hold {cols} values and y {rows}.", nameof(x));
        int rb = (int)rowBytes;
        int minRows = Math.Max(1, 32768 / Math.Max(1, cols));
        if (type == GgmlType.Q8_0)
        {
            int nb = cols / Q8_0.BlockSize;
            byte[] xqArr = ArrayPool<byte>.Shared.Rent(rb);
            float[] xsArr = ArrayPool<float>.Shared.Rent(nb);
            try
            {
                QuantizeActivation(x, xqArr.AsSpan(0, rb));
                fixed (byte* wp = w)
                fixed (byte* xq = xqArr)
                fixed (float* xs = xsArr)
                fixed (float* yp = y)
                {
                    BlockScales(xq, xs, nb);
                    nint wAddr = (nint)wp, xAddr = (nint)xq, xsAddr = (nint)xs, yAddr = (nint)yp;
                    KernelThreads.ParallelFor(rows, minRows, (start, end) =>
                    {
                        for (int r = start; r < end; r++)
                            ((float*)yAddr)[r] = DotQ8_0Blocks((byte*)wAddr + (long)r * rb, (byte*)xAddr, (float*)xsAddr, nb);
                    });
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(xqArr);
                ArrayPool<float>.Shared.Return(xsArr);
            }
            return;
        }
        fixed (byte* wp = w)
        fixed (float* xp = x)
        fixed (float* yp = y)
        {
            nint wAddr = (nint)wp, xAddr = (nint)xp, yAddr = (nint)yp;
            KernelThreads.ParallelFor(rows, minRows, (start, end) =>
            {
                var xs = new ReadOnlySpan<float>((float*)xAddr, cols);
                for (int r = start; r < end; r++)
                    ((float*)yAddr)[r] = Dot(type, new ReadOnlySpan<byte>((byte*)wAddr + (long)r * rb, rb), xs);
            });
        }
    }

    /// <summary>Vectorized float dot product. a: [n]; b: [n]</summary>
    internal static float FloatDot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        int n = a.Length, i = 0;
        ref float pa = ref MemoryMarshal.GetReference(a);
        ref float pb = ref MemoryMarshal.GetReference(b);
        float sum = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var acc0 = Vector512<float>.Zero;
            var acc1 = Vector512<float>.Zero;
            for (; i + 32 <= n; i += 32)
            {
                acc0 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref pa, (nuint)i), Vector512.LoadUnsafe(ref pb, (nuint)i), acc0);
                acc1 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref pa, (nuint)(i + 16)), Vector512.LoadUnsafe(ref pb, (nuint)(i + 16)), acc1);
            }
            for (; i + 16 <= n; i += 16)
                acc0 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref pa, (nuint)i), Vector512.LoadUnsafe(ref pb, (nuint)i), acc0);
            sum = Vector512.Sum(acc0 + acc1);
        }
        else if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var acc = Vector256<float>.Zero;
            for (; i + 8 <= n; i += 8)
                acc = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref pa, (nuint)i), Vector256.LoadUnsafe(ref pb, (nuint)i), acc);
            sum = Vector256.Sum(acc);
        }
        for (; i < n; i++) sum += Unsafe.Add(ref pa, i) * Unsafe.Add(ref pb, i);
        return sum;
    }
}
