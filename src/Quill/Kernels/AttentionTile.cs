// The one register-blocked micro-kernel every attention product goes through, and the per-thread scratch buffer.
// Tile4 computes four output rows at once: C[r, 0..width) (+)= sum over t < kLen of A(r, t) * B[t, 0..width),
// where A(r, t) = a[r * aRow + t * aStep]. The two strides let one kernel serve all five products of attention
// (scores Q K^T, P V, dP = dO V^T, dV += P^T dO, dK += dS^T Q, dQ += dS K) without transposing anything: the
// caller packs B so its rows are contiguous and `width` (a multiple of the vector lanes) wide.
// Does not handle: widths that are not a multiple of the lanes (callers pad), fewer than four rows (callers pad
// with dummy rows and ignore them).
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace Quill.Kernels;

internal static unsafe class AttentionTile
{
    /// <summary>
    /// C[r, 0..width) = (accumulate ? C : 0) + sum_t a[r*aRow + t*aStep] * B[t*ldb, 0..width) for r in 0..3.
    /// Blocks of four vectors keep 16 accumulators in registers (two vectors, 8, where 256-bit vectors have only 16
    /// registers: AVX2 without AVX-512); a one-vector loop takes the rest.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Tile4<TOps, TV>(float* c, int ldc, float* a, int aRow, int aStep, float* b, int ldb,
        int kLen, int width, bool accumulate)
        where TOps : struct, IAttentionVector<TV> where TV : struct
    {
        int L = TOps.Lanes;
        nint r1 = aRow, r2 = 2 * (nint)aRow, r3 = 3 * (nint)aRow, bStep = ldb, aNext = aStep; // hoisted out of the loops
        int col = 0;
        if (TOps.Lanes == 8 && !Avx512F.IsSupported)
        {
            // 256-bit vectors without AVX-512 have 16 registers: the four-vector block's 16 accumulators and its 4 + 1
            // operands would spill, so blocks of three vectors (12 accumulators, 3 + 1 operands: all 16 registers)
            // take the columns, and blocks of two (8 accumulators) the rest, never leaving a lone vector: two FMA
            // pipes of latency 4 want 8 sums in flight, which the pair block holds only just. Each sum runs over t in
            // the same order whichever block computes it.
            int vectors = width / L;
            for (; vectors >= 3 && vectors != 4; col += 3 * L, vectors -= 3)
                Tile4Triple<TOps, TV>(c + col, ldc, a, aRow, aStep, b + col, ldb, kLen, accumulate);
            for (; col + 2 * L <= width; col += 2 * L) Tile4Pair<TOps, TV>(c + col, ldc, a, aRow, aStep, b + col, ldb, kLen, accumulate);
        }
        for (; col + 4 * L <= width; col += 4 * L)
        {
            TV c00 = accumulate ? TOps.Load(c + 0 * ldc + col + 0 * L) : TOps.Zero;
            TV c01 = accumulate ? TOps.Load(c + 0 * ldc + col + 1 * L) : TOps.Zero;
            TV c02 = accumulate ? TOps.Load(c + 0 * ldc + col + 2 * L) : TOps.Zero;
            TV c03 = accumulate ? TOps.Load(c + 0 * ldc + col + 3 * L) : TOps.Zero;
            TV c10 = accumulate ? TOps.Load(c + 1 * ldc + col + 0 * L) : TOps.Zero;
            TV c11 = accumulate ? TOps.Load(c + 1 * ldc + col + 1 * L) : TOps.Zero;
            TV c12 = accumulate ? TOps.Load(c + 1 * ldc + col + 2 * L) : TOps.Zero;
            TV c13 = accumulate ? TOps.Load(c + 1 * ldc + col + 3 * L) : TOps.Zero;
            TV c20 = accumulate ? TOps.Load(c + 2 * ldc + col + 0 * L) : TOps.Zero;
            TV c21 = accumulate ? TOps.Load(c + 2 * ldc + col + 1 * L) : TOps.Zero;
            TV c22 = accumulate ? TOps.Load(c + 2 * ldc + col + 2 * L) : TOps.Zero;
            TV c23 = accumulate ? TOps.Load(c + 2 * ldc + col + 3 * L) : TOps.Zero;
            TV c30 = accumulate ? TOps.Load(c + 3 * ldc + col + 0 * L) : TOps.Zero;
            TV c31 = accumulate ? TOps.Load(c + 3 * ldc + col + 1 * L) : TOps.Zero;
            TV c32 = accumulate ? TOps.Load(c + 3 * ldc + col + 2 * L) : TOps.Zero;
            TV c33 = accumulate ? TOps.Load(c + 3 * ldc + col + 3 * L) : TOps.Zero;
            float* bt = b + col, at = a;
            for (int t = 0; t < kLen; t++, bt += bStep, at += aNext)
            {
                TV b0 = TOps.Load(bt + 0 * L);
                TV b1 = TOps.Load(bt + 1 * L);
                TV b2 = TOps.Load(bt + 2 * L);
                TV b3 = TOps.Load(bt + 3 * L);
                TV a0 = TOps.Broadcast(at[0]);
                c00 = TOps.Fma(a0, b0, c00); c01 = TOps.Fma(a0, b1, c01); c02 = TOps.Fma(a0, b2, c02); c03 = TOps.Fma(a0, b3, c03);
                TV a1 = TOps.Broadcast(at[r1]);
                c10 = TOps.Fma(a1, b0, c10); c11 = TOps.Fma(a1, b1, c11); c12 = TOps.Fma(a1, b2, c12); c13 = TOps.Fma(a1, b3, c13);
                TV a2 = TOps.Broadcast(at[r2]);
                c20 = TOps.Fma(a2, b0, c20); c21 = TOps.Fma(a2, b1, c21); c22 = TOps.Fma(a2, b2, c22); c23 = TOps.Fma(a2, b3, c23);
                TV a3 = TOps.Broadcast(at[r3]);
                c30 = TOps.Fma(a3, b0, c30); c31 = TOps.Fma(a3, b1, c31); c32 = TOps.Fma(a3, b2, c32); c33 = TOps.Fma(a3, b3, c33);
            }
            TOps.Store(c + 0 * ldc + col + 0 * L, c00);
            TOps.Store(c + 0 * ldc + col + 1 * L, c01);
            TOps.Store(c + 0 * ldc + col + 2 * L, c02);
            TOps.Store(c + 0 * ldc + col + 3 * L, c03);
            TOps.Store(c + 1 * ldc + col + 0 * L, c10);
            TOps.Store(c + 1 * ldc + col + 1 * L, c11);
            TOps.Store(c + 1 * ldc + col + 2 * L, c12);
            TOps.Store(c + 1 * ldc + col + 3 * L, c13);
            TOps.Store(c + 2 * ldc + col + 0 * L, c20);
            TOps.Store(c + 2 * ldc + col + 1 * L, c21);
            TOps.Store(c + 2 * ldc + col + 2 * L, c22);
            TOps.Store(c + 2 * ldc + col + 3 * L, c23);
            TOps.Store(c + 3 * ldc + col + 0 * L, c30);
            TOps.Store(c + 3 * ldc + col + 1 * L, c31);
            TOps.Store(c + 3 * ldc + col + 2 * L, c32);
            TOps.Store(c + 3 * ldc + col + 3 * L, c33);
        }
        for (; col + L <= width; col += L)
        {
            TV c0 = accumulate ? TOps.Load(c + col) : TOps.Zero;
            TV c1 = accumulate ? TOps.Load(c + ldc + col) : TOps.Zero;
            TV c2 = accumulate ? TOps.Load(c + 2 * ldc + col) : TOps.Zero;
            TV c3 = accumulate ? TOps.Load(c + 3 * ldc + col) : TOps.Zero;
            float* bt = b + col, at = a;
            for (int t = 0; t < kLen; t++, bt += bStep, at += aNext)
            {
                TV bv = TOps.Load(bt);
                c0 = TOps.Fma(TOps.Broadcast(at[0]), bv, c0);
                c1 = TOps.Fma(TOps.Broadcast(at[r1]), bv, c1);
                c2 = TOps.Fma(TOps.Broadcast(at[r2]), bv, c2);
                c3 = TOps.Fma(TOps.Broadcast(at[r3]), bv, c3);
            }
            TOps.Store(c + col, c0);
            TOps.Store(c + ldc + col, c1);
            TOps.Store(c + 2 * ldc + col, c2);
            TOps.Store(c + 3 * ldc + col, c3);
        }
    }

    // Four rows by three vectors of C: Tile4's main block for machines with 16 vector registers.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Tile4Triple<TOps, TV>(float* c, int ldc, float* a, int aRow, int aStep, float* b, int ldb, int kLen, bool accumulate)
        where TOps : struct, IAttentionVector<TV> where TV : struct
    {
        int L = TOps.Lanes;
        nint r1 = aRow, r2 = 2 * (nint)aRow, r3 = 3 * (nint)aRow, bStep = ldb, aNext = aStep; // hoisted out of the loops
        TV c00 = accumulate ? TOps.Load(c) : TOps.Zero, c01 = accumulate ? TOps.Load(c + L) : TOps.Zero, c02 = accumulate ? TOps.Load(c + 2 * L) : TOps.Zero;
        float* c1 = c + ldc, c2 = c + 2 * ldc, c3 = c + 3 * ldc;
        TV c10 = accumulate ? TOps.Load(c1) : TOps.Zero, c11 = accumulate ? TOps.Load(c1 + L) : TOps.Zero, c12 = accumulate ? TOps.Load(c1 + 2 * L) : TOps.Zero;
        TV c20 = accumulate ? TOps.Load(c2) : TOps.Zero, c21 = accumulate ? TOps.Load(c2 + L) : TOps.Zero, c22 = accumulate ? TOps.Load(c2 + 2 * L) : TOps.Zero;
        TV c30 = accumulate ? TOps.Load(c3) : TOps.Zero, c31 = accumulate ? TOps.Load(c3 + L) : TOps.Zero, c32 = accumulate ? TOps.Load(c3 + 2 * L) : TOps.Zero;
        float* bt = b, at = a;
        for (int t = 0; t < kLen; t++, bt += bStep, at += aNext)
        {
            TV b0 = TOps.Load(bt), b1 = TOps.Load(bt + L), b2 = TOps.Load(bt + 2 * L);
            TV a0 = TOps.Broadcast(at[0]);
            c00 = TOps.Fma(a0, b0, c00); c01 = TOps.Fma(a0, b1, c01); c02 = TOps.Fma(a0, b2, c02);
            a0 = TOps.Broadcast(at[r1]);
            c10 = TOps.Fma(a0, b0, c10); c11 = TOps.Fma(a0, b1, c11); c12 = TOps.Fma(a0, b2, c12);
            a0 = TOps.Broadcast(at[r2]);
            c20 = TOps.Fma(a0, b0, c20); c21 = TOps.Fma(a0, b1, c21); c22 = TOps.Fma(a0, b2, c22);
            a0 = TOps.Broadcast(at[r3]);
            c30 = TOps.Fma(a0, b0, c30); c31 = TOps.Fma(a0, b1, c31); c32 = TOps.Fma(a0, b2, c32);
        }
        TOps.Store(c, c00); TOps.Store(c + L, c01); TOps.Store(c + 2 * L, c02);
        TOps.Store(c1, c10); TOps.Store(c1 + L, c11); TOps.Store(c1 + 2 * L, c12);
        TOps.Store(c2, c20); TOps.Store(c2 + L, c21); TOps.Store(c2 + 2 * L, c22);
        TOps.Store(c3, c30); TOps.Store(c3 + L, c31); TOps.Store(c3 + 2 * L, c32);
    }

    // Four rows by two vectors of C: Tile4's block for machines with 16 vector registers.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Tile4Pair<TOps, TV>(float* c, int ldc, float* a, int aRow, int aStep, float* b, int ldb, int kLen, bool accumulate)
        where TOps : struct, IAttentionVector<TV> where TV : struct
    {
        int L = TOps.Lanes;
        nint r1 = aRow, r2 = 2 * (nint)aRow, r3 = 3 * (nint)aRow, bStep = ldb, aNext = aStep; // hoisted out of the loops
        TV c00 = accumulate ? TOps.Load(c) : TOps.Zero, c01 = accumulate ? TOps.Load(c + L) : TOps.Zero;
        TV c10 = accumulate ? TOps.Load(c + ldc) : TOps.Zero, c11 = accumulate ? TOps.Load(c + ldc + L) : TOps.Zero;
        TV c20 = accumulate ? TOps.Load(c + 2 * ldc) : TOps.Zero, c21 = accumulate ? TOps.Load(c + 2 * ldc + L) : TOps.Zero;
        TV c30 = accumulate ? TOps.Load(c + 3 * ldc) : TOps.Zero, c31 = accumulate ? TOps.Load(c + 3 * ldc + L) : TOps.Zero;
        float* bt = b, at = a;
        for (int t = 0; t < kLen; t++, bt += bStep, at += aNext)
        {
            TV b0 = TOps.Load(bt), b1 = TOps.Load(bt + L);
            TV a0 = TOps.Broadcast(at[0]);
            c00 = TOps.Fma(a0, b0, c00); c01 = TOps.Fma(a0, b1, c01);
            TV a1 = TOps.Broadcast(at[r1]);
            c10 = TOps.Fma(a1, b0, c10); c11 = TOps.Fma(a1, b1, c11);
            TV a2 = TOps.Broadcast(at[r2]);
            c20 = TOps.Fma(a2, b0, c20); c21 = TOps.Fma(a2, b1, c21);
            TV a3 = TOps.Broadcast(at[r3]);
            c30 = TOps.Fma(a3, b0, c30); c31 = TOps.Fma(a3, b1, c31);
        }
        TOps.Store(c, c00); TOps.Store(c + L, c01);
        TOps.Store(c + ldc, c10); TOps.Store(c + ldc + L, c11);
        TOps.Store(c + 2 * ldc, c20); TOps.Store(c + 2 * ldc + L, c21);
        TOps.Store(c + 3 * ldc, c30); TOps.Store(c + 3 * ldc + L, c31);
    }

    /// <summary>Rounds n up to a multiple of m.</summary>
    public static int RoundUp(int n, int m) => (n + m - 1) / m * m;
}

/// <summary>
/// A per-thread, 64-byte aligned float buffer that only grows, so that kernels allocate nothing once warm.
/// The array is pinned (pinned object heap), so the pointer stays valid while the thread uses it.
/// </summary>
internal sealed unsafe class AttentionScratch
{
    [ThreadStatic] private static AttentionScratch? current;
    private float[] buffer = [];

    /// <summary>At least `floats` floats of this thread's scratch; contents are unspecified.</summary>
    public static float* Get(long floats)
    {
        var s = current ??= new AttentionScratch();
        if (s.buffer.Length < floats + 16)
            s.buffer = GC.AllocateUninitializedArray<float>(checked((int)(floats + 16)), pinned: true);
        nint p = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(s.buffer));
        return (float*)((p + 63) & ~(nint)63);
    }
}
