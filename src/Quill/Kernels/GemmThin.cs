// The thin path of SGEMM for C with at most 16 rows (one-token decode, tiny batches, LoRA's rank-r products), where
// packing B would cost as much as the product: op(B) is streamed once, straight from the caller's layout, while the
// rows of C are built four at a time over each piece of B that is in cache. A transposed B ([n, k], the usual weight
// layout) gives dot products along k (Vector512, Vector256, or Vector128 on ARM64's NEON); a plain B ([k, n]) gives
// row updates along n (Vector256, or Vector128 on NEON); each loop is written once over IAttentionVector and has a
// scalar fallback. Threads take column slices from a shared counter. Does not handle more than 16 rows (the packed
// path does) or argument checks (see Gemm.cs).
// Glossary: R = rows of C (1 to 16); m, n, k as in Gemm; j = column of C; p = step along k.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Quill.Kernels;

/// <summary>SGEMM for at most <see cref="Gemm.ThinRows"/> rows of C, without packing B.</summary>
internal static unsafe class GemmThin
{
    /// <summary>Floats of B (1 MiB) below which one thread streams it all: less takes about a thread hand-off.</summary>
    private const long ParallelMinFloats = 1 << 18;

    /// <summary>Column slices per thread to aim for, so a thread slowed by other work does not hold the others up.</summary>
    private const int TasksPerThread = 4;

    /// <summary>Whether the AVX2 (Vector256 + FMA) loops run fast here.</summary>
    public static bool Avx2Supported => Vector256.IsHardwareAccelerated && Fma.IsSupported;

    /// <summary>Whether the AVX-512 dot products run fast here.</summary>
    public static bool Avx512Supported => Vector512.IsHardwareAccelerated && Avx512F.IsSupported;

    /// <summary>Whether the NEON (Vector128 with fused multiply-add) loops run here: ARM64.</summary>
    public static bool NeonSupported => AdvSimd.Arm64.IsSupported;

    /// <summary>C (+)= op(A) · op(B) for x.M &lt;= 16, with vectors no wider than isa allows.</summary>
    public static void Run(Operands x, int threads, GemmIsa isa)
    {
        if (x.M > Gemm.ThinRows)
            throw new ArgumentOutOfRangeException(nameof(x), x.M, $"The thin GEMM path takes at most {Gemm.ThinRows} rows.");
        if ((long)x.N * x.K < ParallelMinFloats) threads = 1;
        int width = Math.Max(64, (x.N + threads * TasksPerThread - 1) / (threads * TasksPerThread) + 31 & ~31);
        int tasks = (x.N + width - 1) / width;
        if (threads == 1 || tasks == 1)
        {
            RunColumns(x, PackRows(x), 0, x.N, isa);
            return;
        }
        int next = 0;
        KernelThreads.ParallelFor(Math.Min(threads, tasks), 1, (_, _) =>
        {
            float* a = PackRows(x);
            int t;
            while ((t = Interlocked.Increment(ref next) - 1) < tasks)
                RunColumns(x, a, t * width, Math.Min(x.N, (t + 1) * width), isa);
        });
    }

    /// <summary>op(A) rows in this thread's buffer, contiguous and scaled by alpha: [R, k] with row stride k.</summary>
    private static float* PackRows(Operands x)
    {
        float* a = GemmBuffers.A((nint)x.M * x.K);
        for (int i = 0; i < x.M; i++)
            for (int p = 0; p < x.K; p++)
                a[i * x.K + p] = x.Alpha * (x.TransA ? x.A[p * x.Lda + i] : x.A[i * x.Lda + p]);
        return a;
    }

