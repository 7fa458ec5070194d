// The cache-blocked loop nest of the packed SGEMM: C[m, n] (+)= alpha * op(A)[m, k] · op(B)[k, n].
// With enough rows each thread runs the loop nest over its own share of C's rows, packing its own B, and a thread
// that is done takes the back of a late one's share (RunRowShares, GemmRowShares.cs); with enough columns instead,
// over its own columns, packing its own A (RunColumns).
// Otherwise it blocks k by KC and n by NC; the threads pack each KC x NC block of B together into one shared buffer, then take
// tasks (an MC-row block of C, or a column slice of one when there are few row blocks) from per-row-block counters,
// each thread starting at its own row block, pack their MC x KC block of A into a per-thread buffer and sweep the
// micro-kernel over its tiles. Ragged tiles go through a scratch tile. Pack buffers are pinned, 64-byte aligned and
// reused across calls. Does not handle beta other than 0 or 1, the thin path or argument checks (see Gemm.cs).
// Glossary: MC, KC, NC = block sizes in m, k, n; MR x NR = kernel tile; ic, pc, jc = block origins; ir, jr = tile
// origins inside a block.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Quill.Kernels;

/// <summary>Block sizes for one micro-kernel, chosen for a core with ~48 KiB L1, ~1 MiB L2 and a shared L3.</summary>
internal readonly record struct GemmBlocking(int MC, int KC, int NC);

/// <summary>Per-thread pack buffers (pinned, 64-byte aligned), grown on demand and kept for the next call.</summary>
internal static unsafe class GemmBuffers
{
    [ThreadStatic] private static float[]? packA;
    [ThreadStatic] private static float[]? packB;

    public static float* A(nint count) => Get(ref packA, count);

    public static float* B(nint count) => Get(ref packB, count);

    private static float* Get(ref float[]? buffer, nint count)
    {
        if (buffer == null || buffer.Length < count + 16)
            buffer = GC.AllocateUninitializedArray<float>(checked((int)count + 16), pinned: true);
        nint address = (nint)Unsafe.AsPointer(ref buffer[0]);
        return (float*)((address + 63) & ~(nint)63);
    }
}

/// <summary>The blocked, multithreaded SGEMM, specialised per micro-kernel.</summary>
internal static unsafe partial class GemmDriver<TKernel> where TKernel : IGemmMicroKernel
{
    /// <summary>Tasks per thread to aim for, so a thread slowed by other work does not hold the others up.</summary>
    private const int TasksPerThread = 3;

    /// <summary>
    /// Floating-point operations in one KC x NC block below which one thread does the block (about 16 us of work
    /// on one Zen 5 core): a hand-off to the thread pool costs from 2 to 20 us.
    /// </summary>
    private const double ParallelMinFlops = 4e6;

    /// <summary>Floats of a packed B block below which one thread packs it.</summary>
    private const long ParallelPackMinFloats = 1 << 15;

    /// <summary>
    /// C = alpha * op(A) · op(B) (accumulate false) or C += alpha * op(A) · op(B) (accumulate true) on up to
    /// `threads` threads. Requires m, n, k &gt; 0.
    /// </summary>
    public static void Run(GemmBlocking blocking, Operands x, bool accumulate, int threads)
    {
        int mr = TKernel.MR, nr = TKernel.NR;
        if (threads > 1 && Split(x, threads) is var split && split != SplitKind.None)
        {
            // rows: each row's sums are folded from the packed A of whichever thread runs it
            if (split == SplitKind.Rows)
            {
                RunRowShares(blocking, x, accumulate, threads);
                return;
            }
            // columns: every thread packs all of A, so the row sums are folded apart
            if (x.RowSums != null) x = SumRowsApart(x);
            RunColumns(blocking, x, accumulate, threads);
            return;
        }
        // threads sharing blocks of A may pack one twice: row sums from the packed copy on one thread only
        if (threads > 1 && x.RowSums != null) x = SumRowsApart(x);
        // Row blocks no taller than MC, as many as a multiple of the threads when there are at least as many blocks
        // as threads, the tiles spread over them evenly (heights differ by one tile at most). With 2,048 rows, MC 96
        // and 6-row tiles, equal-height blocks were 21 of 96 rows and one of 32, and the thread that drew the short
        // one waited for the other at the end of every k block: 3% of a two-thread product.
        int tiles = (x.M + mr - 1) / mr, maxTiles = Math.Max(1, blocking.MC / mr);
        int rowBlocks = (tiles + maxTiles - 1) / maxTiles;
        if (threads > 1 && rowBlocks >= threads) rowBlocks = Math.Min(tiles, RoundUp(rowBlocks, threads));
        int mc = (tiles + rowBlocks - 1) / rowBlocks * mr;
        int kcMax = Math.Min(blocking.KC, x.K);
        int ncMax = RoundUp(Math.Min(blocking.NC, x.N), nr);
        var job = new Job(x, mc, tiles, rowBlocks, GemmBuffers.B((nint)ncMax * kcMax), accumulate);
        for (int jc = 0; jc < x.N; jc += blocking.NC)
        {
            for (int pc = 0; pc < x.K; pc += blocking.KC)
            {
                int nc = Math.Min(blocking.NC, x.N - jc), kc = Math.Min(blocking.KC, x.K - pc);
                int t = 2.0 * x.M * nc * kc < ParallelMinFlops ? 1 : threads;
                job.Block(jc, nc, pc, kc, t);
                if (t == 1 || (long)nc * kc < ParallelPackMinFloats) job.PackB(0, job.Panels);
                else KernelThreads.ParallelFor(job.Panels, (job.Panels + t - 1) / t, job.PackB);
                if (t == 1 || job.Tasks == 1) job.RunTasks(0, job.Tasks);
                else job.RunShared(Math.Min(t, job.Tasks));
            }
        }
    }

