// Single-precision matrix-vector products for one-token decode: y = W x with W row-major [N, K] (a PyTorch
// [out, in] weight), and the few-vector form Y = X W^T for a handful of sequences decoding together. Decode reads
// every weight once per token, so these kernels are written to stream W at memory speed: one vector against rows
// longer than ShortRow reads one row at a time (each thread's range one sequential stream, which the hardware
// prefetcher follows best), shorter rows four at a time against the same x chunk (four independent FMA chains, the
// next groups prefetched by hand); every form gives a row the same single FMA chain, so the same float. Vector512
// with Vector256 and scalar fallbacks, rows split over threads in contiguous ranges. The few-vector form reads each
// group of four rows once and applies it to every vector while it sits in L1, so weights cross the memory bus once
// per step whatever the batch. F16 / BF16 rows (RunHalf) are widened in registers. GemvReference is the plain twin
// the tests hold these to.
// Does not handle: column-major weights, other element types (see WeightMatrix), or large batches (use Gemm).
// Glossary: N output rows, K shared (input) length, M vectors.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Quill.Kernels;

namespace Quill.Kernels;

/// <summary>Which instruction width Gemv runs: Auto in production; tests pin one to compare them.</summary>
internal enum GemvWidth
{
    Auto,
    Vector512,
    Vector256,
    Vector128,
    Scalar,
}

/// <summary>Matrix-vector products for decoding (fp32). Its plain twin is <see cref="GemvReference"/>.</summary>
public static unsafe class Gemv
{
    /// <summary>y = W x. w: [n, k] row-major; x: [k]; y: [n]. maxThreads 0 = <see cref="KernelThreads.Count"/>.</summary>
    public static void Multiply(ReadOnlySpan<float> w, int n, int k, ReadOnlySpan<float> x, Span<float> y, int maxThreads = 0)
        => MultiplyBatch(w, n, k, x, 1, y, maxThreads);

    /// <summary>
    /// Y = X W^T for m vectors: x: [m, k]; y: [m, n]; w: [n, k]. Each weight row is read from memory once for
    /// all m vectors.
    /// </summary>
    public static void MultiplyBatch(ReadOnlySpan<float> w, int n, int k, ReadOnlySpan<float> x, int m, Span<float> y, int maxThreads = 0)
    {
        Check(w.Length, n, k, x.Length, m, y.Length);
        if (n == 0 || m == 0) return;
        fixed (float* pw = w, px = x, py = y)
            Run(GemvWidth.Auto, pw, n, k, px, m, py, n, maxThreads);
    }

    /// <summary>Core entry on raw pointers; y rows are ldy apart (so several matrices can write one fused buffer).</summary>
    internal static void Run(GemvWidth width, float* w, int n, int k, float* x, int m, float* y, int ldy, int maxThreads)
    {
        if (width == GemvWidth.Auto) width = Best;
        int threads = maxThreads == 0 ? KernelThreads.Count : Math.Min(maxThreads, KernelThreads.Count);
        long work = (long)n * k * m;
        if (threads <= 1 || work < WorkerPool.MatVecMinWork || n < 8)
        {
            Rows(width, w, k, x, m, y, ldy, 0, n);
            return;
        }
        nint wa = (nint)w, xa = (nint)x, ya = (nint)y;
        // ranges in whole groups of 4 rows so every thread runs the 4-row kernel
        int groups = (n + 3) / 4;
        WorkerPool.Guided(groups, 1, threads, (g0, g1) =>
            Rows(width, (float*)wa, k, (float*)xa, m, (float*)ya, ldy, g0 * 4, Math.Min(n, g1 * 4)));
    }

