// Shared SIMD building blocks for the elementwise, normalization and loss kernels: a vectorized exp
// (Vector512, Vector256 and Vector128), row reductions (sum, max, dot, sum of exp) on raw pointers written once over
// IKernelVector (see KernelVector.cs), and the rules that decide when a kernel is worth splitting across KernelThreads.
// Does not handle: denormal results of exp (inputs below about -87.3 give exactly 0) or exp of inputs above 88.37
// (they give +infinity, slightly before float's true overflow at 88.72); every caller either subtracts a row max first
// or only needs the limit (sigmoid of a huge argument).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Quill.Kernels;

/// <summary>Vectorized math helpers used inside the kernels (raw pointers, no allocation).</summary>
internal static unsafe class ElementwiseMath
{
    /// <summary>Elements of work below which a kernel stays on the calling thread.</summary>
    public const int ParallelGrain = 32 * 1024;

    /// <summary>Elementwise kernels split their range in blocks of this many elements (a multiple of every vector width),
    /// so that which lanes go through the vector or scalar path never depends on the thread count.</summary>
    public const int Block = 1024;

    /// <summary>Minimum units per chunk so that a chunk holds at least ParallelGrain elements of work.</summary>
    public static int MinChunk(long workPerUnit) => (int)Math.Max(1, (ParallelGrain + workPerUnit - 1) / Math.Max(1, workPerUnit));

    /// <summary>True when splitting units (each workPerUnit elements) across threads pays for the hand-off.</summary>
    public static bool ShouldSplit(int units, long workPerUnit) =>
        KernelThreads.Count > 1 && units >= 2 * MinChunk(workPerUnit);

    /// <summary>Throws ArgumentException when a span is shorter than the kernel needs (a caller's bug, not a user mistake).</summary>
    public static void RequireLength(int actual, long needed, string name)
    {
        if (actual < needed) throw new ArgumentException($"{name} has {actual} elements but the kernel needs {needed}.", name);
    }

    /// <summary>Throws ArgumentOutOfRangeException for a negative size.</summary>
    public static void RequireNonNegative(int value, string name)
    {
        if (value < 0) throw new ArgumentOutOfRangeException(name, value, $"{name} must not be negative.");
    }

    /// <summary>Number of Block-sized blocks covering length elements.</summary>
    public static int Blocks(int length) => (length + Block - 1) / Block;

    private const float Log2E = 1.44269504f;
    private const float RoundMagic = 12582912f;   // 1.5 * 2^23: adding it rounds to an integer held in the low mantissa bits
    private const float Ln2Hi = 0.693359375f;
    private const float Ln2Lo = -2.12194440e-4f;
    private const float ExpLow = -87.33f;
    private const float ExpHigh = 88.37f;

