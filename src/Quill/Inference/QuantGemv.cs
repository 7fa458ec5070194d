// Matrix-vector products on Q8_0 and Q4_0 weights for one-token decode, read in place from the model file. The
// activation is quantized once per product to int8 blocks of 32 with a float scale (and the block's integer sum,
// for Q4_0's -8 offset); each weight block then costs one int8 dot product: AVX-VNNI vpdpbusd on 256 bits where
// the CPU has it (|w| as the unsigned operand and x given w's sign for Q8_0; Q4_0's nibbles are already
// unsigned), else a scalar loop. Block scales (f16) are read through a 64 K-entry table. Rows run one after
// another (one sequential stream of weights: interleaving four rows measured 4x slower from DRAM here), in
// groups of four split over KernelThreads.
// This is the inference branch's own kernel: Quantization.QuantDot.MatVec (the fmt branch) is general but
// converts scales and dispatches per row; the two should be reconciled once both settle.
// Does not handle: other block types (WeightMatrix falls back to QuantDot for them), batches larger than one
// vector per call.
// Glossary: R rows, K row length, nb = K / 32 blocks, d = scale.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Quill.Formats.Gguf;
using Quill.Kernels;
using Quill.Quantization;

namespace Quill.Inference;

/// <summary>Q8_0 / Q4_0 weight x float vector products (decode).</summary>
public static unsafe class QuantGemv
{
    private static readonly float[] HalfTable = BuildHalfTable();

    /// <summary>True for the weight types this kernel runs.</summary>
    public static bool Supports(GgmlType type) => type is GgmlType.Q8_0 or GgmlType.Q4_0;

    /// <summary>y = W x. w: [rows, cols] in type; x: [cols]; y: [rows]. useVector false pins the scalar path (tests).</summary>
    public static void Multiply(GgmlType type, ReadOnlySpan<byte> w, int rows, int cols, ReadOnlySpan<float> x, Span<float> y, bool useVector = true)
    {
        if (!Supports(type)) throw new ArgumentException($"{type} is not Q8_0 or Q4_0.", nameof(type));
        if (cols % 32 != 0) throw new ArgumentException($"row length {cols} is not a multiple of 32.", nameof(cols));
        long rowBytes = GgmlTypeInfo.RowBytes(type, cols);
        if (w.Length < rowBytes * rows || x.Length < cols || y.Length < rows) throw new ArgumentException("w, x or y is too short for the shape.");
        fixed (byte* pw = w)
        fixed (float* px = x, py = y)
            Run(type, pw, rows, cols, px, py, useVector && AvxVnni.IsSupported);
    }

    internal static void Run(GgmlType type, byte* w, int rows, int cols, float* x, float* y, bool vnni)
        => RunMany(type, [(nint)w], [rows], cols, x, [(nint)y], vnni);

    /// <summary>
    /// Several matrices of one type with the same input (q, k, v; gate, up): the activation is quantized once and
    /// all rows share one parallel region. w[i]: [rows[i], cols]; y[i]: [rows[i]].
    /// </summary>
    internal static void RunMany(GgmlType type, ReadOnlySpan<nint> w, ReadOnlySpan<int> rows, int cols, float* x, ReadOnlySpan<nint> y, bool vnni)
    {
        int nb = cols / 32, count = w.Length;
        var act = Activation.Rent(nb);
        Quantize(x, nb, act, Avx2.IsSupported);
        long rowBytes = GgmlTypeInfo.RowBytes(type, cols);
        var groupStart = new int[count + 1];
        long work = 0;
        for (int i = 0; i < count; i++)
        {
            groupStart[i + 1] = groupStart[i] + (rows[i] + 3) / 4;
            work += (long)rows[i] * cols;
        }
        nint[] wa = w.ToArray(), ya = y.ToArray();
        int[] ra = rows.ToArray();
        void Body(int g0, int g1)
        {
            fixed (sbyte* q = act.Q)
            fixed (float* d = act.D)
            fixed (int* s = act.Sum)
            {
                for (int m = 0; m < count; m++)
                {
                    int a = Math.Max(g0, groupStart[m]), b = Math.Min(g1, groupStart[m + 1]);
                    if (a >= b) continue;
                    int r0 = (a - groupStart[m]) * 4, r1 = Math.Min(ra[m], (b - groupStart[m]) * 4);
                    for (int r = r0; r < r1; r += 4)
                    {
                        int n = Math.Min(4, r1 - r);
                        byte* wr = (byte*)wa[m] + r * rowBytes;
                        float* yr = (float*)ya[m] + r;
                        if (type == GgmlType.Q8_0)
                        {
                            for (int i = 0; i < n; i++) yr[i] = vnni ? Q8One(wr + i * rowBytes, q, d, nb) : Q8Scalar(wr + i * rowBytes, q, d, nb);
                        }
                        else
                        {
                            for (int i = 0; i < n; i++) yr[i] = vnni ? Q4One(wr + i * rowBytes, q, d, s, nb) : Q4Scalar(wr + i * rowBytes, q, d, nb);
                        }
                    }
                }
            }
        }
        int groups = groupStart[count];
        if (KernelThreads.Count <= 1 || work < Gemv.ParallelMinWork) Body(0, groups);
        else WorkerPool.Guided(groups, 1, KernelThreads.Count, Body);
    }