    /// <summary>
    /// Several products of the same x in one parallel region (q, k, v; gate, up): matrix i is w[i] [n[i], k] and
    /// writes y[i] with rows ldy[i] apart. The rows of all matrices are split across threads as one range.
    /// </summary>
    internal static void RunMany(ReadOnlySpan<nint> w, ReadOnlySpan<int> n, int k, float* x, int m, ReadOnlySpan<nint> y, ReadOnlySpan<int> ldy)
    {
        long work = 0;
        foreach (int rows in n) work += (long)rows * k * m;
        var wa = w.ToArray();
        var ya = y.ToArray();
        var la = ldy.ToArray();
        nint xa = (nint)x;
        var width = Best;
        WorkerPool.RowGroups(n, work, KernelThreads.Count, (i, r0, r1) => Rows(width, (float*)wa[i], k, (float*)xa, m, (float*)ya[i], la[i], r0, r1));
    }

    /// <summary>
    /// y = W x for F16 or BF16 weights (bits [n, k]). Where vectors are accelerated (512, 256 or 128 bits: AVX-512,
    /// AVX2, NEON) each row is one sequential stream widened in registers (see HalfRow); the scalar path widens
    /// each group of four rows to floats in a per-thread buffer and runs the fp32 four-row kernel. Both give what the
    /// fp32 kernel of the same width gives on the widened rows, bit for bit.
    /// finite: the caller knows no F16 value is an infinity or NaN (WeightMatrix scans once), which allows the
    /// cheaper F16 widening. x: [k]; y: [n].
    /// </summary>
    internal static void RunHalf(bool bf16, ushort* w, int n, int k, float* x, float* y, bool finite = false) => RunHalf(bf16, w, n, k, x, y, Best, finite);

    /// <summary>RunHalf at a chosen width (tests pin each one).</summary>
    internal static void RunHalf(bool bf16, ushort* w, int n, int k, float* x, float* y, GemvWidth width, bool finite = false) =>
        RunHalfBatch(bf16, w, n, k, x, k, 1, y, n, width, finite);

    /// <summary>
    /// RunHalf for m vectors (batched decode): x [m, k] rows ldx apart, y [m, n] rows ldy apart. Where vectors are
    /// accelerated each weight row is read once for all m (the row sits in L1 while every vector takes it); each output
    /// is what the one-vector call gives, bit for bit.
    /// </summary>
    internal static void RunHalfBatch(bool bf16, ushort* w, int n, int k, float* x, int ldx, int m, float* y, int ldy, GemvWidth width, bool finite)
    {
        width = width == GemvWidth.Auto ? Best : width;
        if (width is not GemvWidth.Scalar)
        {
            if (bf16) HalfRows<Bf16Bits>(w, n, k, x, ldx, x, ldx, m, y, ldy, width);
            else if (finite && ScaleForHalf(x, ldx, m, k) is float[] scaled)
            {
                fixed (float* xs = scaled) HalfRows<F16Scaled>(w, n, k, xs, k, x, ldx, m, y, ldy, width);
            }
            else HalfRows<F16Bits>(w, n, k, x, ldx, x, ldx, m, y, ldy, width);
            return;
        }
        for (int v = 0; v < m; v++) RunHalfBuffered(bf16, w, n, k, x + (long)v * ldx, y + (long)v * ldy, width);
    }

    // The scalar path: each group of four rows widened into a per-thread buffer, then the fp32 four-row kernel.
    private static void RunHalfBuffered(bool bf16, ushort* w, int n, int k, float* x, float* y, GemvWidth width)
    {
        nint wa = (nint)w, xa = (nint)x, ya = (nint)y;
        void Body(int g0, int g1)
        {
            var buf = HalfBuffer.Get(4 * k);
            fixed (float* b = buf)
            {
                for (int g = g0; g < g1; g++)
                {
                    int r = g * 4, rows = Math.Min(4, n - r);
                    var src = new ReadOnlySpan<ushort>((ushort*)wa + (long)r * k, rows * k);
                    var dst = new Span<float>(b, rows * k);
                    if (bf16) Bf16.ToSingle(src, dst);
                    else Fp16.ToSingle(src, dst);
                    Rows(width, b, k, (float*)xa, 1, (float*)ya + r, 1, 0, rows);
                }
            }
        }
        int groups = (n + 3) / 4;
        if (KernelThreads.Count <= 1 || (long)n * k < WorkerPool.MatVecMinWork) Body(0, groups);
        else WorkerPool.Guided(groups, 1, KernelThreads.Count, Body);
    }

