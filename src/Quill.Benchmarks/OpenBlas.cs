// The OpenBLAS peer for the GEMM benchmark: cblas_sgemm / cblas_sgemv and the thread-count setter from the
// system's libopenblas (Debian's libopenblas0), bound through P/Invoke. DetectCore removes OPENBLAS_CORETYPE so that
// OpenBLAS picks the best kernels for this CPU itself (on a Zen 5 it chose AVX-512 Cooperlake while the machine's
// environment pinned Haswell, AVX2, about half as fast; forcing SkylakeX instead crashed AVX2-only CPUs with SIGILL);
// UseCore pins a named set.
// Also the thread CPU clock the benchmark can time by. Does not locate other BLAS builds.
using System.Runtime.InteropServices;

namespace Quill.Benchmarks;

/// <summary>Row-major single-precision GEMM and GEMV from the system OpenBLAS.</summary>
internal static unsafe partial class OpenBlas
{
    private const string Library = "libopenblas.so.0";
    private const int RowMajor = 101, NoTrans = 111, Trans = 112;

    private static bool? available;

    /// <summary>True when the system's libopenblas can be loaded (loads it: call UseCore first).</summary>
    public static bool IsAvailable => available ??= NativeLibrary.TryLoad(Library, out _);

    [LibraryImport(Library, EntryPoint = "openblas_set_num_threads")]
    private static partial void SetNumThreads(int threads);

    [LibraryImport(Library, EntryPoint = "cblas_sgemm")]
    private static partial void CblasSgemm(
        int order, int transA, int transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc);

    [LibraryImport(Library, EntryPoint = "cblas_sgemv")]
    private static partial void CblasSgemv(
        int order, int trans, int m, int n, float alpha, float* a, int lda, float* x, int incx, float beta, float* y, int incy);

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);

    /// <summary>
    /// Makes OpenBLAS use the kernels of the named core (sets OPENBLAS_CORETYPE, overriding the environment, which
    /// on the project's machine pins Haswell). Must run before the first OpenBLAS call: the library reads the
    /// variable when it loads.
    /// </summary>
    public static void UseCore(string core) => SetEnv("OPENBLAS_CORETYPE", core, 1);

    /// <summary>Lets OpenBLAS detect this CPU's best kernel set (removes OPENBLAS_CORETYPE before the library loads).</summary>
    public static void DetectCore() => UnsetEnv("OPENBLAS_CORETYPE");

    [LibraryImport("libc", EntryPoint = "unsetenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int UnsetEnv(string name);

    /// <summary>The kernel set OpenBLAS runs, as it names it (openblas_get_corename, e.g. "Cooperlake", "Zen").</summary>
    public static string Core => Marshal.PtrToStringUTF8(GetCoreName()) is { Length: > 0 } core ? core : "unknown";

    [LibraryImport(Library, EntryPoint = "openblas_get_corename")]
    private static partial nint GetCoreName();

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec time);

    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    /// <summary>CPU time of the calling thread in seconds (Linux CLOCK_THREAD_CPUTIME_ID).</summary>
    public static double ThreadCpuSeconds()
    {
        const int ThreadCpuTimeClock = 3;
        ClockGetTime(ThreadCpuTimeClock, out TimeSpec time);
        return time.Seconds + time.Nanoseconds * 1e-9;
    }

    public static void Threads(int threads) => SetNumThreads(threads);

    /// <summary>C = alpha * op(A) · op(B) + beta * C, row-major, the same arguments as Gemm.Sgemm.</summary>
    public static void Sgemm(
        bool transA, bool transB, int m, int n, int k, float alpha, float[] a, int lda, float[] b, int ldb,
        float beta, float[] c, int ldc)
    {
        fixed (float* pa = a, pb = b, pc = c)
            CblasSgemm(RowMajor, transA ? Trans : NoTrans, transB ? Trans : NoTrans, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
    }

    /// <summary>y[rows] = W[rows, cols] · x[cols] (W row-major): one token through a weight stored [out, in].</summary>
    public static void Sgemv(int rows, int cols, float[] w, float[] x, float[] y)
    {
        fixed (float* pw = w, px = x, py = y)
            CblasSgemv(RowMajor, NoTrans, rows, cols, 1f, pw, cols, px, 1, 0f, py, 1);
    }
}
