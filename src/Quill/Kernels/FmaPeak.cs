// This CPU's f32 multiply-add peak, measured: every kernel thread runs a loop of independent fused multiply-adds on
// the widest vectors the machine accelerates, with no memory traffic, and the rate of the fastest of several timed
// runs is the peak. Benchmarks divide a workload's FLOP/s by it (the fraction of peak, as MFU figures do), which says
// how far any engine, Quill or its peers, could still go on this machine.
// Twelve accumulators cover the latency of two FMA pipes (latency 4) on x86 and fit AVX2's 16 registers; ARM64
// takes sixteen (up to four NEON pipes; 32 registers).
// Does not handle: bf16 or int8 dot-product peaks; the figure is the f32 rate the kernels can reach.
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Quill.Kernels;

/// <summary>The measured f32 FMA peak of this CPU at a thread count.</summary>
public static class FmaPeak
{
    /// <summary>f32 lanes of the vectors the loop runs on (16 with AVX-512, 8 with AVX2, 4 with NEON or SSE, 1 otherwise).</summary>
    public static int Lanes =>
        Vector512.IsHardwareAccelerated ? 16 : Vector256.IsHardwareAccelerated ? 8 : Vector128.IsHardwareAccelerated ? 4 : 1;

    /// <summary>Independent accumulators of the loop.</summary>
    public static int Accumulators => Lanes == 4 && !System.Runtime.Intrinsics.X86.Sse.IsSupported ? 16 : 12;

    /// <summary>
    /// GFLOP/s of `threads` threads (default: the kernels' count) each running the FMA loop at once: the fastest of
    /// five runs of about 50 ms each.
    /// </summary>
    public static double Measure(int threads = 0)
    {
        if (threads <= 0) threads = KernelThreads.Count;
        long iterations = 1 << 16;
        double seconds = Time(threads, iterations);
        while (seconds < 0.05 && iterations < 1L << 34)
        {
            iterations *= 2;
            seconds = Time(threads, iterations);
        }
        double best = seconds;
        for (int i = 0; i < 5; i++) best = Math.Min(best, Time(threads, iterations));
        return 2.0 * Accumulators * Lanes * iterations * threads / best / 1e9;
    }

    private static double Time(int threads, long iterations)
    {
        var sums = new float[threads];
        long start = Stopwatch.GetTimestamp();
        WorkerPool.Chunks(threads, threads, c => sums[c] = Run(iterations, 1e-30f));
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        GC.KeepAlive(sums);
        return seconds;
    }

    /// <summary>
    /// Runs the loop on this thread: every accumulator lane starts at 0 and takes `iterations` of acc = acc * 1 +
    /// addend. Returns the sum of every lane of every accumulator (Accumulators * Lanes * iterations * addend when
    /// that is exact in f32), so the work cannot be dropped and a test can check it was done.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static float Run(long iterations, float addend)
    {
        if (Vector512.IsHardwareAccelerated) return Loop12(iterations, Vector512.Create(addend), Vector512<float>.One);
        if (Vector256.IsHardwareAccelerated) return Loop12(iterations, Vector256.Create(addend), Vector256<float>.One);
        if (Vector128.IsHardwareAccelerated)
        {
            return Accumulators == 16
                ? Loop16(iterations, Vector128.Create(addend), Vector128<float>.One)
                : Loop12(iterations, Vector128.Create(addend), Vector128<float>.One);
        }
        float total = 0;
        for (int k = 0; k < 12; k++)
        {
            float acc = 0;
            for (long i = 0; i < iterations; i++) acc = MathF.FusedMultiplyAdd(acc, 1f, addend);
            total += acc;
        }
        return total;
    }

