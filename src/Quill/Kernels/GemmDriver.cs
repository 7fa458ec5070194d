// The cache-blocked loop nest of the packed SGEMM on one thread: C[m, n] (+)= alpha * op(A)[m, k] · op(B)[k, n]
// for one rectangle of C. Blocks k by KC and n by NC, packs each KC x NC block of B once, then each MC x KC block
// of A, and sweeps the micro-kernel over the tiles; ragged tiles go through a scratch tile. Pack buffers are
// per thread and reused across calls. Does not handle threading, beta other than 0 or 1, or argument checks
// (see Gemm.cs).
// Glossary: MC, KC, NC = block sizes in m, k, n; MR x NR = kernel tile; ic, pc, jc = block origins; ir, jr = tile
// origins inside a block.
using System.Runtime.CompilerServices;

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

/// <summary>The single-threaded blocked SGEMM over one rectangle of C, specialised per micro-kernel.</summary>
internal static unsafe class GemmDriver<TKernel> where TKernel : IGemmMicroKernel
{
    /// <summary>
    /// C[m, n] = alpha * op(A) · op(B) (accumulate false) or C += alpha * op(A) · op(B) (accumulate true).
    /// a, b and c point at the rectangle's first element; strides are in floats. Requires m, n, k &gt; 0.
    /// </summary>
    public static void Run(
        GemmBlocking blocking, int m, int n, int k, float alpha,
        float* a, nint lda, bool transA, float* b, nint ldb, bool transB, float* c, nint ldc, bool accumulate)
    {
        int mr = TKernel.MR, nr = TKernel.NR;
        int kcMax = Math.Min(blocking.KC, k);
        int mcMax = RoundUp(Math.Min(blocking.MC, m), mr);
        int ncMax = RoundUp(Math.Min(blocking.NC, n), nr);
        float* packedA = GemmBuffers.A((nint)mcMax * kcMax);
        float* packedB = GemmBuffers.B((nint)ncMax * kcMax);
        float* tile = stackalloc float[mr * nr];

        for (int jc = 0; jc < n; jc += blocking.NC)
        {
            int nc = Math.Min(blocking.NC, n - jc);
            for (int pc = 0; pc < k; pc += blocking.KC)
            {
                int kc = Math.Min(blocking.KC, k - pc);
                bool add = accumulate || pc > 0;
                float* bBlock = transB ? b + jc * ldb + pc : b + pc * ldb + jc;
                GemmPacking.PackB<TKernel>(bBlock, ldb, transB, kc, nc, packedB);
                for (int ic = 0; ic < m; ic += blocking.MC)
                {
                    int mc = Math.Min(blocking.MC, m - ic);
                    float* aBlock = transA ? a + pc * lda + ic : a + ic * lda + pc;
                    GemmPacking.PackA<TKernel>(aBlock, lda, transA, mc, kc, alpha, packedA);
                    float* cBlock = c + ic * ldc + jc;
                    for (int jr = 0; jr < nc; jr += nr)
                    {
                        int cols = Math.Min(nr, nc - jr);
                        float* bPanel = packedB + (nint)jr * kc;
                        for (int ir = 0; ir < mc; ir += mr)
                        {
                            int rows = Math.Min(mr, mc - ir);
                            float* aPanel = packedA + (nint)ir * kc;
                            float* cTile = cBlock + ir * ldc + jr;
                            if (rows == mr && cols == nr)
                            {
                                TKernel.Run(kc, aPanel, bPanel, cTile, ldc, add);
                            }
                            else
                            {
                                TKernel.Run(kc, aPanel, bPanel, tile, nr, false);
                                MergeTile(tile, nr, cTile, ldc, rows, cols, add);
                            }
                        }
                    }
                }
            }
        }
    }

    private static void MergeTile(float* tile, int nr, float* c, nint ldc, int rows, int cols, bool add)
    {
        for (int i = 0; i < rows; i++)
        {
            float* from = tile + i * nr;
            float* to = c + i * ldc;
            if (add)
                for (int j = 0; j < cols; j++) to[j] += from[j];
            else
                for (int j = 0; j < cols; j++) to[j] = from[j];
        }
    }

    private static int RoundUp(int x, int multiple) => (x + multiple - 1) / multiple * multiple;
}