    /// <summary>e^x per lane (relative error about 1e-7): x = n ln2 + r, a degree-7 polynomial for e^r, then 2^n in the exponent bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        var t = Vector512.FusedMultiplyAdd(x, Vector512.Create(Log2E), Vector512.Create(RoundMagic));
        var n = t - Vector512.Create(RoundMagic);
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Hi), x);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Lo), r);
        var p = Vector512.Create(1.9875691500e-4f);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1.3981999507e-3f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(8.3334519073e-3f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(4.1665795894e-2f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1.6666665459e-1f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(5.0000001201e-1f));
        p = Vector512.FusedMultiplyAdd(p, r * r, r) + Vector512<float>.One;
        var pow2 = (t.AsInt32() + Vector512.Create(127 - 0x4B400000)) << 23;
        var y = p * pow2.AsSingle();
        y = Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512.Create(ExpLow)), Vector512<float>.Zero, y);
        return Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512.Create(ExpHigh)), Vector512.Create(float.PositiveInfinity), y);
    }

    /// <summary>e^x per lane, the Vector256 twin of <see cref="Exp(Vector512{float})"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        var t = Vector256.FusedMultiplyAdd(x, Vector256.Create(Log2E), Vector256.Create(RoundMagic));
        var n = t - Vector256.Create(RoundMagic);
        var r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Hi), x);
        r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Lo), r);
        var p = Vector256.Create(1.9875691500e-4f);
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1.3981999507e-3f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(8.3334519073e-3f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(4.1665795894e-2f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1.6666665459e-1f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(5.0000001201e-1f));
        p = Vector256.FusedMultiplyAdd(p, r * r, r) + Vector256<float>.One;
        var pow2 = (t.AsInt32() + Vector256.Create(127 - 0x4B400000)) << 23;
        var y = p * pow2.AsSingle();
        y = Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256.Create(ExpLow)), Vector256<float>.Zero, y);
        return Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256.Create(ExpHigh)), Vector256.Create(float.PositiveInfinity), y);
    }


    /// <summary>e^x per lane, the Vector128 (NEON) twin of <see cref="Exp(Vector512{float})"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Exp(Vector128<float> x)
    {
        var t = Vector128.FusedMultiplyAdd(x, Vector128.Create(Log2E), Vector128.Create(RoundMagic));
        var n = t - Vector128.Create(RoundMagic);
        var r = Vector128.FusedMultiplyAdd(n, Vector128.Create(-Ln2Hi), x);
        r = Vector128.FusedMultiplyAdd(n, Vector128.Create(-Ln2Lo), r);
        var p = Vector128.Create(1.9875691500e-4f);
        p = Vector128.FusedMultiplyAdd(p, r, Vector128.Create(1.3981999507e-3f));
        p = Vector128.FusedMultiplyAdd(p, r, Vector128.Create(8.3334519073e-3f));
        p = Vector128.FusedMultiplyAdd(p, r, Vector128.Create(4.1665795894e-2f));
        p = Vector128.FusedMultiplyAdd(p, r, Vector128.Create(1.6666665459e-1f));
        p = Vector128.FusedMultiplyAdd(p, r, Vector128.Create(5.0000001201e-1f));
        p = Vector128.FusedMultiplyAdd(p, r * r, r) + Vector128<float>.One;
        var pow2 = (t.AsInt32() + Vector128.Create(127 - 0x4B400000)) << 23;
        var y = p * pow2.AsSingle();
        y = Vector128.ConditionalSelect(Vector128.LessThan(x, Vector128.Create(ExpLow)), Vector128<float>.Zero, y);
        return Vector128.ConditionalSelect(Vector128.GreaterThan(x, Vector128.Create(ExpHigh)), Vector128.Create(float.PositiveInfinity), y);
    }

    /// <summary>Sum of x[0..n).</summary>
    public static float Sum<TOps, TV>(float* x, int n) where TOps : IKernelVector<TV> where TV : struct
    {
        int i = 0, l = TOps.Lanes;
        float s = 0;
        if (n >= l)
        {
            var a0 = TOps.Zero;
            var a1 = TOps.Zero;
            for (; i <= n - 2 * l; i += 2 * l)
            {
                a0 = TOps.Add(a0, TOps.Load(x + i));
                a1 = TOps.Add(a1, TOps.Load(x + i + l));
            }
            for (; i <= n - l; i += l) a0 = TOps.Add(a0, TOps.Load(x + i));
            s = TOps.SumAcross(TOps.Add(a0, a1));
        }
        for (; i < n; i++) s += x[i];
        return s;
    }

    /// <summary>Sum of (x[i] - shift)^2 over [0..n).</summary>
    public static float SumSquaredDiff<TOps, TV>(float* x, float shift, int n) where TOps : IKernelVector<TV> where TV : struct
    {
        int i = 0, l = TOps.Lanes;
        float s = 0;
        if (n >= l)
        {
            var m = TOps.Broadcast(shift);
            var a0 = TOps.Zero;
            var a1 = TOps.Zero;
            for (; i <= n - 2 * l; i += 2 * l)
            {
                var d0 = TOps.Sub(TOps.Load(x + i), m);
                var d1 = TOps.Sub(TOps.Load(x + i + l), m);
                a0 = TOps.Fma(d0, d0, a0);
                a1 = TOps.Fma(d1, d1, a1);
            }
            for (; i <= n - l; i += l)
            {
                var d0 = TOps.Sub(TOps.Load(x + i), m);
                a0 = TOps.Fma(d0, d0, a0);
            }
            s = TOps.SumAcross(TOps.Add(a0, a1));
        }
        for (; i < n; i++)
        {
            float d = x[i] - shift;
            s += d * d;
        }
        return s;
    }

    /// <summary>Dot product of a and b over [0..n).</summary>
    public static float Dot<TOps, TV>(float* a, float* b, int n) where TOps : IKernelVector<TV> where TV : struct
    {
        int i = 0, l = TOps.Lanes;
        float s = 0;
        if (n >= l)
        {
            var a0 = TOps.Zero;
            var a1 = TOps.Zero;
            for (; i <= n - 2 * l; i += 2 * l)
            {
                a0 = TOps.Fma(TOps.Load(a + i), TOps.Load(b + i), a0);
                a1 = TOps.Fma(TOps.Load(a + i + l), TOps.Load(b + i + l), a1);
            }
            for (; i <= n - l; i += l) a0 = TOps.Fma(TOps.Load(a + i), TOps.Load(b + i), a0);
            s = TOps.SumAcross(TOps.Add(a0, a1));
        }
        for (; i < n; i++) s += a[i] * b[i];
        return s;
    }

    /// <summary>Largest of x[0..n) (n &gt; 0); a NaN anywhere may or may not propagate.</summary>
    public static float Max<TOps, TV>(float* x, int n) where TOps : IKernelVector<TV> where TV : struct
    {
        int i = 0, l = TOps.Lanes;
        float m = float.NegativeInfinity;
        if (n >= l)
        {
            var a0 = TOps.Broadcast(float.NegativeInfinity);
            var a1 = a0;
            for (; i <= n - 2 * l; i += 2 * l)
            {
                a0 = TOps.MaxNative(a0, TOps.Load(x + i));
                a1 = TOps.MaxNative(a1, TOps.Load(x + i + l));
            }
            for (; i <= n - l; i += l) a0 = TOps.MaxNative(a0, TOps.Load(x + i));
            m = TOps.MaxAcross(TOps.MaxNative(a0, a1));
        }
        for (; i < n; i++) m = MathF.Max(m, x[i]);
        return m;
    }

    /// <summary>Sum of e^(x[i] - shift) over [0..n), without storing the exponentials.</summary>
    public static float SumExp<TOps, TV>(float* x, float shift, int n) where TOps : IKernelVector<TV> where TV : struct
    {
        int i = 0, l = TOps.Lanes;
        float s = 0;
        if (n >= l)
        {
            var m = TOps.Broadcast(shift);
            var a0 = TOps.Zero;
            var a1 = TOps.Zero;
            for (; i <= n - 2 * l; i += 2 * l)
            {
                a0 = TOps.Add(a0, TOps.ExpFull(TOps.Sub(TOps.Load(x + i), m)));
                a1 = TOps.Add(a1, TOps.ExpFull(TOps.Sub(TOps.Load(x + i + l), m)));
            }
            for (; i <= n - l; i += l) a0 = TOps.Add(a0, TOps.ExpFull(TOps.Sub(TOps.Load(x + i), m)));
            s = TOps.SumAcross(TOps.Add(a0, a1));
        }
        for (; i < n; i++) s += MathF.Exp(x[i] - shift);
        return s;
    }

    /// <summary>y[i] = e^(x[i] - shift) over [0..n); returns their sum.</summary>
    public static float ExpInto<TOps, TV>(float* x, float shift, float* y, int n) where TOps : IKernelVector<TV> where TV : struct
    {
        int i = 0, l = TOps.Lanes;
        float s = 0;
        if (n >= l)
        {
            var m = TOps.Broadcast(shift);
            var a0 = TOps.Zero;
            for (; i <= n - l; i += l)
            {
                var e = TOps.ExpFull(TOps.Sub(TOps.Load(x + i), m));
                TOps.Store(y + i, e);
                a0 = TOps.Add(a0, e);
            }
            s = TOps.SumAcross(a0);
        }
        for (; i < n; i++)
        {
            float e = MathF.Exp(x[i] - shift);
            y[i] = e;
            s += e;
        }
        return s;
    }

    /// <summary>y[i] *= s over [0..n).</summary>
    public static void ScaleInPlace<TOps, TV>(float* y, float s, int n) where TOps : IKernelVector<TV> where TV : struct
    {
        int i = 0, l = TOps.Lanes;
        var v = TOps.Broadcast(s);
        for (; i <= n - l; i += l) TOps.Store(y + i, TOps.Mul(TOps.Load(y + i), v));
        for (; i < n; i++) y[i] *= s;
    }

    /// <summary>y[i] += x[i] over [0..n).</summary>
    public static void AddInto<TOps, TV>(float* y, float* x, int n) where TOps : IKernelVector<TV> where TV : struct
    {
        int i = 0, l = TOps.Lanes;
        for (; i <= n - l; i += l) TOps.Store(y + i, TOps.Add(TOps.Load(y + i), TOps.Load(x + i)));
        for (; i < n; i++) y[i] += x[i];
    }

    /// <summary>y[i] += x[i] over [0..n) at width w (Auto: this CPU's widest vector).</summary>
    public static void AddInto(KernelWidth w, float* y, float* x, int n)
    {
        switch (KernelWidths.Resolve(w))
        {
            case KernelWidth.Vector512: AddInto<Vec512, Vector512<float>>(y, x, n); break;
            case KernelWidth.Vector256: AddInto<Vec256, Vector256<float>>(y, x, n); break;
            case KernelWidth.Vector128: AddInto<Vec128, Vector128<float>>(y, x, n); break;
            default: AddInto<VecScalar, float>(y, x, n); break;
        }
    }

    /// <summary>Columns per unit of work when AddColumnSums splits the columns across threads: a 64-byte cache line.</summary>
    private const int SumColumnBlock = 16;

    /// <summary>
    /// sums[j] += a[r * ld + j] for r = 0, 1, ..., rows - 1 in that order, j in [0, cols): each column folded in row
    /// order, the columns split across threads in cache-line blocks, so the sums are the same for any thread count.
    /// </summary>
    public static void AddColumnSums(float* a, nint ld, int rows, int cols, float* sums)
    {
        var width = KernelWidths.Resolve(KernelWidth.Auto);
        int blocks = (cols + SumColumnBlock - 1) / SumColumnBlock;
        KernelThreads.ParallelFor(blocks, MinChunk((long)rows * SumColumnBlock), (b0, b1) =>
        {
            int c0 = b0 * SumColumnBlock, columns = Math.Min(cols, b1 * SumColumnBlock) - c0;
            for (int r = 0; r < rows; r++) AddInto(width, sums + c0, a + r * ld + c0, columns);
        });
    }

    /// <summary>dx[i] += y[i] * (dy[i] - shift) over [0..n).</summary>
    public static void AddProductShifted<TOps, TV>(float* dx, float* y, float* dy, float shift, int n) where TOps : IKernelVector<TV> where TV : struct
    {
        int i = 0, l = TOps.Lanes;
        var s = TOps.Broadcast(shift);
        for (; i <= n - l; i += l)
            TOps.Store(dx + i, TOps.Fma(TOps.Load(y + i), TOps.Sub(TOps.Load(dy + i), s), TOps.Load(dx + i)));
        for (; i < n; i++) dx[i] = MathF.FusedMultiplyAdd(y[i], dy[i] - shift, dx[i]);
    }
}