    /// <summary>Columns [j0, j1) of C on the calling thread, from the packed rows a.</summary>
    private static void RunColumns(Operands x, float* a, int j0, int j1, GemmIsa isa)
    {
        int n = j1 - j0;
        float* c = x.C + j0;
        if (n <= 0 || !Gemm.PrepareC(c, x.Ldc, x.M, n, x.K, x.Alpha, x.Beta, out bool accumulate)) return;
        float* b = x.TransB ? x.B + j0 * x.Ldb : x.B + j0;
        switch (isa)
        {
            case GemmIsa.Avx512 when x.TransB: Dots<Vec512, Vector512<float>>(a, x.M, x.K, b, x.Ldb, n, c, x.Ldc, accumulate, 4); break;
            // AVX2 has 16 registers: two rows by four columns (8 sums, 4 B vectors, 1 A vector) stay in them, where four
            // rows (16 sums) spilled: 8 x 1024 x 768 ran 85-91 GFLOP/s in groups of four and 114-122 in pairs on Zen 4.
            case GemmIsa.Avx2 when x.TransB: Dots<Vec256, Vector256<float>>(a, x.M, x.K, b, x.Ldb, n, c, x.Ldc, accumulate, 2); break;
            case GemmIsa.Neon when x.TransB: Dots<Vec128, Vector128<float>>(a, x.M, x.K, b, x.Ldb, n, c, x.Ldc, accumulate, 4); break;
            // row updates in 256-bit vectors on AVX-512 too (32 registers there: four rows, no spill)
            case GemmIsa.Avx512 or GemmIsa.Avx2: RowUpdates<Vec256, Vector256<float>>(a, x.M, x.K, b, x.Ldb, n, c, x.Ldc, accumulate); break;
            case GemmIsa.Neon: RowUpdates<Vec128, Vector128<float>>(a, x.M, x.K, b, x.Ldb, n, c, x.Ldc, accumulate); break;
            default: ScalarColumns(a, x.M, x.K, b, x.Ldb, x.TransB, 0, n, c, x.Ldc, accumulate); break;
        }
    }

    /// <summary>
    /// B stored [n, k] (row stride ldb): C[i, j] (+)= dot(a[i, :], B[j, :]), four columns of C at a time so each
    /// step loads 4 B vectors and up to 4 A vectors for up to 16 FMAs. The rows of C go in groups (four, or pairs
    /// where registers are few) over the same four B rows, which the first group brought into L1: B still comes from
    /// memory once.
    /// </summary>
    private static void Dots<TOps, TV>(float* a, int r, int k, float* b, nint ldb, int n, float* c, nint ldc, bool accumulate, int group)
        where TOps : IAttentionVector<TV> where TV : struct
    {
        int kv = k / TOps.Lanes * TOps.Lanes;
        float* sums = stackalloc float[16];
        int j = 0;
        for (; j + 4 <= n && kv > 0; j += 4)
        {
            for (int i0 = 0; i0 < r; i0 += group)
            {
                int rows = Math.Min(group, r - i0);
                float* ag = a + i0 * k;
                switch (rows)
                {
                    case 1: DotBlock4<TOps, TV, Const1>(ag, k, kv, b + j * ldb, ldb, sums); break;
                    case 2: DotBlock4<TOps, TV, Const2>(ag, k, kv, b + j * ldb, ldb, sums); break;
                    case 3: DotBlock4<TOps, TV, Const3>(ag, k, kv, b + j * ldb, ldb, sums); break;
                    default: DotBlock4<TOps, TV, Const4>(ag, k, kv, b + j * ldb, ldb, sums); break;
                }
                for (int q = 0; q < 4; q++)
                {
                    float* bj = b + (j + q) * ldb;
                    for (int i = 0; i < rows; i++)
                    {
                        float s = sums[i * 4 + q];
                        for (int p = kv; p < k; p++) s += ag[i * k + p] * bj[p];
                        Store(c + (i0 + i) * ldc + j + q, s, accumulate);
                    }
                }
            }
        }
        ScalarColumns(a, r, k, b, ldb, transB: true, j, n, c, ldc, accumulate);
    }