    // Rows of half bits through HalfRow, split over threads in whole groups of four rows (contiguous ranges, so each
    // thread reads one sequential stream). xv: what the vector loop multiplies by (x, or x scaled for F16Scaled); x:
    // the tail's.
    private static void HalfRows<TBits>(ushort* w, int n, int k, float* xv, int ldxv, float* x, int ldx, int m, float* y, int ldy, GemvWidth width)
        where TBits : struct, IHalfBits<Vector512<float>>, IHalfBits<Vector256<float>>, IHalfBits<Vector128<float>>
    {
        nint wa = (nint)w, xva = (nint)xv, xa = (nint)x, ya = (nint)y;
        void Body(int g0, int g1)
        {
            for (int r = g0 * 4, end = Math.Min(n, g1 * 4); r < end; r++)
            {
                ushort* row = (ushort*)wa + (long)r * k;
                for (int v = 0; v < m; v++)
                {
                    float* xvv = (float*)xva + (long)v * ldxv, xt = (float*)xa + (long)v * ldx;
                    ((float*)ya)[(long)v * ldy + r] = width switch
                    {
                        GemvWidth.Vector512 => HalfRow<Vec512, Vector512<float>, TBits>(row, k, xvv, xt),
                        GemvWidth.Vector256 => HalfRow<Vec256, Vector256<float>, TBits>(row, k, xvv, xt),
                        _ => HalfRow<Vec128, Vector128<float>, TBits>(row, k, xvv, xt),
                    };
                }
            }
        }
        int groups = (n + 3) / 4;
        if (KernelThreads.Count <= 1 || (long)n * k * m < WorkerPool.MatVecMinWork) Body(0, groups);
        else WorkerPool.Guided(groups, 1, KernelThreads.Count, Body);
    }

    // One row of half bits dot x: a single FMA chain of TOps.Lanes lanes, the sum across, then the scalar tail on the
    // exact widening: the order of the fp32 four-row kernel of that width for that row (Four512, Four<Vec256>,
    // Four<Vec128>), so it equals widening the row to floats first, bit for bit. One row at a time (not four
    // interleaved) keeps each thread's reads one sequential stream, which the hardware prefetcher follows: four
    // interleaved 24-line rows of F16 ran at 12-15 GB/s on 2 threads here, one stream at 23-32.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float HalfRow<TOps, TV, TBits>(ushort* w, int k, float* xv, float* x)
        where TOps : struct, IAttentionVector<TV> where TV : struct where TBits : struct, IHalfBits<TV>
    {
        var a = TOps.Zero;
        int i = 0;
        for (; i + TOps.Lanes <= k; i += TOps.Lanes) a = TOps.Fma(TBits.Widen(w + i), TOps.Load(xv + i), a);
        float s = TOps.SumAcross(a);
        for (; i < k; i++) s += TBits.ToSingle(w[i]) * x[i];
        return s;
    }

    /// <summary>How a row of 16-bit floats widens to float32 vectors of type TV inside HalfRow.</summary>
    private interface IHalfBits<TV> where TV : struct
    {
        static abstract TV Widen(ushort* p);
        static abstract float ToSingle(ushort h);
    }

    // BF16: the bits are a float's top half.
    private readonly struct Bf16Bits : IHalfBits<Vector512<float>>, IHalfBits<Vector256<float>>, IHalfBits<Vector128<float>>
    {
        static Vector512<float> IHalfBits<Vector512<float>>.Widen(ushort* p) => (Vector512.WidenLower(Vector256.Load(p).ToVector512Unsafe()) << 16).AsSingle();
        static Vector256<float> IHalfBits<Vector256<float>>.Widen(ushort* p) => (Vector256.WidenLower(Vector128.Load(p).ToVector256Unsafe()) << 16).AsSingle();
        static Vector128<float> IHalfBits<Vector128<float>>.Widen(ushort* p) => (Vector128.WidenLower(Vector64.Load(p).ToVector128Unsafe()) << 16).AsSingle();
        public static float ToSingle(ushort h) => Bf16.ToSingle(h);
    }

