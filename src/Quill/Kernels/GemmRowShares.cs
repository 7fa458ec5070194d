// The rows split of the packed SGEMM with the tail of a late thread's share taken over by a thread that is done.
// Each thread owns a contiguous share of C's tiles (MR rows each) and walks the product's blocks of B in order
// (a level: one KC x NC block, the same order as the one-thread loop nest), packing its own copy of each block, then
// its share in row blocks of at most MC rows from the front. A thread that has finished its share of a level takes
// half of what is left of another share at that level from the back, packs those rows of A and runs them against its
// own copy of the block, and repeats until nothing is left. So a thread held up at the start (a helper waking) or
// slowed by the host hands its last rows to the other instead of making it wait: with fixed halves the caller of a
// shakespeare-char training step waited 22-25 ms a step (about 5%) at the end of its GEMMs.
// A tile takes level p only after it has taken level p - 1 (per-tile claim and done levels), so every element of
// C sees the k blocks in the same order as on one thread: the same bits whoever runs which tile.
// Does not handle: the columns split and the shared blocks of B (GemmDriver.cs), beta (the caller applies it).
// Glossary: share = one thread's contiguous tiles; level = index of a block of B in loop order; claim = taking a
// run of tiles at a level (compare-and-swap of each tile's claimed level from p - 1 to p).
using System.Runtime.CompilerServices;

namespace Quill.Kernels;

internal static unsafe partial class GemmDriver<TKernel>
{
    /// <summary>
    /// C's rows in one share per thread (whole tiles, spread evenly), each thread packing its own copy of every block
    /// of B, and a thread that is done with a level taking the back of another share's rows at that level.
    /// </summary>
    private static void RunRowShares(GemmBlocking blocking, Operands x, bool accumulate, int threads)
    {
        var shares = new RowShares(blocking, x, accumulate, threads);
        KernelThreads.ParallelFor(threads, 1, threads, (first, last) =>
        {
            for (int t = first; t < last; t++) shares.Run(t);
        });
    }

    /// <summary>One product's shares, and per tile the last level claimed and the last level done.</summary>
    internal sealed class RowShares
    {
        private readonly GemmBlocking blocking;
        private readonly Operands x;
        private readonly bool accumulate;
        private readonly int threads, tiles, maxTiles, kcMax, ncMax;
        private readonly int[] claimed, done;
        private bool failed;

        public RowShares(GemmBlocking blocking, Operands x, bool accumulate, int threads)
        {
            this.blocking = blocking;
            this.x = x;
            this.accumulate = accumulate;
            this.threads = threads;
            tiles = (x.M + TKernel.MR - 1) / TKernel.MR;
            maxTiles = Math.Max(1, blocking.MC / TKernel.MR);
            kcMax = Math.Min(blocking.KC, x.K);
            ncMax = RoundUp(Math.Min(blocking.NC, x.N), TKernel.NR);
            claimed = new int[tiles];
            done = new int[tiles];
            Array.Fill(claimed, -1);
            Array.Fill(done, -1);
        }

        private int First(int share) => (int)((long)share * tiles / threads);

        /// <summary>Runs share `share` through every level, taking from the other shares when it is done with one.</summary>
        public void Run(int share)
        {
            float* packedA = GemmBuffers.A((nint)maxTiles * TKernel.MR * kcMax);
            float* packedB = GemmBuffers.B((nint)ncMax * kcMax);
            int first = First(share), end = First(share + 1);
            // row blocks of the share as the one-thread loop nest cuts them: no taller than MC, heights within a tile
            int own = Math.Max(1, end - first), rowBlocks = (own + maxTiles - 1) / maxTiles, blockTiles = (own + rowBlocks - 1) / rowBlocks;
            int level = 0;
            for (int jc = 0; jc < x.N; jc += blocking.NC)
            {
                for (int pc = 0; pc < x.K; pc += blocking.KC, level++)
                {
                    int nc = Math.Min(blocking.NC, x.N - jc), kc = Math.Min(blocking.KC, x.K - pc);
                    bool packed = false;
                    for (int t0 = first; t0 < end;)
                    {
                        int t1 = ClaimFront(t0, Math.Min(end, t0 + blockTiles), level);
                        if (t1 == t0) break; // the rest of the share was taken at this level
                        Level(t0, t1, level, jc, nc, pc, kc, packedA, packedB, ref packed);
                        t0 = t1;
                    }
                    for (int i = 1; i < threads; i++)
                    {
                        int other = (share + i) % threads;
                        while (ClaimBack(First(other), First(other + 1), level) is var (s0, s1) && s1 > s0)
                            Level(s0, s1, level, jc, nc, pc, kc, packedA, packedB, ref packed);
                    }
                }
            }
        }

        /// <summary>Claims tiles [t0, t1) at `level` from the front, stopping at the first one taken; returns the end.</summary>
        private int ClaimFront(int t0, int t1, int level)
        {
            int t = t0;
            while (t < t1 && Interlocked.CompareExchange(ref claimed[t], level, level - 1) == level - 1) t++;
            return t;
        }

        /// <summary>
        /// Claims half (rounded up, at most a row block) of the tiles of share [first, end) not yet claimed at `level`,
        /// from the back, if their previous level is done; returns the run, empty when there is none.
        /// </summary>
        private (int Start, int End) ClaimBack(int first, int end, int level)
        {
            int back = end;
            while (back > first && Volatile.Read(ref claimed[back - 1]) >= level) back--;
            int front = back;
            while (front > first && Volatile.Read(ref claimed[front - 1]) == level - 1 && Volatile.Read(ref done[front - 1]) == level - 1) front--;
            if (front == back) return (0, 0);
            int want = Math.Min(maxTiles, (back - front + 1) / 2), t = back;
            while (t > back - want && Interlocked.CompareExchange(ref claimed[t - 1], level, level - 1) == level - 1) t--;
            return (t, back);
        }

        /// <summary>Runs claimed tiles [t0, t1) at `level`, once each has done the level before, and marks them done.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Level(int t0, int t1, int level, int jc, int nc, int pc, int kc, float* packedA, float* packedB, ref bool packed)
        {
            if (!packed)
            {
                PackColumns(x, jc, nc, pc, kc, packedB);
                packed = true;
            }
            // a tile the other thread took at the level before may still be running there
            for (int t = t0; t < t1; t++)
            {
                for (int i = 1; Volatile.Read(ref done[t]) < level - 1; i++)
                {
                    if (Volatile.Read(ref failed)) return; // it threw: its exception ends the product
                    if (i < 100_000) Thread.SpinWait(4);
                    else Thread.Yield();
                }
            }
            try
            {
                int ic = t0 * TKernel.MR, rows = Math.Min(t1 * TKernel.MR, x.M) - ic;
                PackRows(x, ic, rows, jc, pc, kc, packedA);
                Sweep(x, accumulate, ic, rows, jc, 0, nc, pc, kc, packedA, packedB);
            }
            catch
            {
                Volatile.Write(ref failed, true);
                throw;
            }
            for (int t = t0; t < t1; t++) Volatile.Write(ref done[t], level);
        }
    }
}
