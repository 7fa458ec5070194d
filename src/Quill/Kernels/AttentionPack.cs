// Copies of q/k/v/dO rows into the kernels' scratch layouts: transposed ([D, ld], keys along a row, so score
// tiles read contiguous key vectors) or row-padded ([rows, Dp], each row D floats then zeros up to Dp, so every row
// is a whole number of vectors). Rows past the real ones are zero, so padded lanes never carry NaN into a sum.
// The transpose moves eight keys at a time through 8 x 8 register transposes where AVX exists; elsewhere (and for
// the last keys) it walks keys in groups of 16 so that each store run fills a cache line. Source rows are
// prefetched a few rows ahead: they sit in a strided [B*T, C] buffer, usually in L3 or memory. Also carves the
// scratch buffer into regions staggered by a cache line, so that same-sized regions do not alias in the L1 sets
// (the kernels stream several of them at once).
// Does not handle: layouts other than these two; argument checks (callers pass valid pointers).
// Glossary: D head size, Dp = D rounded up to the vector lanes, ld leading dimension of a transposed buffer.
using System.Numerics;
using System.Runtime.Intrinsics.X86;

namespace Quill.Kernels;

internal static unsafe class AttentionPack
{
    /// <summary>
    /// dst[d * ld + j] = src[j * srcStride + d] for j in [from, to), d &lt; D; zero for j &gt;= rows. With rowsDst, the
    /// same pass also writes what <see cref="Rows"/> (scale 1) would write there: each row padded to Dp.
    /// </summary>
    public static void Transposed(float* src, int srcStride, int rows, int D, int from, int to, float* dst, int ld,
        float* rowsDst = null, int Dp = 0)
    {
        int j0 = from;
        // AVX: whole groups of eight real keys go through 8 x 8 register transposes (a third of the scalar time)
        if (Avx.IsSupported)
        {
            int end = Math.Min(to, rows);
            for (; j0 + 8 <= end; j0 += 8)
            {
                Transpose8Rows(src + (long)j0 * srcStride, srcStride, D, dst + j0, ld,
                    rowsDst == null ? null : rowsDst + (long)j0 * Dp, Dp);
            }
        }
        TransposedScalar(src, srcStride, rows, D, j0, to, dst, ld);
        if (rowsDst != null) Rows(src, srcStride, rows, D, 1f, j0, to, rowsDst, Dp);
    }

    /// <summary>The portable twin of <see cref="Transposed"/> (and its tail): keys in groups of 16, one store run per cache line.</summary>
    internal static void TransposedScalar(float* src, int srcStride, int rows, int D, int from, int to, float* dst, int ld)
    {
        const int Group = 16;
        var rowPtr = stackalloc float*[Group];
        for (int j0 = from; j0 < to; j0 += Group)
        {
            int n = Math.Min(Group, to - j0);
            int real = Math.Clamp(rows - j0, 0, n);
            for (int jj = 0; jj < real; jj++) rowPtr[jj] = src + (long)(j0 + jj) * srcStride;
            for (int d = 0; d < D; d++)
            {
                float* o = dst + (long)d * ld + j0;
                for (int jj = 0; jj < real; jj++) o[jj] = rowPtr[jj][d];
                for (int jj = real; jj < n; jj++) o[jj] = 0f;
            }
        }
    }

    // Eight source rows (srcStride apart) of D floats into D rows of eight (ld apart): 8 x 8 blocks in registers,
    // then a scalar pass over the last D % 8 columns. The next group's rows are prefetched while this one is moved.
    // With rows (not null), the eight rows are also copied there as they are loaded, each padded with zeros to Dp.
    private static void Transpose8Rows(float* s, int srcStride, int D, float* o, int ld, float* rows = null, int Dp = 0)
    {
        for (int r = 0; r < 8; r++) PrefetchRow(s + (long)(8 + r) * srcStride, D);
        int d = 0;
        for (; d + 8 <= D; d += 8)
        {
            var r0 = Avx.LoadVector256(s + d);
            var r1 = Avx.LoadVector256(s + srcStride + d);
            var r2 = Avx.LoadVector256(s + 2 * (long)srcStride + d);
            var r3 = Avx.LoadVector256(s + 3 * (long)srcStride + d);
            var r4 = Avx.LoadVector256(s + 4 * (long)srcStride + d);
            var r5 = Avx.LoadVector256(s + 5 * (long)srcStride + d);
            var r6 = Avx.LoadVector256(s + 6 * (long)srcStride + d);
            var r7 = Avx.LoadVector256(s + 7 * (long)srcStride + d);
            if (rows != null)
            {
                Avx.Store(rows + d, r0); Avx.Store(rows + Dp + d, r1);
                Avx.Store(rows + 2 * Dp + d, r2); Avx.Store(rows + 3 * Dp + d, r3);
                Avx.Store(rows + 4 * Dp + d, r4); Avx.Store(rows + 5 * Dp + d, r5);
                Avx.Store(rows + 6 * Dp + d, r6); Avx.Store(rows + 7 * Dp + d, r7);
            }
            // pairs of rows interleaved, then pairs of pairs, then the 128-bit halves swapped across
            var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
            var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
            var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
            var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
            var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
            var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
            var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
            var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
            float* od = o + (long)d * ld;
            Avx.Store(od, Avx.Permute2x128(u0, u4, 0x20));
            Avx.Store(od + ld, Avx.Permute2x128(u1, u5, 0x20));
            Avx.Store(od + 2 * (long)ld, Avx.Permute2x128(u2, u6, 0x20));
            Avx.Store(od + 3 * (long)ld, Avx.Permute2x128(u3, u7, 0x20));
            Avx.Store(od + 4 * (long)ld, Avx.Permute2x128(u0, u4, 0x31));
            Avx.Store(od + 5 * (long)ld, Avx.Permute2x128(u1, u5, 0x31));
            Avx.Store(od + 6 * (long)ld, Avx.Permute2x128(u2, u6, 0x31));
            Avx.Store(od + 7 * (long)ld, Avx.Permute2x128(u3, u7, 0x31));
        }
        for (; d < D; d++)
        {
            for (int r = 0; r < 8; r++) o[(long)d * ld + r] = s[(long)r * srcStride + d];
        }
        if (rows == null) return;
        for (int r = 0; r < 8; r++)
        {
            float* row = rows + (long)r * Dp;
            for (int c = D - D % 8; c < D; c++) row[c] = s[(long)r * srcStride + c];
            new Span<float>(row + D, Dp - D).Clear();
        }
    }

