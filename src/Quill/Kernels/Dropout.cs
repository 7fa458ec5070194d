// Inverted dropout with a counter-based random mask, forward and backward side by side.
// Element i is dropped iff bits(seed, i) < p * 2^32, where bits is the top 32 bits of a splitmix64-style hash of
// (seed, i); kept elements are scaled by 1/(1-p). The mask is a pure function of (seed, i), so it is reproducible,
// independent of the thread count, and the backward recomputes it instead of storing it.
// Does not handle: masks shared across a dimension (spatial dropout) or storing the mask; p = 1 drops everything.
// The vector path needs AVX-512 (64-bit lane multiplies); other machines use the scalar path, with the same mask.
// Glossary: L elements.
using System.Runtime.Intrinsics;

namespace Quill.Kernels;

/// <summary>Inverted dropout whose mask is recomputed from (seed, element index).</summary>
public static unsafe class Dropout
{
    private const ulong Golden = 0x9E3779B97F4A7C15UL;

    /// <summary>y = x * mask / (1 - p).</summary>
    public static void Forward(
        ReadOnlySpan<float> x,  // [L]
        Span<float> y,          // [L]
        ulong seed, float p)
    {
        CheckP(p);
        ElementwiseMath.RequireLength(y.Length, x.Length, nameof(y));
        Run(x, y, seed, p, accumulate: false);
    }

    /// <summary>dx += dy * mask / (1 - p), with the mask recomputed from the seed.</summary>
    public static void Backward(
        ReadOnlySpan<float> dy,  // [L]
        Span<float> dx,          // [L] +=
        ulong seed, float p)
    {
        CheckP(p);
        ElementwiseMath.RequireLength(dx.Length, dy.Length, nameof(dx));
        Run(dy, dx, seed, p, accumulate: true);
    }

    /// <summary>The hashed key for a seed; element i's bits are Mix(key + (i + 1) * golden) >> 32.</summary>
    internal static ulong Key(ulong seed) => Mix(seed);

    /// <summary>splitmix64's finalizer: a bijective 64-bit mix.</summary>
    internal static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Top 32 bits of element i's hash.</summary>
    internal static uint Bits(ulong key, long i) => (uint)(Mix(key + (ulong)(i + 1) * Golden) >> 32);

    /// <summary>Elements whose bits fall below this are dropped (p * 2^32, rounded up; 2^32 means "drop all").</summary>
    internal static ulong Threshold(float p) => (ulong)Math.Ceiling(p * 4294967296.0);

    internal static void CheckP(float p)
    {
        if (!(p >= 0f && p <= 1f)) throw new InvalidConfigException($"dropout must be between 0 and 1 (got {p}).");
    }

    private static void Run(ReadOnlySpan<float> x, Span<float> y, ulong seed, float p, bool accumulate)
    {
        int len = x.Length;
        if (len == 0) return;
        ulong threshold = Threshold(p);
        if (threshold > uint.MaxValue)
        {
            if (!accumulate) y[..len].Clear();
            return;
        }
        ulong key = Key(seed);
        float scale = 1f / (1f - p);
        fixed (float* px0 = x, py0 = y)
        {
            float* px = px0, py = py0;
            uint thr = (uint)threshold;
            int blocks = ElementwiseMath.Blocks(len);
            if (!ElementwiseMath.ShouldSplit(blocks, ElementwiseMath.Block)) Range(px, py, key, thr, scale, accumulate, 0, len);
            else KernelThreads.ParallelFor(blocks, ElementwiseMath.MinChunk(ElementwiseMath.Block), (b0, b1) =>
                Range(px, py, key, thr, scale, accumulate, b0 * ElementwiseMath.Block, Math.Min(len, b1 * ElementwiseMath.Block)));
        }
    }

    private static void Range(float* x, float* y, ulong key, uint threshold, float scale, bool accumulate, int i0, int i1)
    {
        int i = i0;
        if (Vector512.IsHardwareAccelerated)
        {
            var lane = Vector512.Create(1UL, 2, 3, 4, 5, 6, 7, 8);
            var vkey = Vector512.Create(key);
            var golden = Vector512.Create(Golden);
            var vthr = Vector512.Create(threshold);
            var vscale = Vector512.Create(scale);
            for (; i <= i1 - 16; i += 16)
            {
                var idx = lane + Vector512.Create((ulong)i);
                var z0 = MixVector(vkey + idx * golden) >>> 32;
                var z1 = MixVector(vkey + (idx + Vector512.Create(8UL)) * golden) >>> 32;
                var drop = Vector512.LessThan(Vector512.Narrow(z0, z1), vthr).AsSingle();
                var v = Vector512.ConditionalSelect(drop, Vector512<float>.Zero, Vector512.Load(x + i) * vscale);
                if (accumulate) v += Vector512.Load(y + i);
                v.Store(y + i);
            }
        }
        for (; i < i1; i++)
        {
            float v = Bits(key, i) < threshold ? 0f : x[i] * scale;
            y[i] = accumulate ? y[i] + v : v;
        }
    }

    private static Vector512<ulong> MixVector(Vector512<ulong> z)
    {
        z = (z ^ (z >>> 30)) * Vector512.Create(0xBF58476D1CE4E5B9UL);
        z = (z ^ (z >>> 27)) * Vector512.Create(0x94D049BB133111EBUL);
        return z ^ (z >>> 31);
    }
}
