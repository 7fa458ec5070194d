// The read bandwidth the decode benchmark divides by: a streaming read (256-bit loads, enough to saturate memory, summed so the reads cannot be
// dropped) of a 256 MiB buffer, eight times the last-level cache, split into one contiguous half per thread on the
// same threads the kernels use. One measurement is the best of three passes (a pass that the host interrupted
// reads low); the benchmark takes one right before each decode run, so limit and decode see the same host.
// Does not handle: write bandwidth, NUMA placement.
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Quill.Kernels;

namespace Quill.Benchmarks;

/// <summary>Measures the machine's read bandwidth with all kernel threads.</summary>
public sealed unsafe class BandwidthProbe : IDisposable
{
    private const long Bytes = 256L << 20;
    private float* buffer;

    public BandwidthProbe()
    {
        buffer = (float*)NativeMemory.AlignedAlloc((nuint)Bytes, 64);
        var all = new Span<float>(buffer, (int)(Bytes / sizeof(float)));
        for (int i = 0; i < all.Length; i += 16) all[i] = i; // touch every page so reads do not hit the shared zero page
    }

    /// <summary>Bytes per second of one measurement (best of three passes).</summary>
    public double Measure()
    {
        ObjectDisposedException.ThrowIf(buffer == null, this);
        long floats = Bytes / sizeof(float);
        nint p = (nint)buffer;
        var sums = new float[1024]; // one slot per possible chunk start: the sums only keep the loads alive
        double best = 0;
        for (int pass = 0; pass < 3; pass++)
        {
            var sw = Stopwatch.StartNew();
            KernelThreads.ParallelFor(1024, 1, (c0, c1) =>
            {
                float* a = (float*)p + floats * c0 / 1024, end = (float*)p + floats * c1 / 1024;
                var s0 = Vector256<float>.Zero;
                var s1 = Vector256<float>.Zero;
                var s2 = Vector256<float>.Zero;
                var s3 = Vector256<float>.Zero;
                for (; a + 32 <= end; a += 32)
                {
                    s0 += Vector256.Load(a);
                    s1 += Vector256.Load(a + 8);
                    s2 += Vector256.Load(a + 16);
                    s3 += Vector256.Load(a + 24);
                }
                sums[c0] = Vector256.Sum(s0 + s1 + s2 + s3);
            });
            best = Math.Max(best, Bytes / sw.Elapsed.TotalSeconds);
        }
        return best;
    }

    public void Dispose()
    {
        if (buffer == null) return;
        NativeMemory.AlignedFree(buffer);
        buffer = null;
    }
}