    /// <summary>
    /// Rows (or columns) of C a thread must get before each thread packs its own copy of B (or of A): every thread then
    /// reads all of that operand, one float per 2 x rows multiply-adds, which costs too much when it comes from memory
    /// for few rows (a 128-token prefill of stories110M's f32 weights, 64 rows a thread: 8-10% slower than sharing B).
    /// </summary>
    private const int SplitMin = 128;

    private enum SplitKind { None, Rows, Columns }

    /// <summary>
    /// Whether the threads should each take their own rows or columns of C (RunRowShares, RunColumns) instead of sharing every block of
    /// B: the product is worth several threads, each gets at least SplitMin rows (columns) and two tiles (panels), and
    /// whole tiles spread over the threads leave none of them more than 10% idle. Rows, where every thread packs all
    /// of B (K x N floats), unless columns, where every thread packs all of A (M x K), copy less. Measured on Zen 4
    /// (two threads, alternating in one process): 3-10% faster for M 1,024-2,048 with N and K 384-50,304, 20-30% for
    /// the weight gradients with M 256-384 (256x256x4096 TN 131 -> 170 GFLOP/s), within 1% either way on the lm
    /// head's forward and weight gradient.
    /// </summary>
    private static SplitKind Split(Operands x, int threads)
    {
        if (2.0 * x.M * x.N * x.K < ParallelMinFlops * threads) return SplitKind.None;
        bool rows = Even(x.M, TKernel.MR, threads), columns = Even(x.N, TKernel.NR, threads);
        if (rows && (!columns || x.M >= x.N)) return SplitKind.Rows;
        return columns ? SplitKind.Columns : SplitKind.None;
    }

    /// <summary>Whether `length` cut into whole units of `unit` gives each thread at least SplitMin and two units, within 10%.</summary>
    private static bool Even(int length, int unit, int threads)
    {
        int units = (length + unit - 1) / unit;
        if (length < SplitMin * threads || units < 2 * threads) return false;
        int most = (units + threads - 1) / threads;
        return units >= 0.9 * most * threads;
    }

    /// <summary>
    /// Each thread takes its own share of C's columns (whole panels) and runs the one-thread loop nest over them,
    /// packing its own copy of all of A, so no thread waits for another until the end (sharing B costs two waits per
    /// block of B, each for the slower thread). Each element of C sees the same k blocks in the same order as on one
    /// thread, so the result is bit for bit the same. (Rows go to RunRowShares, where a thread that is done takes
    /// the back of a late one's share.)
    /// </summary>
    private static void RunColumns(GemmBlocking blocking, Operands x, bool accumulate, int threads)
    {
        int panels = (x.N + TKernel.NR - 1) / TKernel.NR;
        KernelThreads.ParallelFor(threads, 1, threads, (first, last) =>
        {
            for (int t = first; t < last; t++)
            {
                int j0 = (int)((long)t * panels / threads) * TKernel.NR, j1 = Math.Min((int)((long)(t + 1) * panels / threads) * TKernel.NR, x.N);
                if (j1 > j0) Run(blocking, x.Columns(j0, j1), accumulate, 1);
            }
        });
    }

