// The threads every parallel kernel runs on: the calling thread plus KernelThreads.Count - 1 dedicated background
// helpers. Kernels run many short parallel regions (a decode step runs about fifty of 10-300 microseconds; a
// training step hundreds of small elementwise ops), so the cost that matters is the hand-off: a thread-pool
// wake-up costs tens of microseconds, and with a fixed split the caller finishes its share and then waits for a
// helper that is late (still waking, or descheduled on a busy host). Here the caller posts the region to the
// helpers and starts at once; every thread claims work from a shared counter until none is left, and the caller
// then waits only for pieces a helper has already claimed, never for a helper that has not started. Helpers spin
// for a while after each region before they block, so back-to-back regions find them awake.
// Two ways to cut a range: fixed chunks (chunk c is always [n*c/chunks, n*(c+1)/chunks), so results that depend
// on the cut, such as partial sums, do not depend on timing) and guided claims (each claim takes a share of what
// remains: long contiguous runs first, so weights stream without breaks, small pieces at the end).
// Safe to call from several threads at once (a helper busy with one caller's region leaves the other caller to do
// its region alone) and from inside a region (the nested region runs on the thread that started it).
// Glossary: n items, chunk smallest claim.
using System.Diagnostics;

namespace Quill.Kernels;

/// <summary>Dedicated spinning helper threads and the parallel loops that run on them.</summary>
internal static class WorkerPool
{
    /// <summary>How long a helper spins after a region before it blocks (a decode step's gaps are far shorter).</summary>
    private static readonly long SpinTicks = Stopwatch.Frequency / 10_000; // 100 us

    /// <summary>
    /// Multiply-adds below which a matrix-vector product (fp32 or quantized decode) runs on the calling thread alone:
    /// smaller products take a few microseconds, about what handing half of them to a helper saves.
    /// </summary>
    public const long MatVecMinWork = 1 << 15;

    /// <summary>Guided claims per thread at most: the tail of a loop goes out in pieces of n / (threads * 16).</summary>
    private const int ChunksPerThread = 16;

    private static Helper[] helpers = [];
    private static readonly Lock HelpersLock = new();

    /// <summary>Runs body(c) for every c in [0, chunks) on up to <paramref name="threads"/> threads; returns when all ran.</summary>
    public static void Chunks(int chunks, int threads, Action<int> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (chunks <= 0) return;
        if (chunks == 1 || threads <= 1)
        {
            for (int c = 0; c < chunks; c++) body(c);
            return;
        }
        Run(new Loop(chunks, 1, 0, (s, e) =>
        {
            for (int c = s; c < e; c++) body(c);
        }), Math.Min(threads, chunks));
    }

    /// <summary>
    /// Runs body(start, end) over [0, n) in guided claims of at least minChunk items on up to
    /// <paramref name="threads"/> threads. Which thread runs which piece, and where pieces are cut, varies from run
    /// to run: the body must give the same result for any cut.
    /// </summary>
    public static void Guided(int n, int minChunk, int threads, Action<int, int> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (n <= 0) return;
        minChunk = Math.Max(1, minChunk);
        if (threads <= 1 || n < 2 * minChunk)
        {
            body(0, n);
            return;
        }
        int chunk = Math.Max(minChunk, (n + threads * ChunksPerThread - 1) / (threads * ChunksPerThread));
        Run(new Loop(n, chunk, 2 * threads, body), threads);
    }

    /// <summary>
    /// The rows of several matrices (q, k, v; gate, up) as one range of four-row groups, run in guided claims:
    /// body(matrix, firstRow, endRow) for each piece of each matrix a claim covers. One thread does everything when
    /// threads &lt;= 1 or work (multiply-adds) is under <see cref="MatVecMinWork"/>.
    /// </summary>
    public static void RowGroups(ReadOnlySpan<int> rows, long work, int threads, Action<int, int, int> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        int count = rows.Length;
        var start = new int[count + 1];
        for (int i = 0; i < count; i++) start[i + 1] = start[i] + (rows[i] + 3) / 4;
        int[] rowCount = rows.ToArray();
        void Piece(int g0, int g1)
        {
            for (int m = 0; m < count; m++)
            {
                int a = Math.Max(g0, start[m]), b = Math.Min(g1, start[m + 1]);
                if (a < b) body(m, (a - start[m]) * 4, Math.Min(rowCount[m], (b - start[m]) * 4));
            }
        }
        if (threads <= 1 || work < MatVecMinWork) Piece(0, start[count]);
        else Guided(start[count], 1, threads, Piece);
    }

    private static void Run(Loop loop, int threads)
    {
        var h = Helpers(threads - 1);
        for (int t = 0; t < threads - 1; t++) h[t].Post(loop);
        loop.Work();
        loop.WaitForClaimed();
    }

    private static Helper[] Helpers(int count)
    {
        var h = Volatile.Read(ref helpers);
        if (h.Length >= count) return h;
        lock (HelpersLock)
        {
            if (helpers.Length < count)
            {
                var grown = new Helper[count];
                Array.Copy(helpers, grown, helpers.Length);
                for (int i = helpers.Length; i < count; i++) grown[i] = new Helper(i);
                Volatile.Write(ref helpers, grown);
            }
            return helpers;
        }
    }

    /// <summary>A background thread that runs posted loops; spins a little between them, then sleeps.</summary>
    private sealed class Helper
    {
        private readonly ManualResetEventSlim wake = new(false, 0);
        private Loop? pending;

        public Helper(int index)
        {
            var t = new Thread(Run) { IsBackground = true, Name = $"quill-kernel-{index}" };
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
                // spin on pause instructions (no yields: a sched_yield alone costs microseconds), clock checked now and then
                long until = Stopwatch.GetTimestamp() + SpinTicks;
                for (int i = 1; Volatile.Read(ref pending) == null; i++)
                {
                    Thread.SpinWait(4);
                    if ((i & 255) == 0 && Stopwatch.GetTimestamp() > until) break;
                }
                if (Volatile.Read(ref pending) != null) continue;
                wake.Reset();
                if (Volatile.Read(ref pending) != null) continue;
                wake.Wait();
            }
        }
    }

    // One parallel region. parts == 0: fixed claims of `chunk` items; otherwise guided: each claim takes
    // remaining / parts items (at least chunk).
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
                    int size = parts == 0 ? chunk : Math.Max(chunk, (n - start) / parts);
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

        /// <summary>Called by the caller after its own Work: every piece is claimed; wait for those still running.</summary>
        public void WaitForClaimed()
        {
            for (int i = 1; Volatile.Read(ref active) > 0; i++)
            {
                if (i < 100_000) Thread.SpinWait(4);
                else Thread.Yield(); // a helper descheduled mid-piece: let it run
            }
            if (error != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error); // the body's own exception, as if run inline
        }
    }
}