    private static float Loop12(long n, Vector512<float> a, Vector512<float> one)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        Vector512<float> c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
        for (long i = 0; i < n; i++)
        {
            c0 = Vector512.FusedMultiplyAdd(c0, one, a); c1 = Vector512.FusedMultiplyAdd(c1, one, a);
            c2 = Vector512.FusedMultiplyAdd(c2, one, a); c3 = Vector512.FusedMultiplyAdd(c3, one, a);
            c4 = Vector512.FusedMultiplyAdd(c4, one, a); c5 = Vector512.FusedMultiplyAdd(c5, one, a);
            c6 = Vector512.FusedMultiplyAdd(c6, one, a); c7 = Vector512.FusedMultiplyAdd(c7, one, a);
            c8 = Vector512.FusedMultiplyAdd(c8, one, a); c9 = Vector512.FusedMultiplyAdd(c9, one, a);
            c10 = Vector512.FusedMultiplyAdd(c10, one, a); c11 = Vector512.FusedMultiplyAdd(c11, one, a);
        }
        return Vector512.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    private static float Loop12(long n, Vector256<float> a, Vector256<float> one)
    {
        Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        Vector256<float> c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
        for (long i = 0; i < n; i++)
        {
            c0 = Vector256.FusedMultiplyAdd(c0, one, a); c1 = Vector256.FusedMultiplyAdd(c1, one, a);
            c2 = Vector256.FusedMultiplyAdd(c2, one, a); c3 = Vector256.FusedMultiplyAdd(c3, one, a);
            c4 = Vector256.FusedMultiplyAdd(c4, one, a); c5 = Vector256.FusedMultiplyAdd(c5, one, a);
            c6 = Vector256.FusedMultiplyAdd(c6, one, a); c7 = Vector256.FusedMultiplyAdd(c7, one, a);
            c8 = Vector256.FusedMultiplyAdd(c8, one, a); c9 = Vector256.FusedMultiplyAdd(c9, one, a);
            c10 = Vector256.FusedMultiplyAdd(c10, one, a); c11 = Vector256.FusedMultiplyAdd(c11, one, a);
        }
        return Vector256.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    private static float Loop12(long n, Vector128<float> a, Vector128<float> one)
    {
        Vector128<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        Vector128<float> c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
        for (long i = 0; i < n; i++)
        {
            c0 = Vector128.FusedMultiplyAdd(c0, one, a); c1 = Vector128.FusedMultiplyAdd(c1, one, a);
            c2 = Vector128.FusedMultiplyAdd(c2, one, a); c3 = Vector128.FusedMultiplyAdd(c3, one, a);
            c4 = Vector128.FusedMultiplyAdd(c4, one, a); c5 = Vector128.FusedMultiplyAdd(c5, one, a);
            c6 = Vector128.FusedMultiplyAdd(c6, one, a); c7 = Vector128.FusedMultiplyAdd(c7, one, a);
            c8 = Vector128.FusedMultiplyAdd(c8, one, a); c9 = Vector128.FusedMultiplyAdd(c9, one, a);
            c10 = Vector128.FusedMultiplyAdd(c10, one, a); c11 = Vector128.FusedMultiplyAdd(c11, one, a);
        }
        return Vector128.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    private static float Loop16(long n, Vector128<float> a, Vector128<float> one)
    {
        Vector128<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        Vector128<float> c8 = default, c9 = default, c10 = default, c11 = default, c12 = default, c13 = default, c14 = default, c15 = default;
        for (long i = 0; i < n; i++)
        {
            c0 = Vector128.FusedMultiplyAdd(c0, one, a); c1 = Vector128.FusedMultiplyAdd(c1, one, a);
            c2 = Vector128.FusedMultiplyAdd(c2, one, a); c3 = Vector128.FusedMultiplyAdd(c3, one, a);
            c4 = Vector128.FusedMultiplyAdd(c4, one, a); c5 = Vector128.FusedMultiplyAdd(c5, one, a);
            c6 = Vector128.FusedMultiplyAdd(c6, one, a); c7 = Vector128.FusedMultiplyAdd(c7, one, a);
            c8 = Vector128.FusedMultiplyAdd(c8, one, a); c9 = Vector128.FusedMultiplyAdd(c9, one, a);
            c10 = Vector128.FusedMultiplyAdd(c10, one, a); c11 = Vector128.FusedMultiplyAdd(c11, one, a);
            c12 = Vector128.FusedMultiplyAdd(c12, one, a); c13 = Vector128.FusedMultiplyAdd(c13, one, a);
            c14 = Vector128.FusedMultiplyAdd(c14, one, a); c15 = Vector128.FusedMultiplyAdd(c15, one, a);
        }
        return Vector128.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11 + c12 + c13 + c14 + c15);
    }
}
