// Packing for the SGEMM driver: copies a block of A or B into the panel layout the micro-kernels stream through,
// so the kernels read memory strictly in order whatever the caller's layout (plain or transposed, any stride).
// A panel holds R lines (rows of A, or columns of B) for kc steps of k, step by step: panel[p * R + r].
// Ragged panels are padded with zeros so the kernels always run full tiles. Handles AVX 8 x 8, SSE or NEON 4 x 4
// register transposes and 2-line interleaves for the strided direction and plain copies for the contiguous one;
// does not handle blocking or threading.
// Glossary: R = lines per panel (MR for A, NR for B); kc = steps of k in the block; p = step, r = line.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
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
    /// sums[i] += packed[i, p] for p = 0 .. kc - 1 in order, over rows [0, rows) of a block packed by PackA (MR-row
    /// panels, step p of a panel's row i at p * MR + i): the same fold, element by element, as over A itself. Four rows
    /// at a time in a vector, each lane its own row; up to three such vectors (and the odd rows two at a time) in
    /// one pass over the panel, so their chains of dependent adds overlap instead of running one after another (one
    /// vector at a time, the fold took 0.7% of a shakespeare-char training step).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SumPanels<TKernel>(float* packed, int rows, int kc, float* sums)
        where TKernel : IGemmMicroKernel
    {
        int mr = TKernel.MR, start = 0;
        if (mr == 6)
        {
            // The AVX2 tile's 6-row panels, two at a time: a vector and two scalar chains each, six in flight (one
            // panel alone had a vector chain and then a scalar pair, one after the other: 4.6 ms of a shakespeare-char
            // step against under 1 ms for the AVX-512 tile's 12-row panels).
            for (; start + 12 <= rows; start += 12)
            {
                float* p0 = packed + (nint)start * kc, p1 = p0 + 6 * (nint)kc, sum = sums + start;
                Vector128<float> a0 = Vector128.Load(sum), b0 = Vector128.Load(sum + 6);
                float a4 = sum[4], a5 = sum[5], b4 = sum[10], b5 = sum[11];
                for (int p = 0; p < kc; p++)
                {
                    float* s0 = p0 + (nint)p * 6, s1 = p1 + (nint)p * 6;
                    a0 += Vector128.Load(s0);
                    a4 += s0[4];
                    a5 += s0[5];
                    b0 += Vector128.Load(s1);
                    b4 += s1[4];
                    b5 += s1[5];
                }
                a0.Store(sum);
                sum[4] = a4;
                sum[5] = a5;
                b0.Store(sum + 6);
                sum[10] = b4;
                sum[11] = b5;
            }
        }
        for (int r0 = start; r0 < rows; r0 += mr)
        {
            float* panel = packed + (nint)r0 * kc, sum = sums + r0;
            int height = Math.Min(mr, rows - r0), i = 0;
            for (; i + 12 <= height; i += 12)
            {
                Vector128<float> a0 = Vector128.Load(sum + i), a1 = Vector128.Load(sum + i + 4), a2 = Vector128.Load(sum + i + 8);
                for (int p = 0; p < kc; p++)
                {
                    float* step = panel + (nint)p * mr + i;
                    a0 += Vector128.Load(step);
                    a1 += Vector128.Load(step + 4);
                    a2 += Vector128.Load(step + 8);
                }
                a0.Store(sum + i);
                a1.Store(sum + i + 4);
                a2.Store(sum + i + 8);
            }
            for (; i + 8 <= height; i += 8)
            {
                Vector128<float> a0 = Vector128.Load(sum + i), a1 = Vector128.Load(sum + i + 4);
                for (int p = 0; p < kc; p++)
                {
                    a0 += Vector128.Load(panel + (nint)p * mr + i);
                    a1 += Vector128.Load(panel + (nint)p * mr + i + 4);
                }
                a0.Store(sum + i);
                a1.Store(sum + i + 4);
            }
            for (; i + 4 <= height; i += 4)
            {
                var acc = Vector128.Load(sum + i);
                for (int p = 0; p < kc; p++) acc += Vector128.Load(panel + (nint)p * mr + i);
                acc.Store(sum + i);
            }
            for (; i + 2 <= height; i += 2)
            {
                float s0 = sum[i], s1 = sum[i + 1];
                for (int p = 0; p < kc; p++)
                {
                    s0 += panel[(nint)p * mr + i];
                    s1 += panel[(nint)p * mr + i + 1];
                }
                sum[i] = s0;
                sum[i + 1] = s1;
            }
            for (; i < height; i++)
            {
                float acc = sum[i];
                for (int p = 0; p < kc; p++) acc += panel[(nint)p * mr + i];
                sum[i] = acc;
            }
        }
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
    /// Lines run across memory: line r, step p is at src[r * stride + p]. Panel by panel, transposes blocks of 8 (AVX)
    /// or 4 (SSE) lines and steps in registers; ragged lines and steps go element by element, missing lines are zero.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackStrided<TWidth>(float* src, nint stride, int lines, int kc, float* dst)
        where TWidth : IPanelWidth
    {
        int width = TWidth.Value;
        for (int first = 0; first < lines; first += width, src += width * stride, dst += (nint)width * kc)
        {
            int count = Math.Min(width, lines - first);
            int r = 0;
            if (Avx.IsSupported)
                for (; r + 8 <= count; r += 8)
                    PackLines(src + r * stride, stride, 8, kc, dst + r, width);
            if (Sse.IsSupported || AdvSimd.Arm64.IsSupported)
            {
                for (; r + 4 <= count; r += 4)
                    PackLines(src + r * stride, stride, 4, kc, dst + r, width);
                // the AVX2 tile's rows 4 and 5 (MR = 6), and any other pair left over
                for (; r + 2 <= count; r += 2)
                    PackLinePair(src + r * stride, stride, kc, dst + r, width);
            }
            for (; r < width; r++)
            {
                float* s = src + r * stride;
                for (int p = 0; p < kc; p++) dst[(nint)p * width + r] = r < count ? s[p] : 0f;
            }
        }
    }

    /// <summary>
    /// Lines [0, group) of a panel (group 8 with AVX, 4 with SSE): register transposes of group x group blocks,
    /// then the ragged steps one by one.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PackLines(float* src, nint stride, int group, int kc, float* dst, int width)
    {
        int whole = kc - kc % group;
        for (int p = 0; p < whole; p += group)
        {
            if (group == 8) Transpose8x8(src + p, stride, dst + (nint)p * width, width);
            else Transpose4x4(src + p, stride, dst + (nint)p * width, width);
        }
        for (int p = whole; p < kc; p++)
            for (int q = 0; q < group; q++)
                dst[(nint)p * width + q] = src[q * stride + p];
    }

    /// <summary>dst[c * dstStride + r] = src[r * srcStride + c] for an 8 x 8 block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x8(float* src, nint srcStride, float* dst, nint dstStride)
    {
        Vector256<float> r0 = Avx.LoadVector256(src), r1 = Avx.LoadVector256(src + srcStride);
        Vector256<float> r2 = Avx.LoadVector256(src + 2 * srcStride), r3 = Avx.LoadVector256(src + 3 * srcStride);
        Vector256<float> r4 = Avx.LoadVector256(src + 4 * srcStride), r5 = Avx.LoadVector256(src + 5 * srcStride);
        Vector256<float> r6 = Avx.LoadVector256(src + 6 * srcStride), r7 = Avx.LoadVector256(src + 7 * srcStride);
        // Within each 128-bit half: interleave pairs of rows, then pairs of pairs.
        Vector256<float> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1);
        Vector256<float> t2 = Avx.UnpackLow(r2, r3), t3 = Avx.UnpackHigh(r2, r3);
        Vector256<float> t4 = Avx.UnpackLow(r4, r5), t5 = Avx.UnpackHigh(r4, r5);
        Vector256<float> t6 = Avx.UnpackLow(r6, r7), t7 = Avx.UnpackHigh(r6, r7);
        Vector256<float> u0 = Avx.Shuffle(t0, t2, 0x44), u1 = Avx.Shuffle(t0, t2, 0xEE);
        Vector256<float> u2 = Avx.Shuffle(t1, t3, 0x44), u3 = Avx.Shuffle(t1, t3, 0xEE);
        Vector256<float> u4 = Avx.Shuffle(t4, t6, 0x44), u5 = Avx.Shuffle(t4, t6, 0xEE);
        Vector256<float> u6 = Avx.Shuffle(t5, t7, 0x44), u7 = Avx.Shuffle(t5, t7, 0xEE);
        // Then join the halves: low halves give columns 0-3, high halves columns 4-7.
        Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(dst + dstStride, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(dst + 2 * dstStride, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(dst + 3 * dstStride, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(dst + 4 * dstStride, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(dst + 5 * dstStride, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(dst + 6 * dstStride, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(dst + 7 * dstStride, Avx.Permute2x128(u3, u7, 0x31));
    }

    /// <summary>
    /// Two lines of a panel: four steps of each are loaded, interleaved into (line 0, line 1) pairs and stored as 64-bit
    /// halves, one pair per step; the ragged steps go one by one.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PackLinePair(float* src, nint stride, int kc, float* dst, int width)
    {
        int whole = kc - kc % 4;
        for (int p = 0; p < whole; p += 4)
        {
            Vector128<float> a = Vector128.Load(src + p), b = Vector128.Load(src + stride + p);
            float* d = dst + (nint)p * width;
            if (AdvSimd.Arm64.IsSupported)
            {
                Vector128<float> lo = AdvSimd.Arm64.ZipLow(a, b), hi = AdvSimd.Arm64.ZipHigh(a, b);  // a0 b0 a1 b1, a2 b2 a3 b3
                lo.GetLower().Store(d);
                lo.GetUpper().Store(d + width);
                hi.GetLower().Store(d + 2 * width);
                hi.GetUpper().Store(d + 3 * width);
            }
            else
            {
                Vector128<float> lo = Sse.UnpackLow(a, b), hi = Sse.UnpackHigh(a, b);
                Sse.StoreLow(d, lo);
                Sse.StoreHigh(d + width, lo);
                Sse.StoreLow(d + 2 * width, hi);
                Sse.StoreHigh(d + 3 * width, hi);
            }
        }
        for (int p = whole; p < kc; p++)
        {
            dst[(nint)p * width] = src[p];
            dst[(nint)p * width + 1] = src[stride + p];
        }
    }

    /// <summary>dst[c * dstStride + r] = src[r * srcStride + c] for a 4 x 4 block (SSE, or NEON zips on ARM64).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose4x4(float* src, nint srcStride, float* dst, nint dstStride)
    {
        if (AdvSimd.Arm64.IsSupported)
        {
            Vector128<float> a = AdvSimd.LoadVector128(src), b = AdvSimd.LoadVector128(src + srcStride);
            Vector128<float> c = AdvSimd.LoadVector128(src + 2 * srcStride), e = AdvSimd.LoadVector128(src + 3 * srcStride);
            Vector128<float> ac0 = AdvSimd.Arm64.ZipLow(a, c), ac1 = AdvSimd.Arm64.ZipHigh(a, c);  // a0 c0 a1 c1, a2 c2 a3 c3
            Vector128<float> be0 = AdvSimd.Arm64.ZipLow(b, e), be1 = AdvSimd.Arm64.ZipHigh(b, e);  // b0 e0 b1 e1, b2 e2 b3 e3
            AdvSimd.Store(dst, AdvSimd.Arm64.ZipLow(ac0, be0));                  // a0 b0 c0 e0
            AdvSimd.Store(dst + dstStride, AdvSimd.Arm64.ZipHigh(ac0, be0));
            AdvSimd.Store(dst + 2 * dstStride, AdvSimd.Arm64.ZipLow(ac1, be1));
            AdvSimd.Store(dst + 3 * dstStride, AdvSimd.Arm64.ZipHigh(ac1, be1));
            return;
        }
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
