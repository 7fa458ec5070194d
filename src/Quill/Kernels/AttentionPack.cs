// Copies of q/k/v/dO rows into the kernels' scratch layouts: transposed ([D, ld], keys along a row, so score
// tiles read contiguous key vectors) or row-padded ([rows, Dp], each row D floats then zeros up to Dp, so every row
// is a whole number of vectors). Rows past the real ones are zero, so padded lanes never carry NaN into a sum.
// The transpose walks keys in groups of 16 so that each store run fills a cache line, instead of scattering one
// float per line. Also carves the scratch buffer into regions staggered by a cache line, so that same-sized regions
// do not alias in the L1 sets (the kernels stream several of them at once).
// Does not handle: layouts other than these two; argument checks (callers pass valid pointers).
// Glossary: D head size, Dp = D rounded up to the vector lanes, ld leading dimension of a transposed buffer.
using System.Numerics;

namespace Quill.Kernels;

internal static unsafe class AttentionPack
{
    /// <summary>dst[d * ld + j] = src[j * srcStride + d] for j in [from, to), d &lt; D; zero for j &gt;= rows.</summary>
    public static void Transposed(float* src, int srcStride, int rows, int D, int from, int to, float* dst, int ld)
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

    /// <summary>dst[j * Dp + d] = scale * src[j * srcStride + d] for j in [from, to), zero in columns [D, Dp) and rows &gt;= rows.</summary>
    public static void Rows(float* src, int srcStride, int rows, int D, float scale, int from, int to, float* dst, int Dp)
    {
        for (int j = from; j < to; j++)
        {
            float* o = dst + (long)j * Dp;
            if (j < rows)
            {
                float* s = src + (long)j * srcStride;
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
