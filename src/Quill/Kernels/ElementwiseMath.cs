// Shared SIMD building blocks for the elementwise, normalization and loss kernels: a vectorized exp
// (Vector512 and Vector256), row reductions (sum, max, dot, sum of exp) on raw pointers, and the rules that decide
// when a kernel is worth splitting across KernelThreads.
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

    /// <summary>Sum of x[0..n).</summary>
    public static float Sum(float* x, int n)
    {
        int i = 0;
        float s = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var a0 = Vector512<float>.Zero;
            var a1 = Vector512<float>.Zero;
            for (; i <= n - 32; i += 32)
            {
                a0 += Vector512.Load(x + i);
                a1 += Vector512.Load(x + i + 16);
            }
            for (; i <= n - 16; i += 16) a0 += Vector512.Load(x + i);
            s = Vector512.Sum(a0 + a1);
        }
        else if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var a0 = Vector256<float>.Zero;
            for (; i <= n - 8; i += 8) a0 += Vector256.Load(x + i);
            s = Vector256.Sum(a0);
        }
        for (; i < n; i++) s += x[i];
        return s;
    }

    /// <summary>Sum of (x[i] - shift)^2 over [0..n).</summary>
    public static float SumSquaredDiff(float* x, float shift, int n)
    {
        int i = 0;
        float s = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var m = Vector512.Create(shift);
            var a0 = Vector512<float>.Zero;
            var a1 = Vector512<float>.Zero;
            for (; i <= n - 32; i += 32)
            {
                var d0 = Vector512.Load(x + i) - m;
                var d1 = Vector512.Load(x + i + 16) - m;
                a0 = Vector512.FusedMultiplyAdd(d0, d0, a0);
                a1 = Vector512.FusedMultiplyAdd(d1, d1, a1);
            }
            for (; i <= n - 16; i += 16)
            {
                var d0 = Vector512.Load(x + i) - m;
                a0 = Vector512.FusedMultiplyAdd(d0, d0, a0);
            }
            s = Vector512.Sum(a0 + a1);
        }
        else if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var m = Vector256.Create(shift);
            var a0 = Vector256<float>.Zero;
            for (; i <= n - 8; i += 8)
            {
                var d0 = Vector256.Load(x + i) - m;
                a0 = Vector256.FusedMultiplyAdd(d0, d0, a0);
            }
            s = Vector256.Sum(a0);
        }
        for (; i < n; i++)
        {
            float d = x[i] - shift;
            s += d * d;
        }
        return s;
    }

    /// <summary>Dot product of a and b over [0..n).</summary>
    public static float Dot(float* a, float* b, int n)
    {
        int i = 0;
        float s = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var a0 = Vector512<float>.Zero;
            var a1 = Vector512<float>.Zero;
            for (; i <= n - 32; i += 32)
            {
                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i), Vector512.Load(b + i), a0);
                a1 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i + 16), Vector512.Load(b + i + 16), a1);
            }
            for (; i <= n - 16; i += 16) a0 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i), Vector512.Load(b + i), a0);
            s = Vector512.Sum(a0 + a1);
        }
        else if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var a0 = Vector256<float>.Zero;
            for (; i <= n - 8; i += 8) a0 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Vector256.Load(b + i), a0);
            s = Vector256.Sum(a0);
        }
        for (; i < n; i++) s += a[i] * b[i];
        return s;
    }

    /// <summary>Largest of x[0..n) (n &gt; 0); a NaN anywhere may or may not propagate.</summary>
    public static float Max(float* x, int n)
    {
        int i = 0;
        float m = float.NegativeInfinity;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var a0 = Vector512.Create(float.NegativeInfinity);
            var a1 = a0;
            for (; i <= n - 32; i += 32)
            {
                a0 = Vector512.MaxNative(a0, Vector512.Load(x + i));
                a1 = Vector512.MaxNative(a1, Vector512.Load(x + i + 16));
            }
            for (; i <= n - 16; i += 16) a0 = Vector512.MaxNative(a0, Vector512.Load(x + i));
            a0 = Vector512.MaxNative(a0, a1);
            var h = Vector256.MaxNative(a0.GetLower(), a0.GetUpper());
            for (int k = 0; k < 8; k++) m = MathF.Max(m, h.GetElement(k));
        }
        else if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var a0 = Vector256.Create(float.NegativeInfinity);
            for (; i <= n - 8; i += 8) a0 = Vector256.MaxNative(a0, Vector256.Load(x + i));
            for (int k = 0; k < 8; k++) m = MathF.Max(m, a0.GetElement(k));
        }
        for (; i < n; i++) m = MathF.Max(m, x[i]);
        return m;
    }

    /// <summary>Sum of e^(x[i] - shift) over [0..n), without storing the exponentials.</summary>
    public static float SumExp(float* x, float shift, int n)
    {
        int i = 0;
        float s = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var m = Vector512.Create(shift);
            var a0 = Vector512<float>.Zero;
            var a1 = Vector512<float>.Zero;
            for (; i <= n - 32; i += 32)
            {
                a0 += Exp(Vector512.Load(x + i) - m);
                a1 += Exp(Vector512.Load(x + i + 16) - m);
            }
            for (; i <= n - 16; i += 16) a0 += Exp(Vector512.Load(x + i) - m);
            s = Vector512.Sum(a0 + a1);
        }
        else if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var m = Vector256.Create(shift);
            var a0 = Vector256<float>.Zero;
            for (; i <= n - 8; i += 8) a0 += Exp(Vector256.Load(x + i) - m);
            s = Vector256.Sum(a0);
        }
        for (; i < n; i++) s += MathF.Exp(x[i] - shift);
        return s;
    }

    /// <summary>y[i] = e^(x[i] - shift) over [0..n); returns their sum.</summary>
    public static float ExpInto(float* x, float shift, float* y, int n)
    {
        int i = 0;
        float s = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var m = Vector512.Create(shift);
            var a0 = Vector512<float>.Zero;
            for (; i <= n - 16; i += 16)
            {
                var e = Exp(Vector512.Load(x + i) - m);
                e.Store(y + i);
                a0 += e;
            }
            s = Vector512.Sum(a0);
        }
        else if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var m = Vector256.Create(shift);
            var a0 = Vector256<float>.Zero;
            for (; i <= n - 8; i += 8)
            {
                var e = Exp(Vector256.Load(x + i) - m);
                e.Store(y + i);
                a0 += e;
            }
            s = Vector256.Sum(a0);
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
    public static void ScaleInPlace(float* y, float s, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var v = Vector512.Create(s);
            for (; i <= n - 16; i += 16) (Vector512.Load(y + i) * v).Store(y + i);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var v = Vector256.Create(s);
            for (; i <= n - 8; i += 8) (Vector256.Load(y + i) * v).Store(y + i);
        }
        for (; i < n; i++) y[i] *= s;
    }

    /// <summary>y[i] += x[i] over [0..n).</summary>
    public static void AddInto(float* y, float* x, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= n - 16; i += 16) (Vector512.Load(y + i) + Vector512.Load(x + i)).Store(y + i);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - 8; i += 8) (Vector256.Load(y + i) + Vector256.Load(x + i)).Store(y + i);
        }
        for (; i < n; i++) y[i] += x[i];
    }

    /// <summary>dx[i] += y[i] * (dy[i] - shift) over [0..n).</summary>
    public static void AddProductShifted(float* dx, float* y, float* dy, float shift, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var s = Vector512.Create(shift);
            for (; i <= n - 16; i += 16)
                Vector512.FusedMultiplyAdd(Vector512.Load(y + i), Vector512.Load(dy + i) - s, Vector512.Load(dx + i)).Store(dx + i);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var s = Vector256.Create(shift);
            for (; i <= n - 8; i += 8)
                Vector256.FusedMultiplyAdd(Vector256.Load(y + i), Vector256.Load(dy + i) - s, Vector256.Load(dx + i)).Store(dx + i);
        }
        for (; i < n; i++) dx[i] = MathF.FusedMultiplyAdd(y[i], dy[i] - shift, dx[i]);
    }
}