    /// <summary>The int8 blocks, scales and block sums x is quantized to (tests hold the vector path to the scalar one).</summary>
    internal static (sbyte[] Q, float[] D, int[] Sum) QuantizeActivation(ReadOnlySpan<float> x, bool vector)
    {
        int nb = x.Length / 32;
        var a = new Activation { Q = new sbyte[nb * 32], D = new float[nb], Sum = new int[nb] };
        fixed (float* px = x) Quantize(px, nb, a, vector && Avx2.IsSupported);
        return (a.Q, a.D, a.Sum);
    }

    /// <summary>Per-thread activation buffers: q [nb * 32] int8, d [nb] scales, sum [nb] integer sums.</summary>
    private sealed class Activation
    {
        [ThreadStatic] private static Activation? cached;

        public sbyte[] Q = [];
        public float[] D = [];
        public int[] Sum = [];

        public static Activation Rent(int nb)
        {
            var a = cached ??= new Activation();
            if (a.D.Length < nb)
            {
                a.Q = GC.AllocateArray<sbyte>(nb * 32, pinned: true);
                a.D = new float[nb];
                a.Sum = new int[nb];
            }
            return a;
        }
    }

    // x [nb * 32] -> q (round(x / d), d = max|x| / 127 per block), d, and the block sums of q.
    private static void Quantize(float* x, int nb, Activation a, bool vector)
    {
        for (int b = 0; b < nb; b++)
        {
            float* xb = x + b * 32;
            float amax = 0;
            if (Vector256.IsHardwareAccelerated)
            {
                var m = Vector256.Abs(Vector256.Load(xb));
                for (int i = 8; i < 32; i += 8) m = Vector256.Max(m, Vector256.Abs(Vector256.Load(xb + i)));
                amax = Math.Max(Math.Max(Math.Max(m[0], m[1]), Math.Max(m[2], m[3])), Math.Max(Math.Max(m[4], m[5]), Math.Max(m[6], m[7])));
            }
            else
            {
                for (int i = 0; i < 32; i++) amax = Math.Max(amax, Math.Abs(xb[i]));
            }
            float d = amax / 127f, inv = d > 0 ? 1f / d : 0f;
            a.D[b] = d;
            if (vector)
            {
                a.Sum[b] = QuantizeBlock(xb, inv, a.Q, b * 32);
                continue;
            }
            int sum = 0;
            for (int i = 0; i < 32; i++)
            {
                int q = (int)MathF.Round(xb[i] * inv);
                a.Q[b * 32 + i] = (sbyte)q;
                sum += q;
            }
            a.Sum[b] = sum;
        }
    }

    // 32 floats -> round(x * inv) as int8 at q[at..at+32) (rounding to even, as MathF.Round), returns their sum. The
    // two packs interleave 128-bit lanes; the dword permutation puts the bytes back in order.
    private static int QuantizeBlock(float* x, float inv, sbyte[] q, int at)
    {
        var s = Vector256.Create(inv);
        var i0 = Avx.ConvertToVector256Int32(Avx.LoadVector256(x) * s);
        var i1 = Avx.ConvertToVector256Int32(Avx.LoadVector256(x + 8) * s);
        var i2 = Avx.ConvertToVector256Int32(Avx.LoadVector256(x + 16) * s);
        var i3 = Avx.ConvertToVector256Int32(Avx.LoadVector256(x + 24) * s);
        var bytes = Avx2.PackSignedSaturate(Avx2.PackSignedSaturate(i0, i1), Avx2.PackSignedSaturate(i2, i3));
        var ordered = Avx2.PermuteVar8x32(bytes.AsInt32(), Vector256.Create(0, 4, 1, 5, 2, 6, 3, 7)).AsSByte();
        fixed (sbyte* p = &q[at]) ordered.Store(p);
        return Vector256.Sum((i0 + i1) + (i2 + i3));
    }