    private static int RoundUp(int x, int multiple) => (x + multiple - 1) / multiple * multiple;

    /// <summary>Folds op(A)'s row sums in a pass of their own, and returns the product without them.</summary>
    private static Operands SumRowsApart(Operands x)
    {
        Gemm.SumRows(x);
        return x with { RowSums = null };
    }

    /// <summary>One call's state, shared by its threads; Block moves it to the next KC x NC block of B.</summary>
    /// <remarks>mc is the tallest row block's height (the A pack buffer's rows); row block r holds tiles
    /// [r * tiles / rowBlocks, (r + 1) * tiles / rowBlocks).</remarks>
    private sealed class Job(Operands x, int mc, int tiles, int rowBlocks, float* packedB, bool accumulate)
    {
        private readonly int[] nextSlice = new int[rowBlocks];
        private int jc, nc, pc, kc, slices, panelsPerSlice, workers;

        /// <summary>NR-column panels in the current block of B.</summary>
        public int Panels { get; private set; }

        /// <summary>Tasks in the current block: row blocks times column slices.</summary>
        public int Tasks => rowBlocks * slices;

        /// <summary>
        /// Moves to block [pc, pc + kc) x [jc, jc + nc) of B. With several threads and few row blocks, the columns
        /// are cut into slices so there are about TasksPerThread tasks per thread.
        /// </summary>
        public void Block(int jc, int nc, int pc, int kc, int threads)
        {
            this.jc = jc;
            this.nc = nc;
            this.pc = pc;
            this.kc = kc;
            Panels = (nc + TKernel.NR - 1) / TKernel.NR;
            int wanted = threads == 1 ? 1 : Math.Clamp((TasksPerThread * threads + rowBlocks - 1) / rowBlocks, 1, Panels);
            panelsPerSlice = (Panels + wanted - 1) / wanted;
            slices = (Panels + panelsPerSlice - 1) / panelsPerSlice;
            Array.Clear(nextSlice);
        }

        /// <summary>Packs B panels [first, last) of the current block into the shared buffer.</summary>
        public void PackB(int first, int last)
        {
            int nr = TKernel.NR;
            int j0 = first * nr, j1 = Math.Min(nc, last * nr);
            PackColumns(x, jc + j0, j1 - j0, pc, kc, packedB + (nint)j0 * kc);
        }

        /// <summary>Runs tasks [first, last) on this thread.</summary>
        public void RunTasks(int first, int last)
        {
            float* packedA = GemmBuffers.A((nint)mc * kc);
            int packedRow = -1;
            for (int t = first; t < last; t++) RunTask(t / slices, t % slices, packedA, ref packedRow);
        }

        /// <summary>Runs the current block's tasks on `threads` threads, taking slices from per-row-block counters.</summary>
        public void RunShared(int threads)
        {
            workers = threads;
            KernelThreads.ParallelFor(threads, 1, TakeTasks);
        }

        /// <summary>
        /// Thread `thread` (the ParallelFor range counts threads) starts at its own row block (threads spread evenly
        /// over the row blocks) and takes that block's column slices until none is left, then moves on to the next
        /// row block. So with as many threads as row blocks (a weight gradient with M = 256 on two threads) each
        /// thread packs its block of A once, and a thread slowed by other work leaves its slices to the others, who
        /// pack that block once more. Which thread runs a task never changes the result: each element of C is one
        /// task's, in the same k order.
        /// </summary>
        private void TakeTasks(int thread, int unusedLast)
        {
            float* packedA = GemmBuffers.A((nint)mc * kc);
            int packedRow = -1, start = (int)((long)thread * rowBlocks / workers);
            for (int i = 0; i < rowBlocks; i++)
            {
                int block = (start + i) % rowBlocks, slice;
                while ((slice = Interlocked.Increment(ref nextSlice[block]) - 1) < slices) RunTask(block, slice, packedA, ref packedRow);
            }
        }