    /// <summary>sums[i * 4 + q] = dot(a[i, 0:kv], B[q, 0:kv]) for rows i &lt; R and four B rows q; kv is whole vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotBlock4<TOps, TV, TRows>(float* a, int k, int kv, float* b, nint ldb, float* sums)
        where TOps : IAttentionVector<TV> where TV : struct where TRows : IGemmConstant
    {
        TV s00 = TOps.Zero, s01 = TOps.Zero, s02 = TOps.Zero, s03 = TOps.Zero;
        TV s10 = TOps.Zero, s11 = TOps.Zero, s12 = TOps.Zero, s13 = TOps.Zero;
        TV s20 = TOps.Zero, s21 = TOps.Zero, s22 = TOps.Zero, s23 = TOps.Zero;
        TV s30 = TOps.Zero, s31 = TOps.Zero, s32 = TOps.Zero, s33 = TOps.Zero;
        float* b0 = b, b1 = b + ldb, b2 = b + 2 * ldb, b3 = b + 3 * ldb;
        for (int p = 0; p < kv; p += TOps.Lanes)
        {
            TV v0 = TOps.Load(b0 + p), v1 = TOps.Load(b1 + p), v2 = TOps.Load(b2 + p), v3 = TOps.Load(b3 + p);
            TV x = TOps.Load(a + p);
            s00 = TOps.Fma(x, v0, s00); s01 = TOps.Fma(x, v1, s01); s02 = TOps.Fma(x, v2, s02); s03 = TOps.Fma(x, v3, s03);
            if (TRows.Value > 1)
            {
                x = TOps.Load(a + k + p);
                s10 = TOps.Fma(x, v0, s10); s11 = TOps.Fma(x, v1, s11); s12 = TOps.Fma(x, v2, s12); s13 = TOps.Fma(x, v3, s13);
            }
            if (TRows.Value > 2)
            {
                x = TOps.Load(a + 2 * k + p);
                s20 = TOps.Fma(x, v0, s20); s21 = TOps.Fma(x, v1, s21); s22 = TOps.Fma(x, v2, s22); s23 = TOps.Fma(x, v3, s23);
            }
            if (TRows.Value > 3)
            {
                x = TOps.Load(a + 3 * k + p);
                s30 = TOps.Fma(x, v0, s30); s31 = TOps.Fma(x, v1, s31); s32 = TOps.Fma(x, v2, s32); s33 = TOps.Fma(x, v3, s33);
            }
        }
        Sums<TOps, TV>(sums, s00, s01, s02, s03);
        if (TRows.Value > 1) Sums<TOps, TV>(sums + 4, s10, s11, s12, s13);
        if (TRows.Value > 2) Sums<TOps, TV>(sums + 8, s20, s21, s22, s23);
        if (TRows.Value > 3) Sums<TOps, TV>(sums + 12, s30, s31, s32, s33);
    }

    /// <summary>
    /// B stored [k, n] (row stride ldb): C[i, :] (+)= sum over p of a[i, p] * B[p, :], four vectors of C's columns
    /// at a time so each step loads 4 B vectors and broadcasts up to 4 values of A for up to 16 FMAs. More than four
    /// rows of C go in groups of four over the same strip of B, taken RowDepth steps of k at a time so that the strip
    /// the first group brought in (RowDepth x 4 vectors) is still in L2 for the others.
    /// </summary>
    private static void RowUpdates<TOps, TV>(float* a, int r, int k, float* b, nint ldb, int n, float* c, nint ldc, bool accumulate)
        where TOps : IAttentionVector<TV> where TV : struct
    {
        int width = 4 * TOps.Lanes, depth = r <= 4 ? Math.Max(k, 1) : RowDepth, j = 0;
        for (; j + width <= n; j += width)
        {
            for (int p0 = 0; p0 < k; p0 += depth)
            {
                int kk = Math.Min(depth, k - p0);
                bool add = accumulate || p0 > 0;
                for (int i0 = 0; i0 < r; i0 += 4)
                {
                    float* ag = a + i0 * k + p0, bg = b + p0 * ldb + j, cg = c + i0 * ldc + j;
                    switch (Math.Min(4, r - i0))
                    {
                        case 1: RowBlock4<TOps, TV, Const1>(ag, k, kk, bg, ldb, cg, ldc, add); break;
                        case 2: RowBlock4<TOps, TV, Const2>(ag, k, kk, bg, ldb, cg, ldc, add); break;
                        case 3: RowBlock4<TOps, TV, Const3>(ag, k, kk, bg, ldb, cg, ldc, add); break;
                        default: RowBlock4<TOps, TV, Const4>(ag, k, kk, bg, ldb, cg, ldc, add); break;
                    }
                }
            }
        }
        ScalarColumns(a, r, k, b, ldb, transB: false, j, n, c, ldc, accumulate);
    }

    /// <summary>Steps of k per strip of B when more than four rows of C share it (128 KiB of B with 256-bit vectors).</summary>
    private const int RowDepth = 1024;

