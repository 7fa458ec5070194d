// The thin path of SGEMM for C with at most 16 rows (one-token decode, tiny batches, LoRA's rank-r products), where
// packing B would cost as much as the product: op(B) is streamed once, straight from the caller's layout, while the
// rows of C are built four at a time over each piece of B that is in cache. A transposed B ([n, k], the usual weight
// layout) gives dot products along k (Vector512 or Vector256); a plain B ([k, n]) gives row updates along n
// (Vector256); both have scalar fallbacks. Threads take column slices from a shared counter. Does not handle more
// than 16 rows (the packed path does) or argument checks (see Gemm.cs).
// Glossary: R = rows of C (1 to 16); m, n, k as in Gemm; j = column of C; p = step along k.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
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
        if (x.TransB) Dots(a, x.M, x.K, x.B + j0 * x.Ldb, x.Ldb, n, c, x.Ldc, accumulate, isa);
        else RowUpdates(a, x.M, x.K, x.B + j0, x.Ldb, n, c, x.Ldc, accumulate, isa);
    }

    /// <summary>
    /// B stored [n, k] (row stride ldb): C[i, j] (+)= dot(a[i, :], B[j, :]), four columns of C at a time so each
    /// step loads 4 B vectors and up to 4 A vectors for up to 16 FMAs. The rows of C go in groups of four (pairs on
    /// AVX2) over the same four B rows, which the first group brought into L1: B still comes from memory once.
    /// </summary>
    private static void Dots(float* a, int r, int k, float* b, nint ldb, int n, float* c, nint ldc, bool accumulate, GemmIsa isa)
    {
        int kv = isa == GemmIsa.Avx512 ? k & ~15 : isa == GemmIsa.Avx2 ? k & ~7 : 0;
        float* sums = stackalloc float[16];
        // AVX2 has 16 registers: two rows by four columns (8 sums, 4 B vectors, 1 A vector) stay in them, where four
        // rows (16 sums) spilled: 8 x 1024 x 768 ran 85-91 GFLOP/s in groups of four and 114-122 in pairs on Zen 4.
        int group = isa == GemmIsa.Avx2 ? 2 : 4;
        int j = 0;
        for (; j + 4 <= n && kv > 0; j += 4)
        {
            for (int i0 = 0; i0 < r; i0 += group)
            {
                int rows = Math.Min(group, r - i0);
                float* ag = a + i0 * k;
                DotGroup(rows, ag, k, kv, b + j * ldb, ldb, sums, isa);
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
        for (; j < n; j++)
        {
            float* bj = b + j * ldb;
            for (int i = 0; i < r; i++)
            {
                float s = 0f;
                for (int p = 0; p < k; p++) s += a[i * k + p] * bj[p];
                Store(c + i * ldc + j, s, accumulate);
            }
        }
    }

    /// <summary>DotBlock4 for a group of 1 to 4 rows of A.</summary>
    private static void DotGroup(int rows, float* a, int k, int kv, float* b, nint ldb, float* sums, GemmIsa isa)
    {
        bool wide = isa == GemmIsa.Avx512;
        switch (rows)
        {
            case 1: if (wide) DotBlock4Wide<Const1>(a, k, kv, b, ldb, sums); else DotBlock4<Const1>(a, k, kv, b, ldb, sums); break;
            case 2: if (wide) DotBlock4Wide<Const2>(a, k, kv, b, ldb, sums); else DotBlock4<Const2>(a, k, kv, b, ldb, sums); break;
            case 3: if (wide) DotBlock4Wide<Const3>(a, k, kv, b, ldb, sums); else DotBlock4<Const3>(a, k, kv, b, ldb, sums); break;
            default: if (wide) DotBlock4Wide<Const4>(a, k, kv, b, ldb, sums); else DotBlock4<Const4>(a, k, kv, b, ldb, sums); break;
        }
    }

    /// <summary>sums[i * 4 + q] = dot(a[i, 0:kv], B[q, 0:kv]) for rows i &lt; R and four B rows q.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotBlock4<TRows>(float* a, int k, int kv, float* b, nint ldb, float* sums) where TRows : IGemmConstant
    {
        Vector256<float> s00 = default, s01 = default, s02 = default, s03 = default;
        Vector256<float> s10 = default, s11 = default, s12 = default, s13 = default;
        Vector256<float> s20 = default, s21 = default, s22 = default, s23 = default;
        Vector256<float> s30 = default, s31 = default, s32 = default, s33 = default;
        float* b0 = b, b1 = b + ldb, b2 = b + 2 * ldb, b3 = b + 3 * ldb;
        for (int p = 0; p < kv; p += 8)
        {
            Vector256<float> v0 = Vector256.Load(b0 + p), v1 = Vector256.Load(b1 + p);
            Vector256<float> v2 = Vector256.Load(b2 + p), v3 = Vector256.Load(b3 + p);
            Vector256<float> x = Vector256.Load(a + p);
            s00 = Fma.MultiplyAdd(x, v0, s00); s01 = Fma.MultiplyAdd(x, v1, s01);
            s02 = Fma.MultiplyAdd(x, v2, s02); s03 = Fma.MultiplyAdd(x, v3, s03);
            if (TRows.Value > 1)
            {
                x = Vector256.Load(a + k + p);
                s10 = Fma.MultiplyAdd(x, v0, s10); s11 = Fma.MultiplyAdd(x, v1, s11);
                s12 = Fma.MultiplyAdd(x, v2, s12); s13 = Fma.MultiplyAdd(x, v3, s13);
            }
            if (TRows.Value > 2)
            {
                x = Vector256.Load(a + 2 * k + p);
                s20 = Fma.MultiplyAdd(x, v0, s20); s21 = Fma.MultiplyAdd(x, v1, s21);
                s22 = Fma.MultiplyAdd(x, v2, s22); s23 = Fma.MultiplyAdd(x, v3, s23);
            }
            if (TRows.Value > 3)
            {
                x = Vector256.Load(a + 3 * k + p);
                s30 = Fma.MultiplyAdd(x, v0, s30); s31 = Fma.MultiplyAdd(x, v1, s31);
                s32 = Fma.MultiplyAdd(x, v2, s32); s33 = Fma.MultiplyAdd(x, v3, s33);
            }
        }
        Sums(sums, s00, s01, s02, s03);
        if (TRows.Value > 1) Sums(sums + 4, s10, s11, s12, s13);
        if (TRows.Value > 2) Sums(sums + 8, s20, s21, s22, s23);
        if (TRows.Value > 3) Sums(sums + 12, s30, s31, s32, s33);
    }

    /// <summary>DotBlock4 on AVX-512: kv is a multiple of 16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotBlock4Wide<TRows>(float* a, int k, int kv, float* b, nint ldb, float* sums) where TRows : IGemmConstant
    {
        Vector512<float> s00 = default, s01 = default, s02 = default, s03 = default;
        Vector512<float> s10 = default, s11 = default, s12 = default, s13 = default;
        Vector512<float> s20 = default, s21 = default, s22 = default, s23 = default;
        Vector512<float> s30 = default, s31 = default, s32 = default, s33 = default;
        float* b0 = b, b1 = b + ldb, b2 = b + 2 * ldb, b3 = b + 3 * ldb;
        for (int p = 0; p < kv; p += 16)
        {
            Vector512<float> v0 = Vector512.Load(b0 + p), v1 = Vector512.Load(b1 + p);
            Vector512<float> v2 = Vector512.Load(b2 + p), v3 = Vector512.Load(b3 + p);
            Vector512<float> x = Vector512.Load(a + p);
            s00 = Avx512F.FusedMultiplyAdd(x, v0, s00); s01 = Avx512F.FusedMultiplyAdd(x, v1, s01);
            s02 = Avx512F.FusedMultiplyAdd(x, v2, s02); s03 = Avx512F.FusedMultiplyAdd(x, v3, s03);
            if (TRows.Value > 1)
            {
                x = Vector512.Load(a + k + p);
                s10 = Avx512F.FusedMultiplyAdd(x, v0, s10); s11 = Avx512F.FusedMultiplyAdd(x, v1, s11);
                s12 = Avx512F.FusedMultiplyAdd(x, v2, s12); s13 = Avx512F.FusedMultiplyAdd(x, v3, s13);
            }
            if (TRows.Value > 2)
            {
                x = Vector512.Load(a + 2 * k + p);
                s20 = Avx512F.FusedMultiplyAdd(x, v0, s20); s21 = Avx512F.FusedMultiplyAdd(x, v1, s21);
                s22 = Avx512F.FusedMultiplyAdd(x, v2, s22); s23 = Avx512F.FusedMultiplyAdd(x, v3, s23);
            }
            if (TRows.Value > 3)
            {
                x = Vector512.Load(a + 3 * k + p);
                s30 = Avx512F.FusedMultiplyAdd(x, v0, s30); s31 = Avx512F.FusedMultiplyAdd(x, v1, s31);
                s32 = Avx512F.FusedMultiplyAdd(x, v2, s32); s33 = Avx512F.FusedMultiplyAdd(x, v3, s33);
            }
        }
        Sums(sums, s00, s01, s02, s03);
        if (TRows.Value > 1) Sums(sums + 4, s10, s11, s12, s13);
        if (TRows.Value > 2) Sums(sums + 8, s20, s21, s22, s23);
        if (TRows.Value > 3) Sums(sums + 12, s30, s31, s32, s33);
    }

    /// <summary>
    /// B stored [k, n] (row stride ldb): C[i, :] (+)= sum over p of a[i, p] * B[p, :], 32 columns of C at a time so
    /// each step loads 4 B vectors and broadcasts up to 4 values of A for up to 16 FMAs. More than four rows of C go
    /// in groups of four over the same strip of B, taken RowDepth steps of k at a time so that the strip the first
    /// group brought in (RowDepth x 32 floats) is still in L2 for the others.
    /// </summary>
    private static void RowUpdates(float* a, int r, int k, float* b, nint ldb, int n, float* c, nint ldc, bool accumulate, GemmIsa isa)
    {
        int j = 0;
        if (isa != GemmIsa.Scalar)
        {
            int depth = r <= 4 ? Math.Max(k, 1) : RowDepth;
            for (; j + 32 <= n; j += 32)
            {
                for (int p0 = 0; p0 < k; p0 += depth)
                {
                    int kk = Math.Min(depth, k - p0);
                    bool add = accumulate || p0 > 0;
                    for (int i0 = 0; i0 < r; i0 += 4)
                        RowGroup(Math.Min(4, r - i0), a + i0 * k + p0, k, kk, b + p0 * ldb + j, ldb, c + i0 * ldc + j, ldc, add);
                }
            }
        }
        for (; j < n; j++)
        {
            for (int i = 0; i < r; i++)
            {
                float s = 0f;
                for (int p = 0; p < k; p++) s += a[i * k + p] * b[p * ldb + j];
                Store(c + i * ldc + j, s, accumulate);
            }
        }
    }

    /// <summary>Steps of k per strip of B when more than four rows of C share it (128 KiB of B).</summary>
    private const int RowDepth = 1024;

    /// <summary>RowBlock32 for a group of 1 to 4 rows of A (rows lda apart), over kk steps of k.</summary>
    private static void RowGroup(int rows, float* a, int lda, int kk, float* b, nint ldb, float* c, nint ldc, bool accumulate)
    {
        switch (rows)
        {
            case 1: RowBlock32<Const1>(a, lda, kk, b, ldb, c, ldc, accumulate); break;
            case 2: RowBlock32<Const2>(a, lda, kk, b, ldb, c, ldc, accumulate); break;
            case 3: RowBlock32<Const3>(a, lda, kk, b, ldb, c, ldc, accumulate); break;
            default: RowBlock32<Const4>(a, lda, kk, b, ldb, c, ldc, accumulate); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RowBlock32<TRows>(float* a, int lda, int k, float* b, nint ldb, float* c, nint ldc, bool accumulate)
        where TRows : IGemmConstant
    {
        Vector256<float> s00 = default, s01 = default, s02 = default, s03 = default;
        Vector256<float> s10 = default, s11 = default, s12 = default, s13 = default;
        Vector256<float> s20 = default, s21 = default, s22 = default, s23 = default;
        Vector256<float> s30 = default, s31 = default, s32 = default, s33 = default;
        for (int p = 0; p < k; p++)
        {
            float* bp = b + p * ldb;
            Vector256<float> v0 = Vector256.Load(bp), v1 = Vector256.Load(bp + 8);
            Vector256<float> v2 = Vector256.Load(bp + 16), v3 = Vector256.Load(bp + 24);
            Vector256<float> x = Vector256.Create(a[p]);
            s00 = Fma.MultiplyAdd(x, v0, s00); s01 = Fma.MultiplyAdd(x, v1, s01);
            s02 = Fma.MultiplyAdd(x, v2, s02); s03 = Fma.MultiplyAdd(x, v3, s03);
            if (TRows.Value > 1)
            {
                x = Vector256.Create(a[lda + p]);
                s10 = Fma.MultiplyAdd(x, v0, s10); s11 = Fma.MultiplyAdd(x, v1, s11);
                s12 = Fma.MultiplyAdd(x, v2, s12); s13 = Fma.MultiplyAdd(x, v3, s13);
            }
            if (TRows.Value > 2)
            {
                x = Vector256.Create(a[2 * lda + p]);
                s20 = Fma.MultiplyAdd(x, v0, s20); s21 = Fma.MultiplyAdd(x, v1, s21);
                s22 = Fma.MultiplyAdd(x, v2, s22); s23 = Fma.MultiplyAdd(x, v3, s23);
            }
            if (TRows.Value > 3)
            {
                x = Vector256.Create(a[3 * lda + p]);
                s30 = Fma.MultiplyAdd(x, v0, s30); s31 = Fma.MultiplyAdd(x, v1, s31);
                s32 = Fma.MultiplyAdd(x, v2, s32); s33 = Fma.MultiplyAdd(x, v3, s33);
            }
        }
        StoreRow(c, s00, s01, s02, s03, accumulate);
        if (TRows.Value > 1) StoreRow(c + ldc, s10, s11, s12, s13, accumulate);
        if (TRows.Value > 2) StoreRow(c + 2 * ldc, s20, s21, s22, s23, accumulate);
        if (TRows.Value > 3) StoreRow(c + 3 * ldc, s30, s31, s32, s33, accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(
        float* c, Vector256<float> v0, Vector256<float> v1, Vector256<float> v2, Vector256<float> v3, bool accumulate)
    {
        if (accumulate)
        {
            v0 += Vector256.Load(c); v1 += Vector256.Load(c + 8);
            v2 += Vector256.Load(c + 16); v3 += Vector256.Load(c + 24);
        }
        v0.Store(c); v1.Store(c + 8); v2.Store(c + 16); v3.Store(c + 24);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Sums(float* sums, Vector256<float> s0, Vector256<float> s1, Vector256<float> s2, Vector256<float> s3)
    {
        sums[0] = Vector256.Sum(s0);
        sums[1] = Vector256.Sum(s1);
        sums[2] = Vector256.Sum(s2);
        sums[3] = Vector256.Sum(s3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Sums(float* sums, Vector512<float> s0, Vector512<float> s1, Vector512<float> s2, Vector512<float> s3)
    {
        sums[0] = Vector512.Sum(s0);
        sums[1] = Vector512.Sum(s1);
        sums[2] = Vector512.Sum(s2);
        sums[3] = Vector512.Sum(s3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, float value, bool accumulate) => *c = accumulate ? *c + value : value;
}