    /// <summary>dst[j * Dp + d] = scale * src[j * srcStride + d] for j in [from, to), zero in columns [D, Dp) and rows &gt;= rows.</summary>
    public static void Rows(float* src, int srcStride, int rows, int D, float scale, int from, int to, float* dst, int Dp)
    {
        for (int j = from; j < to; j++)
        {
            float* o = dst + (long)j * Dp;
            if (j < rows)
            {
                float* s = src + (long)j * srcStride;
                PrefetchRow(s + PrefetchAhead * (long)srcStride, D);
                if (scale == 1f) new ReadOnlySpan<float>(s, D).CopyTo(new Span<float>(o, D));
                else Scale(s, o, D, scale);
                new Span<float>(o + D, Dp - D).Clear();
            }
            else
            {
                new Span<float>(o, Dp).Clear();
            }
        }
    }

    /// <summary>
    /// How many rows ahead the row loops over the strided [B*T, C] buffers prefetch (Rows here, the backward's
    /// read and write-out loops); rows past the end are harmless, a prefetch never faults.
    /// </summary>
    public const int PrefetchAhead = 8;

    /// <summary>
    /// Asks for the cache lines of row[0..n). The kernels read rows of a strided [B*T, C] buffer that sit in L3 or
    /// memory; asking a few rows ahead overlaps the misses with work instead of stalling on each in turn. A prefetch
    /// never faults, so a row past the end is fine.
    /// </summary>
    public static void PrefetchRow(float* row, int n)
    {
        if (!Sse.IsSupported) return;
        for (int i = 0; i < n; i += 16) Sse.Prefetch0(row + i);
    }

    /// <summary>dst[i] = scale * src[i] for i &lt; n.</summary>
    public static void Scale(float* src, float* dst, int n, float scale)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var sv = new Vector<float>(scale);
            for (; i + Vector<float>.Count <= n; i += Vector<float>.Count)
                Vector.Store(Vector.Load(src + i) * sv, dst + i);
        }
        for (; i < n; i++) dst[i] = src[i] * scale;
    }

    /// <summary>Dot product of x[0..n) and y[0..n).</summary>
    public static float Dot(float* x, float* y, int n)
    {
        int i = 0;
        float dot = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var acc = Vector<float>.Zero;
            for (; i + Vector<float>.Count <= n; i += Vector<float>.Count) acc += Vector.Load(x + i) * Vector.Load(y + i);
            dot = Vector.Sum(acc);
        }
        for (; i < n; i++) dot += x[i] * y[i];
        return dot;
    }

    /// <summary>Takes the next region of `floats` floats from p, leaving a one-line gap so regions are staggered.</summary>
    public static float* Carve(ref float* p, long floats)
    {
        float* region = p;
        p += AttentionTile.RoundUp(checked((int)floats), 16) + 16;
        return region;
    }

    /// <summary>Scratch floats needed by regions of the given sizes carved with <see cref="Carve"/>.</summary>
    public static long CarvedSize(params ReadOnlySpan<long> sizes)
    {
        long total = 0;
        foreach (long s in sizes) total += AttentionTile.RoundUp(checked((int)s), 16) + 16;
        return total;
    }

    /// <summary>A leading dimension at least n that is not a multiple of 128 floats (512 bytes), to spread L1 sets.</summary>
    public static int Stagger(int n) => n % 128 == 0 ? n + 16 : n;
}
