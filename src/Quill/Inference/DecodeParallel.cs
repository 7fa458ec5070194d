// The parallel loop of the decode kernels. Decode runs a few dozen short parallel regions per token, so the cost
// that matters is a helper thread that is late (still waking up, or descheduled on a busy machine): with a fixed
// split the caller finishes its half and then waits. Here the range is cut into several chunks per thread that
// the threads claim from a shared counter; the caller works until no chunk is left and then waits only for chunks
// a helper has already claimed, never for a helper that has not started. Results do not depend on which thread
// ran a chunk. Thread count: KernelThreads.Count.
// Does not handle: nested parallel loops (a body must not call back into this).
namespace Quill.Inference;

/// <summary>A chunked parallel-for that never waits for helpers that have not started.</summary>
internal static class DecodeParallel
{
    /// <summary>Chunks per thread: more balance late helpers better, fewer cost less claiming.</summary>
    private const int ChunksPerThread = 4;

    /// <summary>Runs body(start, end) over [0, n) in chunks of at least minChunk, on up to KernelThreads.Count threads.</summary>
    public static void For(int n, int minChunk, Action<int, int> body)
    {
        int threads = Kernels.KernelThreads.Count;
        if (n <= 0) return;
        if (threads <= 1 || n < 2 * Math.Max(1, minChunk))
        {
            body(0, n);
            return;
        }
        int chunk = Math.Max(Math.Max(1, minChunk), (n + threads * ChunksPerThread - 1) / (threads * ChunksPerThread));
        var loop = new Loop(n, chunk, body);
        for (int t = 1; t < threads; t++) ThreadPool.UnsafeQueueUserWorkItem(static l => l.Work(), loop, preferLocal: false);
        loop.Work();
        loop.WaitForClaimed();
    }

    private sealed class Loop(int n, int chunk, Action<int, int> body)
    {
        private int next;
        private int active;
        private Exception? error;

        public void Work()
        {
            Interlocked.Increment(ref active);
            try
            {
                while (true)
                {
                    int start = Interlocked.Add(ref next, chunk) - chunk;
                    if (start >= n) break;
                    body(start, Math.Min(n, start + chunk));
                }
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref error, e, null);
                Volatile.Write(ref next, n); // stop the others claiming
            }
            finally
            {
                Interlocked.Decrement(ref active);
            }
        }

        /// <summary>Called by the caller after its own Work: every chunk is claimed; wait for those still running.</summary>
        public void WaitForClaimed()
        {
            var spin = new SpinWait();
            while (Volatile.Read(ref active) > 0) spin.SpinOnce();
            if (error != null) throw new AggregateException(error);
        }
    }
}