    // F16, any bit pattern, exactly (Fp16's vector widening).
    private readonly struct F16Bits : IHalfBits<Vector512<float>>, IHalfBits<Vector256<float>>, IHalfBits<Vector128<float>>
    {
        static Vector512<float> IHalfBits<Vector512<float>>.Widen(ushort* p) => Fp16.Widen512Fast(Vector256.Load(p));
        static Vector256<float> IHalfBits<Vector256<float>>.Widen(ushort* p) => Fp16.Widen256Fast(Vector128.Load(p));
        static Vector128<float> IHalfBits<Vector128<float>>.Widen(ushort* p) => Fp16.Widen128Fast(Vector64.Load(p));
        public static float ToSingle(ushort h) => Fp16.ToSingle(h);
    }

    // F16 without infinities or NaNs, against x scaled by 2^112: moving the half's sign, exponent and mantissa into a
    // float's bit positions (sign at 31, exponent at 23, mantissa at 13: shift the half to the top, shift right by 3
    // copying the sign, clear the three copies) gives the half's value times 2^-112 for normal and subnormal halves
    // alike, so (bits) * (x * 2^112) is the exact product w * x and the FMA rounds it as the widened path does. Three
    // operations after the load instead of Widen512Fast's eight. An infinity or NaN would come out finite, hence the
    // caller's scan; x * 2^112 is exact while |x| < 2^16 (ScaleForHalf checks).
    private readonly struct F16Scaled : IHalfBits<Vector512<float>>, IHalfBits<Vector256<float>>, IHalfBits<Vector128<float>>
    {
        private const int Mask = unchecked((int)0x8FFFE000);

        static Vector512<float> IHalfBits<Vector512<float>>.Widen(ushort* p)
        {
            var h = Vector512.WidenLower(Vector256.Load(p).ToVector512Unsafe()).AsInt32();
            return (Vector512.ShiftRightArithmetic(h << 16, 3) & Vector512.Create(Mask)).AsSingle();
        }

        static Vector256<float> IHalfBits<Vector256<float>>.Widen(ushort* p)
        {
            var h = Vector256.WidenLower(Vector128.Load(p).ToVector256Unsafe()).AsInt32();
            return (Vector256.ShiftRightArithmetic(h << 16, 3) & Vector256.Create(Mask)).AsSingle();
        }

        static Vector128<float> IHalfBits<Vector128<float>>.Widen(ushort* p)
        {
            var h = Vector128.WidenLower(Vector64.Load(p).ToVector128Unsafe()).AsInt32();
            return (Vector128.ShiftRightArithmetic(h << 16, 3) & Vector128.Create(Mask)).AsSingle();
        }

        public static float ToSingle(ushort h) => Fp16.ToSingle(h);
    }

    /// <summary>2^112: F16Scaled's factor.</summary>
    private const float TwoPow112 = 5.1922968585348276e33f;

    // The m rows of x (ldx apart) times 2^112 in a per-thread buffer [m, k], or null when some |x| >= 2^16 or x holds
    // a NaN (the product would overflow).
    private static float[]? ScaleForHalf(float* x, int ldx, int m, int k)
    {
        var buf = ScaledX.Get(m * k);
        for (int v = 0; v < m; v++)
        {
            float* xr = x + (long)v * ldx;
            for (int i = 0; i < k; i++)
            {
                float e = xr[i];
                if (!(Math.Abs(e) < 65536f)) return null;
                buf[v * k + i] = e * TwoPow112;
            }
        }
        return buf;
    }

    private static class ScaledX
    {
        [ThreadStatic] private static float[]? buffer;

        public static float[] Get(int n) => buffer != null && buffer.Length >= n ? buffer : buffer = new float[n];
    }

