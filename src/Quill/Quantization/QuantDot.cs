// Dot products and matrix-vector products of quantized weights with an activation vector, the inner loop of
// decoding, and the one entry every caller takes for them. With a float x, Dot handles any type GgmlQuant supports
// by dequantizing one block at a time into a stack buffer and taking a vectorized float dot. With x quantized once
// to int8 (Q8Activation), every block format (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K) takes the integer
// kernels of IntegerDot (AVX-VNNI / AVX2 / scalar). MatVec quantizes x once, into a per-thread buffer (no
// allocation per token), and runs rows over KernelThreads in groups of four rows handed out by guided claims.
// MatVecMany: several matrices that read one x (q | k | v, gate | up) share one quantization and one parallel region.
// The DotReference overloads are the plain twins the tests hold the fast paths to.
// Does not handle: many activation vectors per call (WeightMatrix loops over a few; QuantGemm takes many).
// Glossary: n = row length (values), nb = blocks in a row.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Quill.Kernels;

namespace Quill.Quantization;

/// <summary>Quantized row x vector dot products and matrix-vector products for decoding: the one entry for quantized weights.</summary>
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
        // dequantize 256 values (whole blocks) at a time into a stack buffer
        const int Chunk = 256;
        Span<float> buf = stackalloc float[Chunk];
        int bs = GgmlTypeInfo.BlockSize(type), bb = GgmlTypeInfo.BlockBytes(type);
        float sum = 0;
        for (int i = 0; i < n; i += Chunk)
        {
            int m = Math.Min(Chunk, n - i);
            GgmlQuant.Dequantize(type, row.Slice(i / bs * bb, m / bs * bb), buf[..m]);
            sum += FloatDot(buf[..m], x.Slice(i, m));
        }
        return sum;
    }

    /// <summary>Plain twin of <see cref="Dot(GgmlType, ReadOnlySpan{byte}, ReadOnlySpan{float})"/>: dequantize the whole row, then a scalar sum in double.</summary>
    internal static float DotReference(GgmlType type, ReadOnlySpan<byte> row, ReadOnlySpan<float> x)
    {
        var w = new float[x.Length];
        GgmlQuant.Dequantize(type, row, w);
        double s = 0;
        for (int i = 0; i < w.Length; i++) s += (double)w[i] * x[i];
        return (float)s;
    }

    /// <summary>True when <paramref name="type"/> rows have an integer kernel against a <see cref="Q8Activation"/>.</summary>
    public static bool HasIntegerPath(GgmlType type) =>
        type is GgmlType.Q8_0 or GgmlType.Q4_0 or GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1 or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K;

    /// <summary>
    /// dot(row, x) with x quantized once to int8 (<see cref="Q8Activation.Quantize(ReadOnlySpan{float})"/>): the integer kernel of every
    /// block format (see <see cref="HasIntegerPath"/>). row: [n] in type; x: [n]
    /// </summary>
    public static unsafe float Dot(GgmlType type, ReadOnlySpan<byte> row, Q8Activation x)
    {
        ArgumentNullException.ThrowIfNull(x);
        CheckIntegerRow(type, row.Length, x);
        fixed (byte* w = row)
        {
            return RowDot(type, w, x);
        }
    }

    /// <summary>Plain twin of <see cref="Dot(GgmlType, ReadOnlySpan{byte}, Q8Activation)"/>.</summary>
    internal static unsafe float DotReference(GgmlType type, ReadOnlySpan<byte> row, Q8Activation x)
    {
        CheckIntegerRow(type, row.Length, x);
        fixed (byte* w = row)
        fixed (sbyte* q = x.Q32)
        fixed (float* d = x.Scale32)
        {
            int nb = x.Length / GgmlTypeInfo.BlockSize(type);
            return type switch
            {
                GgmlType.Q8_0 => IntegerDot.Q8_0Reference(w, q, d, nb),
                GgmlType.Q4_0 => IntegerDot.Q4_0Reference(w, q, d, nb),
                GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1 => IntegerDot.SmallReference(type, w, x, 0, nb),
                GgmlType.Q4_K => IntegerDot.Q4_KReference(w, x, 0, nb),
                GgmlType.Q5_K => IntegerDot.Q5_KReference(w, x, 0, nb),
                _ => IntegerDot.Q6_KReference(w, x, 0, nb),
            };
        }
    }

    private static void CheckIntegerRow(GgmlType type, int rowBytes, Q8Activation x)
    {
        if (!HasIntegerPath(type))
            throw new ArgumentException($"{type} has no integer kernel; use the float overload.", nameof(type));
        if (GgmlTypeInfo.BlockSize(type) == 256 ? !x.Has256 : !x.Has32)
            throw new ArgumentException($"a {type} row needs an activation whose length ({x.Length}) is a multiple of {GgmlTypeInfo.BlockSize(type)}.", nameof(x));
        if (rowBytes != GgmlTypeInfo.RowBytes(type, x.Length))
            throw new ArgumentException($"a {type} row of {x.Length} values takes {GgmlTypeInfo.RowBytes(type, x.Length)} bytes, got {rowBytes}.", nameof(x));
    }

    private static unsafe float RowDot(GgmlType type, byte* w, Q8Activation x)
    {
        int nb = x.Length / GgmlTypeInfo.BlockSize(type);
        if (type is GgmlType.Q8_0 or GgmlType.Q4_0)
        {
            fixed (sbyte* q = x.Q32)
            fixed (float* d = x.Scale32)
            fixed (int* s = x.Sum32)
                return type == GgmlType.Q8_0 ? IntegerDot.Q8_0(w, q, d, nb) : IntegerDot.Q4_0(w, q, d, s, nb);
        }
        return type switch
        {
            GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1 => IntegerDot.Small(type, w, x, 0, nb),
            GgmlType.Q4_K => IntegerDot.Q4_K(w, x, 0, nb),
            GgmlType.Q5_K => IntegerDot.Q5_K(w, x, 0, nb),
            _ => IntegerDot.Q6_K(w, x, 0, nb),
        };
    }

    /// <summary>
    /// y = W x for a row-major matrix of <paramref name="rows"/> rows of <paramref name="cols"/> values in
    /// <paramref name="type"/> (a GGUF tensor with ne0 = cols, ne1 = rows). Types with an integer kernel
    /// (<see cref="HasIntegerPath"/>) quantize x to int8 once (into a per-thread buffer) and take it; the
    /// others dequantize block by block. w: [rows, cols] in type; x: [cols]; y: [rows]
    /// </summary>
    public static unsafe void MatVec(GgmlType type, ReadOnlySpan<byte> w, int rows, int cols, ReadOnlySpan<float> x, Span<float> y)
    {
        if (!GgmlQuant.IsSupported(type)) throw GgmlQuant.Unsupported(type);
        CheckMatrix(type, w.Length, rows, cols, x.Length, y.Length);
        fixed (byte* wp = w)
        fixed (float* xp = x)
        fixed (float* yp = y)
            MatVec(type, wp, rows, cols, xp, yp);
    }

    /// <summary>
    /// The entry every caller takes (WeightMatrix reads mapped files through it): y = W x on raw memory, shapes
    /// already checked (cols a multiple of the block size). w: [rows, cols] in type; x: [cols]; y: [rows]
    /// </summary>
    internal static unsafe void MatVec(GgmlType type, byte* w, int rows, int cols, float* x, float* y)
    {
        if (HasIntegerPath(type))
        {
            MatVecMany(type, [(nint)w], [rows], cols, x, [(nint)y]);
            return;
        }
        long rb = GgmlTypeInfo.RowBytes(type, cols);
        nint wAddr = (nint)w, xAddr = (nint)x, yAddr = (nint)y;
        KernelThreads.ParallelFor(rows, MinRows(cols), (start, end) =>
        {
            var xs = new ReadOnlySpan<float>((float*)xAddr, cols);
            for (int r = start; r < end; r++)
                ((float*)yAddr)[r] = Dot(type, new ReadOnlySpan<byte>((byte*)wAddr + r * rb, (int)rb), xs);
        });
    }

    /// <summary>y = W x with x already quantized (reuse one activation for several matrices). w: [rows, cols]; y: [rows]</summary>
    public static unsafe void MatVec(GgmlType type, ReadOnlySpan<byte> w, int rows, int cols, Q8Activation x, Span<float> y)
    {
        ArgumentNullException.ThrowIfNull(x);
        int rb = CheckMatrix(type, w.Length, rows, cols, x.Length, y.Length);
        CheckIntegerRow(type, rb, x);
        fixed (byte* wp = w)
        fixed (float* yp = y)
            MatVec(type, wp, rows, cols, x, yp);
    }

    /// <summary>
    /// Several matrices of one integer-kernel type that read the same x (q, k, v; gate, up): x is quantized once,
    /// and all their rows share one parallel region. w[i]: [rows[i], cols]; x: [cols]; y[i]: [rows[i]]
    /// </summary>
    internal static unsafe void MatVecMany(GgmlType type, ReadOnlySpan<nint> w, ReadOnlySpan<int> rows, int cols, float* x, ReadOnlySpan<nint> y)
    {
        if (!HasIntegerPath(type)) throw new ArgumentException($"{type} has no integer kernel.", nameof(type));
        var act = Q8Activation.QuantizeForThread(x, cols, with256: GgmlTypeInfo.BlockSize(type) == 256);
        RowGroups(type, w, rows, cols, [act], 1, y, null);
    }

    /// <summary>
    /// MatVecMany for m vectors decoding together (batched decode, m small): each vector quantized once, and every
    /// weight row read from memory once for all of them (a few rows at a time go through every vector while they sit
    /// in L1). Each output is what the one-vector call gives, bit for bit. x: [m, cols] rows ldx apart; y[i]: m rows
    /// of rows[i] outputs, ldy[i] apart.
    /// </summary>
    internal static unsafe void MatVecBatch(GgmlType type, ReadOnlySpan<nint> w, ReadOnlySpan<int> rows, int cols, float* x, int ldx, int m, ReadOnlySpan<nint> y, ReadOnlySpan<int> ldy)
    {
        if (!HasIntegerPath(type)) throw new ArgumentException($"{type} has no integer kernel.", nameof(type));
        var acts = Q8Activation.QuantizeBatchForThread(x, ldx, m, cols, with256: GgmlTypeInfo.BlockSize(type) == 256);
        RowGroups(type, w, rows, cols, acts, m, y, ldy.ToArray());
    }

    /// <summary>Rows of one matrix handed to the row kernels at a time for each vector of a batch (about 4 KiB of Q4_K at 768 wide).</summary>
    private const int BatchRows = 8;

    // The rows of every matrix in groups of four, one parallel region, guided claims (long contiguous runs first, so
    // each thread streams its weights; small pieces at the end). With several vectors a claimed range goes BatchRows
    // rows at a time through each vector in turn. Each row is one IntegerDot call (KernelRows).
    private static unsafe void RowGroups(GgmlType type, ReadOnlySpan<nint> w, ReadOnlySpan<int> rows, int cols, Q8Activation[] acts, int m, ReadOnlySpan<nint> y, int[]? ldy)
    {
        int nb = cols / GgmlTypeInfo.BlockSize(type);
        long rowBytes = GgmlTypeInfo.RowBytes(type, cols), work = 0;
        foreach (int r in rows) work += (long)r * cols * m;
        nint[] wa = w.ToArray(), ya = y.ToArray();
        WorkerPool.RowGroups(rows, work, KernelThreads.Count, (i, r0, r1) =>
        {
            if (m == 1)
            {
                KernelRows(type, acts[0], (byte*)wa[i], rowBytes, r0, r1, (float*)ya[i], nb);
                return;
            }
            for (int c0 = r0; c0 < r1; c0 += BatchRows)
            {
                int c1 = Math.Min(r1, c0 + BatchRows);
                for (int v = 0; v < m; v++) KernelRows(type, acts[v], (byte*)wa[i], rowBytes, c0, c1, (float*)ya[i] + (long)v * ldy![i], nb);
            }
        });
    }

    // Rows [r0, r1) of w against one quantized activation into y[r0..r1): Q8_0, Q4_0, Q4_K, Q5_K and Q6_K (the types of
    // llama.cpp's Q8_0, Q4_0, Q4_K_M and Q5_K_M files) on raw pointers, the others through RowDot.
    private static unsafe void KernelRows(GgmlType type, Q8Activation act, byte* w, long rowBytes, int r0, int r1, float* yr, int nb)
    {
        bool vector = IntegerDot.Vectorized, avx512 = IntegerDot.Avx512Q4;
        fixed (sbyte* q = act.Q32)
        fixed (float* d = act.Scale32)
        fixed (int* s = act.Sum32)
        fixed (sbyte* q256 = act.Q256)
        fixed (float* d256 = act.Scale256)
        fixed (short* s16 = act.Sum16)
        fixed (float* table = IntegerDot.Halves)
        {
            byte* wr = w + r0 * rowBytes;
            switch (type)
            {
                case GgmlType.Q8_0:
                    for (int r = r0; r < r1; r++, wr += rowBytes) yr[r] = IntegerDot.Q8_0(wr, q, d, nb);
                    break;
                case GgmlType.Q4_0 when avx512:
                    fixed (float* dx4 = act.Dx4)
                    fixed (int* corr4 = act.Corr4)
                    {
                        for (int r = r0; r < r1; r++, wr += rowBytes) yr[r] = IntegerDot.Q4_0Avx512(wr, q, dx4, corr4, d, s, nb);
                    }
                    break;
                case GgmlType.Q4_0:
                    for (int r = r0; r < r1; r++, wr += rowBytes) yr[r] = IntegerDot.Q4_0(wr, q, d, s, nb);
                    break;
                case GgmlType.Q4_K when vector:
                    for (int r = r0; r < r1; r++, wr += rowBytes) yr[r] = IntegerDot.Q4_KRow<Avx2U8S8>(wr, q256, s16, d256, nb, table);
                    break;
                case GgmlType.Q5_K when vector:
                    for (int r = r0; r < r1; r++, wr += rowBytes) yr[r] = IntegerDot.Q5_KRow<Avx2U8S8>(wr, q256, s16, d256, nb, table);
                    break;
                case GgmlType.Q6_K when vector:
                    for (int r = r0; r < r1; r++, wr += rowBytes) yr[r] = IntegerDot.Q6_KRow<Avx2U8S8>(wr, q256, s16, d256, nb, table);
                    break;
                default:
                    for (int r = r0; r < r1; r++, wr += rowBytes) yr[r] = RowDot(type, wr, act);
                    break;
            }
        }
    }

    // Any integer-kernel type against a quantized x.
    private static unsafe void MatVec(GgmlType type, byte* w, int rows, int cols, Q8Activation x, float* y) =>
        RowGroups(type, [(nint)w], [rows], cols, [x], 1, [(nint)y], null);

    private static int MinRows(int cols) => Math.Max(1, 32768 / Math.Max(1, cols));

    private static int CheckMatrix(GgmlType type, int bytes, int rows, int cols, int xLength, int yLength)
    {
        long rowBytes = GgmlTypeInfo.RowBytes(type, cols);
        if (bytes != rowBytes * rows) throw new ArgumentException($"a {type} [{rows}, {cols}] matrix takes {rowBytes * rows} bytes, got {bytes}.");
        if (xLength != cols || yLength != rows) throw new ArgumentException($"x must hold {cols} values and y {rows} (got {xLength} and {yLength}).");
        return (int)rowBytes;
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