    /// <summary>Four vectors of columns of C for R rows of A (rows lda apart), over k steps.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RowBlock4<TOps, TV, TRows>(float* a, int lda, int k, float* b, nint ldb, float* c, nint ldc, bool accumulate)
        where TOps : IAttentionVector<TV> where TV : struct where TRows : IGemmConstant
    {
        int w = TOps.Lanes;
        TV s00 = TOps.Zero, s01 = TOps.Zero, s02 = TOps.Zero, s03 = TOps.Zero;
        TV s10 = TOps.Zero, s11 = TOps.Zero, s12 = TOps.Zero, s13 = TOps.Zero;
        TV s20 = TOps.Zero, s21 = TOps.Zero, s22 = TOps.Zero, s23 = TOps.Zero;
        TV s30 = TOps.Zero, s31 = TOps.Zero, s32 = TOps.Zero, s33 = TOps.Zero;
        for (int p = 0; p < k; p++)
        {
            float* bp = b + p * ldb;
            TV v0 = TOps.Load(bp), v1 = TOps.Load(bp + w), v2 = TOps.Load(bp + 2 * w), v3 = TOps.Load(bp + 3 * w);
            TV x = TOps.Broadcast(a[p]);
            s00 = TOps.Fma(x, v0, s00); s01 = TOps.Fma(x, v1, s01); s02 = TOps.Fma(x, v2, s02); s03 = TOps.Fma(x, v3, s03);
            if (TRows.Value > 1)
            {
                x = TOps.Broadcast(a[lda + p]);
                s10 = TOps.Fma(x, v0, s10); s11 = TOps.Fma(x, v1, s11); s12 = TOps.Fma(x, v2, s12); s13 = TOps.Fma(x, v3, s13);
            }
            if (TRows.Value > 2)
            {
                x = TOps.Broadcast(a[2 * lda + p]);
                s20 = TOps.Fma(x, v0, s20); s21 = TOps.Fma(x, v1, s21); s22 = TOps.Fma(x, v2, s22); s23 = TOps.Fma(x, v3, s23);
            }
            if (TRows.Value > 3)
            {
                x = TOps.Broadcast(a[3 * lda + p]);
                s30 = TOps.Fma(x, v0, s30); s31 = TOps.Fma(x, v1, s31); s32 = TOps.Fma(x, v2, s32); s33 = TOps.Fma(x, v3, s33);
            }
        }
        StoreRow<TOps, TV>(c, s00, s01, s02, s03, accumulate);
        if (TRows.Value > 1) StoreRow<TOps, TV>(c + ldc, s10, s11, s12, s13, accumulate);
        if (TRows.Value > 2) StoreRow<TOps, TV>(c + 2 * ldc, s20, s21, s22, s23, accumulate);
        if (TRows.Value > 3) StoreRow<TOps, TV>(c + 3 * ldc, s30, s31, s32, s33, accumulate);
    }

    /// <summary>Columns [j, n) of C one element at a time: the scalar path, and the vector paths' last columns.</summary>
    private static void ScalarColumns(float* a, int r, int k, float* b, nint ldb, bool transB, int j, int n, float* c, nint ldc, bool accumulate)
    {
        for (; j < n; j++)
        {
            for (int i = 0; i < r; i++)
            {
                float s = 0f;
                if (transB) for (int p = 0; p < k; p++) s += a[i * k + p] * b[j * ldb + p];
                else for (int p = 0; p < k; p++) s += a[i * k + p] * b[p * ldb + j];
                Store(c + i * ldc + j, s, accumulate);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow<TOps, TV>(float* c, TV v0, TV v1, TV v2, TV v3, bool accumulate)
        where TOps : IAttentionVector<TV> where TV : struct
    {
        int w = TOps.Lanes;
        if (accumulate)
        {
            v0 = TOps.Add(v0, TOps.Load(c)); v1 = TOps.Add(v1, TOps.Load(c + w));
            v2 = TOps.Add(v2, TOps.Load(c + 2 * w)); v3 = TOps.Add(v3, TOps.Load(c + 3 * w));
        }
        TOps.Store(c, v0); TOps.Store(c + w, v1); TOps.Store(c + 2 * w, v2); TOps.Store(c + 3 * w, v3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Sums<TOps, TV>(float* sums, TV s0, TV s1, TV s2, TV s3) where TOps : IAttentionVector<TV> where TV : struct
    {
        sums[0] = TOps.SumAcross(s0);
        sums[1] = TOps.SumAcross(s1);
        sums[2] = TOps.SumAcross(s2);
        sums[3] = TOps.SumAcross(s3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, float value, bool accumulate) => *c = accumulate ? *c + value : value;
}