    private static class HalfBuffer
    {
        [ThreadStatic] private static float[]? buffer;

        public static float[] Get(int n) => buffer != null && buffer.Length >= n ? buffer : buffer = new float[n];
    }

    internal static GemvWidth Best =>
        Vector512.IsHardwareAccelerated ? GemvWidth.Vector512 : Vector256.IsHardwareAccelerated ? GemvWidth.Vector256
        : Vector128.IsHardwareAccelerated ? GemvWidth.Vector128 : GemvWidth.Scalar;

    /// <summary>Rows [r0, r1) of Y = X W^T on the calling thread.</summary>
    internal static void Rows(GemvWidth width, float* w, int k, float* x, int m, float* y, int ldy, int r0, int r1)
    {
        int r = r0;
        for (; r + 4 <= r1; r += 4)
        {
            float* w0 = w + (long)r * k;
            if (m == 1 && k > ShortRow && width is GemvWidth.Vector512 or GemvWidth.Vector256)
            {
                for (int j = 0; j < 4; j++) y[r + j] = width == GemvWidth.Vector512 ? Row<Vec512, Vector512<float>>(w0 + (long)j * k, k, x) : Row<Vec256, Vector256<float>>(w0 + (long)j * k, k, x);
                continue;
            }
            for (int v = 0; v < m; v++)
            {
                float* xv = x + (long)v * k;
                float* yv = y + (long)v * ldy + r;
                switch (width)
                {
                    case GemvWidth.Vector512 when k <= ShortRow && v == 0: Four512(w0, k, xv, yv, w0 + 8L * k); break;
                    case GemvWidth.Vector512: Four512(w0, k, xv, yv); break;
                    case GemvWidth.Vector256: Four<Vec256, Vector256<float>>(w0, k, xv, yv); break;
                    case GemvWidth.Vector128: Four<Vec128, Vector128<float>>(w0, k, xv, yv); break;
                    default: FourScalar(w0, k, xv, yv); break;
                }
            }
        }
        for (; r < r1; r++)
        {
            for (int v = 0; v < m; v++)
                y[(long)v * ldy + r] = Dot(w + (long)r * k, x + (long)v * k, k);
        }
    }

    // One row dot x with one vector only (decode): the four-row kernel's chain for that row (TOps.Lanes lanes, the sum
    // across, then the scalar tail), so the same float bit for bit; one row at a time keeps each thread's reads a
    // single sequential stream for the hardware prefetcher.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Row<TOps, TV>(float* w, int k, float* x) where TOps : struct, IAttentionVector<TV> where TV : struct
    {
        var a = TOps.Zero;
        int i = 0;
        for (; i + TOps.Lanes <= k; i += TOps.Lanes) a = TOps.Fma(TOps.Load(w + i), TOps.Load(x + i), a);
        float s = TOps.SumAcross(a);
        for (; i < k; i++) s += w[i] * x[i];
        return s;
    }

    /// <summary>
    /// Rows at most this long are too short for the hardware prefetcher (it trains per stream, and four interleaved
    /// 18-line rows end before it runs ahead): their kernel prefetches the group two groups ahead itself. Measured
    /// with stories15M's shapes (rows of 288) 9-12% faster; with rows of 768 or more 2-10% slower, so only here.
    /// Longer rows with one vector run one row at a time (Row): stories110M F32 decode 68 tokens/s against 60-61
    /// for four interleaved rows, same run; at rows of 288 one row at a time was slower (a single FMA chain's latency
    /// over 18 steps, then a horizontal sum, per row: 550-600 against 775 tokens/s).
    /// </summary>
    private const int ShortRow = 512;