    // One Q8_0 row against the activation, two blocks per step: per block |w| . (x sign w) with vpdpbusd. Rows go one
    // after another, so the weights are read as one sequential stream (four interleaved rows stalled the prefetcher).
    /// <summary>
    /// How far ahead of the row being read the kernels prefetch: from memory this measured 6-12% faster (the
    /// hardware prefetcher alone runs too little ahead of a kernel this busy), from cache about 7% slower; decode
    /// reads weights from memory.
    /// </summary>
    private const int PrefetchBytes = 4096;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Q8One(byte* w, sbyte* q, float* d, int nb)
    {
        var a0 = Vector256<float>.Zero;
        var a1 = Vector256<float>.Zero;
        int b = 0;
        fixed (float* table = HalfTable)
        {
            for (; b + 2 <= nb; b += 2)
            {
                Sse.Prefetch0(w + b * 34 + PrefetchBytes);
                a0 = Q8Block(w + b * 34, Avx.LoadVector256(q + b * 32), d[b], table, a0);
                a1 = Q8Block(w + (b + 1) * 34, Avx.LoadVector256(q + (b + 1) * 32), d[b + 1], table, a1);
            }
            if (b < nb) a0 = Q8Block(w + b * 34, Avx.LoadVector256(q + b * 32), d[b], table, a0);
        }
        return Vector256.Sum(a0 + a1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Q8Block(byte* block, Vector256<sbyte> xv, float dx, float* table, Vector256<float> acc)
    {
        var wv = Avx.LoadVector256((sbyte*)(block + 2));
        var p = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Avx2.Abs(wv), Avx2.Sign(xv, wv));
        return Fma.MultiplyAdd(Avx.ConvertToVector256Single(p), Vector256.Create(table[*(ushort*)block] * dx), acc);
    }

    // One Q4_0 row: nibbles (unsigned, 0..15) . x with vpdpbusd, minus 8 * sum(x) per block; two blocks per step.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Q4One(byte* w, sbyte* q, float* d, int* sums, int nb)
    {
        var a0 = Vector256<float>.Zero;
        var a1 = Vector256<float>.Zero;
        var mask = Vector128.Create((byte)0x0F);
        int b = 0;
        fixed (float* table = HalfTable)
        {
            for (; b + 2 <= nb; b += 2)
            {
                Sse.Prefetch0(w + b * 18 + PrefetchBytes);
                a0 = Q4Block(w + b * 18, Avx.LoadVector256(q + b * 32), d[b], 8 * sums[b], mask, table, a0);
                a1 = Q4Block(w + (b + 1) * 18, Avx.LoadVector256(q + (b + 1) * 32), d[b + 1], 8 * sums[b + 1], mask, table, a1);
            }
            if (b < nb) a0 = Q4Block(w + b * 18, Avx.LoadVector256(q + b * 32), d[b], 8 * sums[b], mask, table, a0);
        }
        return Vector256.Sum(a0 + a1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Q4Block(byte* block, Vector256<sbyte> xv, float dx, int corr, Vector128<byte> mask, float* table, Vector256<float> acc)
    {
        var raw = Sse2.LoadVector128(block + 2);
        var lo = raw & mask;
        var hi = Sse2.ShiftRightLogical(raw.AsUInt16(), 4).AsByte() & mask;
        var nib = Vector256.Create(lo, hi);
        // subtract the offset from lane 0 before the float conversion: sum over lanes = dot - 8 * sum(x)
        var p = AvxVnni.MultiplyWideningAndAdd(Vector256.CreateScalar(-corr), nib, xv);
        return Fma.MultiplyAdd(Avx.ConvertToVector256Single(p), Vector256.Create(table[*(ushort*)block] * dx), acc);
    }

    /// <summary>Scalar twin for one Q8_0 row (also the tail and non-VNNI path).</summary>
    internal static float Q8Scalar(byte* w, sbyte* q, float* d, int nb)
    {
        float sum = 0;
        for (int b = 0; b < nb; b++)
        {
            sbyte* wb = (sbyte*)(w + b * 34 + 2);
            int dot = 0;
            for (int i = 0; i < 32; i++) dot += wb[i] * q[b * 32 + i];
            sum += dot * (HalfTable[*(ushort*)(w + b * 34)] * d[b]);
        }
        return sum;
    }

    /// <summary>Scalar twin for one Q4_0 row: value = (nibble - 8) * d; low nibbles are values 0..15, high 16..31.</summary>
    internal static float Q4Scalar(byte* w, sbyte* q, float* d, int nb)
    {
        float sum = 0;
        for (int b = 0; b < nb; b++)
        {
            byte* wb = w + b * 18 + 2;
            int dot = 0;
            for (int i = 0; i < 16; i++)
            {
                dot += ((wb[i] & 0x0F) - 8) * q[b * 32 + i];
                dot += ((wb[i] >> 4) - 8) * q[b * 32 + 16 + i];
            }
            sum += dot * (HalfTable[*(ushort*)(w + b * 18)] * d[b]);
        }
        return sum;
    }

    private static float[] BuildHalfTable()
    {
        var t = new float[65536];
        for (int i = 0; i < t.Length; i++) t[i] = Fp16.ToSingle((ushort)i);
        return t;
    }
}
