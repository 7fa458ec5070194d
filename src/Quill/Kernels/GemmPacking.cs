// Packing for the SGEMM driver: copies a block of A or B into the panel layout the micro-kernels stream through,
// so the kernels read memory strictly in order whatever the caller's layout (plain or transposed, any stride).
// A panel holds R lines (rows of A, or columns of B) for kc steps of k, step by step: panel[p * R + r].
// Ragged panels are padded with zeros so the kernels always run full tiles. Handles SSE 4 x 4 register transposes
// for the strided direction and plain copies for the contiguous one; does not handle blocking or threading.
// Glossary: R = lines per panel (MR for A, NR for B); kc = steps of k in the block; p = step, r = line.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Quill.Kernels;

/// <summary>Packs blocks of A and B into kernel panels.</summary>
internal static unsafe class GemmPacking
{
    /// <summary>
    /// Steps of k PackContiguous copies into one panel before moving to the next: enough to write whole cache lines
    /// per panel, few enough that the source rows being read stay few (measured best on Zen 5 among 1 to 64).
    /// </summary>
    private const int StepChunk = 4;

    /// <summary>
    /// Packs rows [0, rows) x steps [0, kc) of op(A) into MR-row panels at dst, scaled by alpha. Element (i, p) of
    /// op(A) sits at a[i * lda + p] when not transposed and at a[p * lda + i] when transposed.
    /// </summary>
    public static void PackA<TKernel>(float* a, nint lda, bool transposed, int rows, int kc, float alpha, float* dst)
        where TKernel : IGemmMicroKernel
    {
        if (transposed) PackContiguous<TileRows<TKernel>>(a, lda, rows, kc, dst);
        else PackStrided<TileRows<TKernel>>(a, lda, rows, kc, dst);
        int mr = TKernel.MR;
        if (alpha != 1f) Scale(dst, (nint)((rows + mr - 1) / mr) * mr * kc, alpha);
    }

    /// <summary>
    /// Packs steps [0, kc) x columns [0, cols) of op(B) into NR-column panels at dst. Element (p, j) of op(B) sits
    /// at b[p * ldb + j] when not transposed and at b[j * ldb + p] when transposed.
    /// </summary>
    public static void PackB<TKernel>(float* b, nint ldb, bool transposed, int kc, int cols, float* dst)
        where TKernel : IGemmMicroKernel
    {
        if (transposed) PackStrided<TileColumns<TKernel>>(b, ldb, cols, kc, dst);
        else PackContiguous<TileColumns<TKernel>>(b, ldb, cols, kc, dst);
    }

    /// <summary>
    /// Lines run along memory: line r, step p is at src[p * stride + r]. Takes StepChunk steps at a time and deals
    /// their rows out to the panels, so both the reads and the writes run in order; the last panel is zero-filled.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackContiguous<TWidth>(float* src, nint stride, int lines, int kc, float* dst)
        where TWidth : IPanelWidth
    {
        int width = TWidth.Value;
        int full = lines - lines % width;
        nint panelSize = (nint)width * kc;
        for (int p0 = 0; p0 < kc; p0 += StepChunk)
        {
            int p1 = Math.Min(kc, p0 + StepChunk);
            for (int r = 0; r < full; r += width)
            {
                float* to = dst + r / width * panelSize;
                for (int p = p0; p < p1; p++)
                    Unsafe.CopyBlockUnaligned(to + (nint)p * width, src + p * stride + r, (uint)(width * sizeof(float)));
            }
            if (full < lines)
            {
                float* to = dst + full / width * panelSize;
                for (int p = p0; p < p1; p++)
                {
                    int r = 0;
                    for (; r < lines - full; r++) to[(nint)p * width + r] = src[p * stride + full + r];
                    for (; r < width; r++) to[(nint)p * width + r] = 0f;
                }
            }
        }
    }

    /// <summary>
    /// Lines run across memory: line r, step p is at src[r * stride + p]. Panel by panel, transposes 4 lines x 4
    /// steps at a time in registers; ragged lines and steps go element by element, missing lines are zero.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackStrided<TWidth>(float* src, nint stride, int lines, int kc, float* dst)
        where TWidth : IPanelWidth
    {
        int width = TWidth.Value;
        int kc4 = kc & ~3;
        for (int first = 0; first < lines; first += width, src += width * stride, dst += (nint)width * kc)
        {
            int count = Math.Min(width, lines - first);
            int full = Sse.IsSupported ? count & ~3 : 0;
            for (int r = 0; r < full; r += 4)
            {
                float* s = src + r * stride;
                for (int p = 0; p < kc4; p += 4)
                    Transpose4x4(s + p, stride, dst + (nint)p * width + r, width);
                for (int p = kc4; p < kc; p++)
                    for (int q = 0; q < 4; q++)
                        dst[(nint)p * width + r + q] = s[q * stride + p];
            }
            for (int r = full; r < width; r++)
            {
                float* s = src + r * stride;
                for (int p = 0; p < kc; p++) dst[(nint)p * width + r] = r < count ? s[p] : 0f;
            }
        }
    }

    /// <summary>dst[c * dstStride + r] = src[r * srcStride + c] for a 4 x 4 block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose4x4(float* src, nint srcStride, float* dst, nint dstStride)
    {
        Vector128<float> r0 = Sse.LoadVector128(src);
        Vector128<float> r1 = Sse.LoadVector128(src + srcStride);
        Vector128<float> r2 = Sse.LoadVector128(src + 2 * srcStride);
        Vector128<float> r3 = Sse.LoadVector128(src + 3 * srcStride);
        Vector128<float> t0 = Sse.UnpackLow(r0, r1);   // a0 b0 a1 b1
        Vector128<float> t1 = Sse.UnpackHigh(r0, r1);  // a2 b2 a3 b3
        Vector128<float> t2 = Sse.UnpackLow(r2, r3);   // c0 d0 c1 d1
        Vector128<float> t3 = Sse.UnpackHigh(r2, r3);  // c2 d2 c3 d3
        Sse.Store(dst, Sse.MoveLowToHigh(t0, t2));
        Sse.Store(dst + dstStride, Sse.MoveHighToLow(t2, t0));
        Sse.Store(dst + 2 * dstStride, Sse.MoveLowToHigh(t1, t3));
        Sse.Store(dst + 3 * dstStride, Sse.MoveHighToLow(t3, t1));
    }

    private static void Scale(float* x, nint count, float alpha)
    {
        nint i = 0;
        var factor = Vector128.Create(alpha);
        for (; i + 4 <= count; i += 4) (Vector128.Load(x + i) * factor).Store(x + i);
        for (; i < count; i++) x[i] *= alpha;
    }

    /// <summary>Lines per panel, known when the JIT specialises a packing loop: copies and strides are constants.</summary>
    private interface IPanelWidth
    {
        static abstract int Value { get; }
    }

    /// <summary>A panels: MR rows of the kernel's tile.</summary>
    private readonly struct TileRows<TKernel> : IPanelWidth where TKernel : IGemmMicroKernel
    {
        public static int Value => TKernel.MR;
    }

    /// <summary>B panels: NR columns of the kernel's tile.</summary>
    private readonly struct TileColumns<TKernel> : IPanelWidth where TKernel : IGemmMicroKernel
    {
        public static int Value => TKernel.NR;
    }
}