    // y[0..4) = rows w[0..4) (each k long, k apart) dot x. ahead, unless null: 4 * k floats to prefetch, 256 bytes a
    // step (callers pass a constant null or not, so the inlined copy keeps only the branch it needs).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Four512(float* w, int k, float* x, float* y, float* ahead = null)
    {
        float* w1 = w + k, w2 = w1 + k, w3 = w2 + k;
        var a0 = Vector512<float>.Zero;
        var a1 = Vector512<float>.Zero;
        var a2 = Vector512<float>.Zero;
        var a3 = Vector512<float>.Zero;
        int i = 0;
        for (; i + 16 <= k; i += 16)
        {
            if (ahead != null)
            {
                float* p = ahead + 4 * i;
                Sse.Prefetch0(p);
                Sse.Prefetch0(p + 16);
                Sse.Prefetch0(p + 32);
                Sse.Prefetch0(p + 48);
            }
            var xv = Vector512.Load(x + i);
            a0 = Vector512.FusedMultiplyAdd(Vector512.Load(w + i), xv, a0);
            a1 = Vector512.FusedMultiplyAdd(Vector512.Load(w1 + i), xv, a1);
            a2 = Vector512.FusedMultiplyAdd(Vector512.Load(w2 + i), xv, a2);
            a3 = Vector512.FusedMultiplyAdd(Vector512.Load(w3 + i), xv, a3);
        }
        float s0 = Vector512.Sum(a0), s1 = Vector512.Sum(a1), s2 = Vector512.Sum(a2), s3 = Vector512.Sum(a3);
        for (; i < k; i++)
        {
            float xi = x[i];
            s0 += w[i] * xi;
            s1 += w1[i] * xi;
            s2 += w2[i] * xi;
            s3 += w3[i] * xi;
        }
        y[0] = s0;
        y[1] = s1;
        y[2] = s2;
        y[3] = s3;
    }

    /// <summary>
    /// Four rows on TV vectors of TOps.Lanes floats (Vec256: AVX2; Vec128: ARM64 NEON, the widest .NET accelerates
    /// there, or SSE), through the vector operations the attention kernels use.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Four<TOps, TV>(float* w, int k, float* x, float* y)
        where TOps : struct, IAttentionVector<TV> where TV : struct
    {
        float* w1 = w + k, w2 = w1 + k, w3 = w2 + k;
        TV a0 = TOps.Zero, a1 = TOps.Zero, a2 = TOps.Zero, a3 = TOps.Zero;
        int i = 0;
        for (; i + TOps.Lanes <= k; i += TOps.Lanes)
        {
            var xv = TOps.Load(x + i);
            a0 = TOps.Fma(TOps.Load(w + i), xv, a0);
            a1 = TOps.Fma(TOps.Load(w1 + i), xv, a1);
            a2 = TOps.Fma(TOps.Load(w2 + i), xv, a2);
            a3 = TOps.Fma(TOps.Load(w3 + i), xv, a3);
        }
        float s0 = TOps.SumAcross(a0), s1 = TOps.SumAcross(a1), s2 = TOps.SumAcross(a2), s3 = TOps.SumAcross(a3);
        for (; i < k; i++)
        {
            float xi = x[i];
            s0 += w[i] * xi;
            s1 += w1[i] * xi;
            s2 += w2[i] * xi;
            s3 += w3[i] * xi;
        }
        y[0] = s0;
        y[1] = s1;
        y[2] = s2;
        y[3] = s3;
    }

    private static void FourScalar(float* w, int k, float* x, float* y)
    {
        for (int j = 0; j < 4; j++) y[j] = Dot(w + (long)j * k, x, k);
    }

    private static float Dot(float* a, float* b, int k)
    {
        float s = 0;
        for (int i = 0; i < k; i++) s += a[i] * b[i];
        return s;
    }

    private static void Check(int wLength, int n, int k, int xLength, int m, int yLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        if (wLength < (long)n * k) throw new ArgumentException($"w holds {wLength} floats but [{n}, {k}] needs {(long)n * k}.", "w");
        if (xLength < (long)m * k) throw new ArgumentException($"x holds {xLength} floats but [{m}, {k}] needs {(long)m * k}.", "x");
        if (yLength < (long)m * n) throw new ArgumentException($"y holds {yLength} floats but [{m}, {n}] needs {(long)m * n}.", "y");
    }
}
