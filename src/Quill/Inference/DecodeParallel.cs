// The parallel loop of the decode kernels. Decode runs a few dozen short parallel regions per token, so the cost
// that matters is a helper thread that is late (still waking up, or descheduled on a busy machine): with a fixed
// split the caller finishes its half and then waits. Here the threads claim pieces from a shared counter, guided:
// each claim takes a share of what remains (long contiguous runs first, so weights stream without breaks; small
// pieces at the end); the caller works until nothing is left and then waits only for pieces a helper has already
// claimed, never for a helper that has not started. Results do not depend on which thread
// ran a chunk. Thread count: KernelThreads.Count. Helpers are dedicated background threads that spin briefly
// (about 50 microseconds) after each region before they block, so back-to-back regions of a decode step find
// them awake instead of paying a thread-pool wake-up each time.
// Does not handle: nested parallel loops (a body must not call back into this).
namespace Quill.Inference;

/// <summary>A chunked parallel-for that never waits for helpers that have not started.</summary>
internal static class DecodeParallel
{
    /// <summary>Smallest claim, as a fraction of the range per thread: the tail of a loop is handed out in pieces of
    /// n / (threads * 16), so a late or descheduled helper holds little.</summary>
    private const int ChunksPerThread = 16;

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
        var loop = new Loop(n, chunk, 2 * threads, body);
        var helpers = Helpers(threads - 1);
        for (int t = 0; t < threads - 1; t++) helpers[t].Post(loop);
        loop.Work();
        loop.WaitForClaimed();
    }

    private static Helper[] helpers = [];
    private static readonly Lock HelpersLock = new();

    private static Helper[] Helpers(int count)
    {
        var h = helpers;
        if (h.Length >= count) return h;
        lock (HelpersLock)
        {
            if (helpers.Length < count)
            {
                var grown = new Helper[count];
                Array.Copy(helpers, grown, helpers.Length);
                for (int i = helpers.Length; i < count; i++) grown[i] = new Helper(i);
                helpers = grown;
            }
            return helpers;
        }
    }

    /// <summary>A background thread that runs posted loops; spins a little between them, then sleeps.</summary>
    private sealed class Helper
    {
        private const long SpinTicks = 50 * TimeSpan.TicksPerMillisecond / 1000; // 50 us
        private readonly ManualResetEventSlim wake = new(false, 0);
        private Loop? pending;

        public Helper(int index)
        {
            var t = new Thread(Run) { IsBackground = true, Name = $"quill-decode-{index}" };
            t.Start();
        }

        public void Post(Loop loop)
        {
            Volatile.Write(ref pending, loop);
            wake.Set();
        }

        private void Run()
        {
            while (true)
            {
                var job = Interlocked.Exchange(ref pending, null);
                if (job != null)
                {
                    job.Work();
                    continue;
                }
                long until = DateTime.UtcNow.Ticks + SpinTicks;
                var spin = new SpinWait();
                while (Volatile.Read(ref pending) == null && DateTime.UtcNow.Ticks < until) spin.SpinOnce(sleep1Threshold: -1);
                if (Volatile.Read(ref pending) != null) continue;
                wake.Reset();
                if (Volatile.Read(ref pending) != null) continue;
                wake.Wait();
            }
        }
    }

    // Guided self-scheduling: each claim takes remaining / parts (at least chunk), so the first claims are long
    // contiguous runs (weights stream from memory without breaks) and the last ones small (a late thread holds
    // little).
    private sealed class Loop(int n, int chunk, int parts, Action<int, int> body)
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
                    int start = Volatile.Read(ref next);
                    if (start >= n) break;
                    int size = Math.Max(chunk, (n - start) / parts);
                    int end = Math.Min(n, start + size);
                    if (Interlocked.CompareExchange(ref next, end, start) != start) continue;
                    body(start, end);
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