        /// <summary>
        /// Runs column slice `slice` of row block `rowBlock`: packs that block of A (unless this thread's previous
        /// task already did) and runs every tile of the slice.
        /// </summary>
        private void RunTask(int rowBlock, int slice, float* packedA, ref int packedRow)
        {
            int mr = TKernel.MR;
            int ic = (int)((long)rowBlock * tiles / rowBlocks) * mr;
            int rows = Math.Min((int)((long)(rowBlock + 1) * tiles / rowBlocks) * mr, x.M) - ic;
            if (ic != packedRow)
            {
                PackRows(x, ic, rows, jc, pc, kc, packedA);
                packedRow = ic;
            }
            int j0 = slice * panelsPerSlice * TKernel.NR, j1 = Math.Min(nc, j0 + panelsPerSlice * TKernel.NR);
            Sweep(x, accumulate, ic, rows, jc, j0, j1, pc, kc, packedA, packedB);
        }
    }

    /// <summary>
    /// Packs rows [ic, ic + rows) of op(A)'s k block [pc, pc + kc) into packedA; when the product folds op(A)'s row
    /// sums, adds this block's (only for the first block of B's columns, so each row block and k block is folded once).
    /// </summary>
    private static void PackRows(in Operands x, int ic, int rows, int jc, int pc, int kc, float* packedA)
    {
        float* a = x.TransA ? x.A + pc * x.Lda + ic : x.A + ic * x.Lda + pc;
        GemmPacking.PackA<TKernel>(a, x.Lda, x.TransA, rows, kc, x.Alpha, packedA);
        if (x.RowSums != null && jc == 0) GemmPacking.SumPanels<TKernel>(packedA, rows, kc, x.RowSums + ic);
    }

    /// <summary>Packs columns [j, j + cols) of op(B)'s k block [pc, pc + kc) into NR-column panels at packedB.</summary>
    private static void PackColumns(in Operands x, int j, int cols, int pc, int kc, float* packedB)
    {
        float* b = x.TransB ? x.B + j * x.Ldb + pc : x.B + pc * x.Ldb + j;
        GemmPacking.PackB<TKernel>(b, x.Ldb, x.TransB, kc, cols, packedB);
    }

    /// <summary>
    /// Runs the tiles of rows [ic, ic + rows) (packed in packedA) against columns [j0, j1) of the packed block of B
    /// at [pc, pc + kc) x [jc, ...): each tile of C is stored (first k block of a product that does not accumulate) or
    /// added to, with the bias added on the first k block.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    [SkipLocalsInit]
    private static void Sweep(in Operands x, bool accumulate, int ic, int rows, int jc, int j0, int j1, int pc, int kc,
        float* packedA, float* packedB)
    {
        int mr = TKernel.MR, nr = TKernel.NR;
        bool add = accumulate || pc > 0;
        // the bias: added in registers on whole tiles by a kernel that can (AddsBias), otherwise seeded into C just
        // before the product
        float* bias = pc == 0 && x.Bias != null ? x.Bias + jc : null;
        float* tile = stackalloc float[mr * nr];
        float* cBlock = x.C + ic * x.Ldc + jc;
        for (int jr = j0; jr < j1; jr += nr)
        {
            int cols = Math.Min(nr, j1 - jr);
            float* bPanel = packedB + (nint)jr * kc;
            for (int ir = 0; ir < rows; ir += mr)
            {
                int tileRows = Math.Min(mr, rows - ir);
                float* aPanel = packedA + (nint)ir * kc;
                float* cTile = cBlock + ir * x.Ldc + jr;
                bool whole = tileRows == mr && cols == nr;
                bool seed = bias != null && !(whole && TKernel.AddsBias);
                if (seed) Gemm.AddBias(cTile, x.Ldc, tileRows, cols, bias + jr, add);
                if (whole)
                {
                    TKernel.Run(kc, aPanel, bPanel, cTile, x.Ldc, add || seed, bias == null || seed ? null : bias + jr);
                }
                else
                {
                    TKernel.RunPartial(tileRows, cols, kc, aPanel, bPanel, tile);
                    MergeTile(tile, nr, cTile, x.Ldc, tileRows, cols, add || seed);
                }
            }
        }
    }

    /// <summary>Stores or adds rows x cols of the scratch tile (row stride nr) into C.</summary>
    private static void MergeTile(float* tile, int nr, float* c, nint ldc, int rows, int cols, bool add)
    {
        for (int i = 0; i < rows; i++)
        {
            float* from = tile + i * nr;
            float* to = c + i * ldc;
            int j = 0;
            for (; j + 4 <= cols; j += 4)
            {
                Vector128<float> v = Vector128.Load(from + j);
                if (add) v += Vector128.Load(to + j);
                v.Store(to + j);
            }
            for (; j < cols; j++) to[j] = add ? to[j] + from[j] : from[j];
        }
    }
}
