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
    public static int Lanes => LanesOf(KernelWidths.Best);

    /// <summary>Independent accumulators of the loop: 16 on ARM64, 12 elsewhere.</summary>
    public static int Accumulators => System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported ? 16 : 12;

    internal static int LanesOf(KernelWidth width) => Math.Max(1, KernelWidths.Bits(width) / 32);

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
    public static float Run(long iterations, float addend) => Run(iterations, addend, KernelWidths.Best, Accumulators);

    /// <summary>Run at a pinned width with 12 or 16 accumulators (tests run every form on one CPU).</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal static float Run(long iterations, float addend, KernelWidth width, int accumulators)
    {
        bool sixteen = accumulators == 16;
        return KernelWidths.Resolve(width) switch
        {
            KernelWidth.Vector512 => sixteen ? Loop16<Vec512, Vector512<float>>(iterations, addend) : Loop12<Vec512, Vector512<float>>(iterations, addend),
            KernelWidth.Vector256 => sixteen ? Loop16<Vec256, Vector256<float>>(iterations, addend) : Loop12<Vec256, Vector256<float>>(iterations, addend),
            KernelWidth.Vector128 => sixteen ? Loop16<Vec128, Vector128<float>>(iterations, addend) : Loop12<Vec128, Vector128<float>>(iterations, addend),
            _ => sixteen ? Loop16<VecScalar, float>(iterations, addend) : Loop12<VecScalar, float>(iterations, addend),
        };
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Loop12<TOps, TV>(long n, float addend) where TOps : struct, IAttentionVector<TV> where TV : struct
    {
        TV a = TOps.Broadcast(addend), one = TOps.Broadcast(1f);
        TV c0 = TOps.Zero, c1 = TOps.Zero, c2 = TOps.Zero, c3 = TOps.Zero, c4 = TOps.Zero, c5 = TOps.Zero;
        TV c6 = TOps.Zero, c7 = TOps.Zero, c8 = TOps.Zero, c9 = TOps.Zero, c10 = TOps.Zero, c11 = TOps.Zero;
        for (long i = 0; i < n; i++)
        {
            c0 = TOps.Fma(c0, one, a); c1 = TOps.Fma(c1, one, a); c2 = TOps.Fma(c2, one, a); c3 = TOps.Fma(c3, one, a);
            c4 = TOps.Fma(c4, one, a); c5 = TOps.Fma(c5, one, a); c6 = TOps.Fma(c6, one, a); c7 = TOps.Fma(c7, one, a);
            c8 = TOps.Fma(c8, one, a); c9 = TOps.Fma(c9, one, a); c10 = TOps.Fma(c10, one, a); c11 = TOps.Fma(c11, one, a);
        }
        TV sum = TOps.Add(TOps.Add(TOps.Add(c0, c1), TOps.Add(c2, c3)), TOps.Add(TOps.Add(c4, c5), TOps.Add(c6, c7)));
        return TOps.SumAcross(TOps.Add(sum, TOps.Add(TOps.Add(c8, c9), TOps.Add(c10, c11))));
    }

    // Sixteen chains in ARM64's 32 registers: cores with four FMA pipes of latency 4 need them all in flight.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Loop16<TOps, TV>(long n, float addend) where TOps : struct, IAttentionVector<TV> where TV : struct
    {
        TV a = TOps.Broadcast(addend), one = TOps.Broadcast(1f);
        TV c0 = TOps.Zero, c1 = TOps.Zero, c2 = TOps.Zero, c3 = TOps.Zero, c4 = TOps.Zero, c5 = TOps.Zero, c6 = TOps.Zero, c7 = TOps.Zero;
        TV d0 = TOps.Zero, d1 = TOps.Zero, d2 = TOps.Zero, d3 = TOps.Zero, d4 = TOps.Zero, d5 = TOps.Zero, d6 = TOps.Zero, d7 = TOps.Zero;
        for (long i = 0; i < n; i++)
        {
            c0 = TOps.Fma(c0, one, a); c1 = TOps.Fma(c1, one, a); c2 = TOps.Fma(c2, one, a); c3 = TOps.Fma(c3, one, a);
            c4 = TOps.Fma(c4, one, a); c5 = TOps.Fma(c5, one, a); c6 = TOps.Fma(c6, one, a); c7 = TOps.Fma(c7, one, a);
            d0 = TOps.Fma(d0, one, a); d1 = TOps.Fma(d1, one, a); d2 = TOps.Fma(d2, one, a); d3 = TOps.Fma(d3, one, a);
            d4 = TOps.Fma(d4, one, a); d5 = TOps.Fma(d5, one, a); d6 = TOps.Fma(d6, one, a); d7 = TOps.Fma(d7, one, a);
        }
        TV c = TOps.Add(TOps.Add(TOps.Add(c0, c1), TOps.Add(c2, c3)), TOps.Add(TOps.Add(c4, c5), TOps.Add(c6, c7)));
        TV d = TOps.Add(TOps.Add(TOps.Add(d0, d1), TOps.Add(d2, d3)), TOps.Add(TOps.Add(d4, d5), TOps.Add(d6, d7)));
        return TOps.SumAcross(TOps.Add(c, d));
    }
}
