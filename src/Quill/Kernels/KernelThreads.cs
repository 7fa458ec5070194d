// How many threads the kernels use, and a parallel-for that splits a range into one contiguous chunk per thread.
// The chunks run on WorkerPool (the caller plus dedicated spinning helpers); where each chunk starts and ends
// depends only on n and the thread count, never on timing, so per-chunk partial results are reproducible.
// Kernels call ParallelFor only when the work is large enough to pay for the hand-off (about a microsecond with
// the helpers awake, tens of microseconds when they have gone to sleep).
namespace Quill.Kernels;

/// <summary>The thread count shared by all kernels, and the helpers that split work across it.</summary>
public static class KernelThreads
{
    private static int count = Environment.ProcessorCount;

    /// <summary>Threads the kernels may use (default: all processors). Set from --threads.</summary>
    public static int Count
    {
        get => count;
        set => count = value < 1 ? throw new InvalidConfigException($"--threads must be at least 1 (got {value}).") : value;
    }

    /// <summary>
    /// Runs body(start, end) over [0, n) split into at most Count contiguous chunks. Runs inline when one chunk
    /// suffices (n &lt; 2 * minChunk or Count == 1).
    /// </summary>
    public static void ParallelFor(int n, int minChunk, Action<int, int> body) => ParallelFor(n, minChunk, count, body);

    /// <summary>ParallelFor with an explicit thread count (tests pin 1 or 2 threads without touching <see cref="Count"/>).</summary>
    internal static void ParallelFor(int n, int minChunk, int threads, Action<int, int> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (n <= 0) return;
        int chunks = Math.Min(threads, Math.Max(1, n / Math.Max(1, minChunk)));
        if (chunks <= 1)
        {
            body(0, n);
            return;
        }
        WorkerPool.Chunks(chunks, chunks, c => body((int)((long)n * c / chunks), (int)((long)n * (c + 1) / chunks)));
    }
}
