// The register-blocked inner kernels of the packed SGEMM: each computes one MR x NR tile of C from an MR-row
// panel of packed A and an NR-column panel of packed B, over kc steps of k, holding the whole tile in registers.
// Handles: Vector512 (AVX-512: 12 x 32 tile, 24 accumulators, narrower instances for ragged tiles), Vector256
// (AVX2/FMA: 6 x 16 tile, 12 accumulators), ARM64 NEON (8 x 12 tile, 24 accumulators, multiply-add by lane) and a
// portable scalar 4 x 4 tile. Ragged tiles are written to a scratch
// tile that the driver merges into C. Does not handle packing, blocking, threading, alpha or beta (see
// GemmPacking.cs, GemmDriver.cs).
// Glossary: MR, NR = tile rows and columns; kc = depth of one packed block; ldc = row stride of C.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Quill.Kernels;

/// <summary>
/// One register-blocked tile kernel. Packed A holds kc steps of MR floats (one column of the tile's rows per step),
/// packed B holds kc steps of NR floats. Run writes C = A·B (accumulate false) or C += A·B (accumulate true).
/// </summary>
internal interface IGemmMicroKernel
{
    /// <summary>Rows of C per tile.</summary>
    static abstract int MR { get; }

    /// <summary>Columns of C per tile.</summary>
    static abstract int NR { get; }

    /// <summary>
    /// Whether the kernel runs fast on this machine. The kernel is correct either way, but a non-accelerated
    /// vector kernel is far slower than the scalar one.
    /// </summary>
    static abstract bool IsSupported { get; }

    /// <summary>
    /// Whether Run adds a bias in registers as it stores the tile. When false the driver seeds C with the bias
    /// (Gemm.AddBias) and calls Run accumulating, with no bias: the same rounding either way.
    /// </summary>
    static abstract bool AddsBias { get; }

    /// <summary>
    /// C[MR, NR] (row stride ldc) = or += packedA[kc, MR]^T · packedB[kc, NR], with bias[0, NR) added to every row
    /// when bias is not null (only where AddsBias): each element rounded as fl(product + fl(C + bias)) when
    /// accumulating and fl(product + bias) when not, which is what a C seeded with the bias and then added to gives.
    /// </summary>
    static abstract unsafe void Run(int kc, float* a, float* b, float* c, nint ldc, bool accumulate, float* bias);

    /// <summary>
    /// A ragged tile: writes at least the first rows x cols of the product into tile (row stride NR), possibly
    /// skipping work on the padding; the rest of tile is left undefined.
    /// </summary>
    static abstract unsafe void RunPartial(int rows, int cols, int kc, float* a, float* b, float* tile);
}

/// <summary>A small integer known when the JIT specialises a generic kernel, so code for unused rows vanishes.</summary>
internal interface IGemmConstant
{
    static abstract int Value { get; }
}

internal readonly struct Const1 : IGemmConstant { public static int Value => 1; }

internal readonly struct Const2 : IGemmConstant { public static int Value => 2; }

internal readonly struct Const3 : IGemmConstant { public static int Value => 3; }

internal readonly struct Const4 : IGemmConstant { public static int Value => 4; }

internal readonly struct Const8 : IGemmConstant { public static int Value => 8; }

internal readonly struct Const12 : IGemmConstant { public static int Value => 12; }

/// <summary>
/// 12 x 32 tile on AVX-512: 24 zmm accumulators, 2 B vectors and 1 broadcast per step, 24 FMAs per 14 loads.
/// Ragged tiles run a narrower instance of the same loop (4, 8 or 12 rows; 16 or 32 columns).
/// </summary>
internal readonly struct Avx512Kernel12x32 : IGemmMicroKernel
{
    public static int MR => 12;

    public static int NR => 32;

    public static bool IsSupported => Vector512.IsHardwareAccelerated && Avx512F.IsSupported;

    public static bool AddsBias => true;

    public static unsafe void Run(int kc, float* a, float* b, float* c, nint ldc, bool accumulate, float* bias) =>
        Avx512Tile<Const12, Const2>.Run(kc, a, b, c, ldc, accumulate, bias);

    public static unsafe void RunPartial(int rows, int cols, int kc, float* a, float* b, float* tile)
    {
        if (cols <= 16)
        {
            if (rows <= 4) Avx512Tile<Const4, Const1>.Run(kc, a, b, tile, 32, false, null);
            else if (rows <= 8) Avx512Tile<Const8, Const1>.Run(kc, a, b, tile, 32, false, null);
            else Avx512Tile<Const12, Const1>.Run(kc, a, b, tile, 32, false, null);
        }
        else
        {
            if (rows <= 4) Avx512Tile<Const4, Const2>.Run(kc, a, b, tile, 32, false, null);
            else if (rows <= 8) Avx512Tile<Const8, Const2>.Run(kc, a, b, tile, 32, false, null);
            else Avx512Tile<Const12, Const2>.Run(kc, a, b, tile, 32, false, null);
        }
    }
}

/// <summary>
/// The AVX-512 tile loop for the first TRows rows (of 12) and TVectors vectors of 16 columns (of 2): the JIT drops
/// the code for the rest. Packed A advances 12 floats a step and packed B 32 whatever the instance computes. The C
/// tile is prefetched before the loop and packed A a few steps ahead inside it.
/// </summary>
internal static class Avx512Tile<TRows, TVectors> where TRows : IGemmConstant where TVectors : IGemmConstant
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe void Run(int kc, float* a, float* b, float* c, nint ldc, bool accumulate, float* bias)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector512<float> c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default, c70 = default, c71 = default;
        Vector512<float> c80 = default, c81 = default, c90 = default, c91 = default;
        Vector512<float> ca0 = default, ca1 = default, cb0 = default, cb1 = default;
        for (int i = 0; i < TRows.Value; i++)
        {
            Sse.Prefetch0(c + i * ldc);
            if (TVectors.Value > 1) Sse.Prefetch0(c + i * ldc + 16); // a 32-float row not 64-byte aligned spans 3 lines
            Sse.Prefetch0(c + i * ldc + 16 * TVectors.Value - 1);
        }
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b);
            Vector512<float> b1 = TVectors.Value > 1 ? Vector512.Load(b + 16) : default;
            Sse.Prefetch0(a + 96); // packed A streams from L2: ask for it 8 steps ahead (about 2% on Zen 5)
            Vector512<float> x = Vector512.Create(a[0]);
            c00 = Avx512F.FusedMultiplyAdd(x, b0, c00);
            if (TVectors.Value > 1) c01 = Avx512F.FusedMultiplyAdd(x, b1, c01);
            if (TRows.Value > 1)
            {
                x = Vector512.Create(a[1]);
                c10 = Avx512F.FusedMultiplyAdd(x, b0, c10);
                if (TVectors.Value > 1) c11 = Avx512F.FusedMultiplyAdd(x, b1, c11);
            }
            if (TRows.Value > 2)
            {
                x = Vector512.Create(a[2]);
                c20 = Avx512F.FusedMultiplyAdd(x, b0, c20);
                if (TVectors.Value > 1) c21 = Avx512F.FusedMultiplyAdd(x, b1, c21);
            }
            if (TRows.Value > 3)
            {
                x = Vector512.Create(a[3]);
                c30 = Avx512F.FusedMultiplyAdd(x, b0, c30);
                if (TVectors.Value > 1) c31 = Avx512F.FusedMultiplyAdd(x, b1, c31);
            }
            if (TRows.Value > 4)
            {
                x = Vector512.Create(a[4]);
                c40 = Avx512F.FusedMultiplyAdd(x, b0, c40);
                if (TVectors.Value > 1) c41 = Avx512F.FusedMultiplyAdd(x, b1, c41);
            }
            if (TRows.Value > 5)
            {
                x = Vector512.Create(a[5]);
                c50 = Avx512F.FusedMultiplyAdd(x, b0, c50);
                if (TVectors.Value > 1) c51 = Avx512F.FusedMultiplyAdd(x, b1, c51);
            }
            if (TRows.Value > 6)
            {
                x = Vector512.Create(a[6]);
                c60 = Avx512F.FusedMultiplyAdd(x, b0, c60);
                if (TVectors.Value > 1) c61 = Avx512F.FusedMultiplyAdd(x, b1, c61);
            }
            if (TRows.Value > 7)
            {
                x = Vector512.Create(a[7]);
                c70 = Avx512F.FusedMultiplyAdd(x, b0, c70);
                if (TVectors.Value > 1) c71 = Avx512F.FusedMultiplyAdd(x, b1, c71);
            }
            if (TRows.Value > 8)
            {
                x = Vector512.Create(a[8]);
                c80 = Avx512F.FusedMultiplyAdd(x, b0, c80);
                if (TVectors.Value > 1) c81 = Avx512F.FusedMultiplyAdd(x, b1, c81);
            }
            if (TRows.Value > 9)
            {
                x = Vector512.Create(a[9]);
                c90 = Avx512F.FusedMultiplyAdd(x, b0, c90);
                if (TVectors.Value > 1) c91 = Avx512F.FusedMultiplyAdd(x, b1, c91);
            }
            if (TRows.Value > 10)
            {
                x = Vector512.Create(a[10]);
                ca0 = Avx512F.FusedMultiplyAdd(x, b0, ca0);
                if (TVectors.Value > 1) ca1 = Avx512F.FusedMultiplyAdd(x, b1, ca1);
            }
            if (TRows.Value > 11)
            {
                x = Vector512.Create(a[11]);
                cb0 = Avx512F.FusedMultiplyAdd(x, b0, cb0);
                if (TVectors.Value > 1) cb1 = Avx512F.FusedMultiplyAdd(x, b1, cb1);
            }
            a += 12;
            b += 32;
        }
        // The bias joins in registers: seeding C with it first (a pass of stores into the tile's lines, then loads of
        // them here) cost 4-5% of a 4096 x 1024 x 256 forward (219 -> 208 GFLOP/s, Zen 4).
        bool biased = bias != null;
        Vector512<float> bias0 = biased ? Vector512.Load(bias) : default;
        Vector512<float> bias1 = biased && TVectors.Value > 1 ? Vector512.Load(bias + 16) : default;
        StoreRow<TVectors>(c, c00, c01, accumulate, biased, bias0, bias1);
        if (TRows.Value > 1) StoreRow<TVectors>(c + ldc, c10, c11, accumulate, biased, bias0, bias1);
        if (TRows.Value > 2) StoreRow<TVectors>(c + 2 * ldc, c20, c21, accumulate, biased, bias0, bias1);
        if (TRows.Value > 3) StoreRow<TVectors>(c + 3 * ldc, c30, c31, accumulate, biased, bias0, bias1);
        if (TRows.Value > 4) StoreRow<TVectors>(c + 4 * ldc, c40, c41, accumulate, biased, bias0, bias1);
        if (TRows.Value > 5) StoreRow<TVectors>(c + 5 * ldc, c50, c51, accumulate, biased, bias0, bias1);
        if (TRows.Value > 6) StoreRow<TVectors>(c + 6 * ldc, c60, c61, accumulate, biased, bias0, bias1);
        if (TRows.Value > 7) StoreRow<TVectors>(c + 7 * ldc, c70, c71, accumulate, biased, bias0, bias1);
        if (TRows.Value > 8) StoreRow<TVectors>(c + 8 * ldc, c80, c81, accumulate, biased, bias0, bias1);
        if (TRows.Value > 9) StoreRow<TVectors>(c + 9 * ldc, c90, c91, accumulate, biased, bias0, bias1);
        if (TRows.Value > 10) StoreRow<TVectors>(c + 10 * ldc, ca0, ca1, accumulate, biased, bias0, bias1);
        if (TRows.Value > 11) StoreRow<TVectors>(c + 11 * ldc, cb0, cb1, accumulate, biased, bias0, bias1);
    }

    /// <summary>Stores v (+ C when accumulating) (+ the bias when biased), rounded as IGemmMicroKernel.Run says.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void StoreRow<TVec>(float* c, Vector512<float> v0, Vector512<float> v1, bool accumulate,
        bool biased, Vector512<float> bias0, Vector512<float> bias1)
        where TVec : IGemmConstant
    {
        if (accumulate)
        {
            v0 += biased ? Vector512.Load(c) + bias0 : Vector512.Load(c);
            if (TVec.Value > 1) v1 += biased ? Vector512.Load(c + 16) + bias1 : Vector512.Load(c + 16);
        }
        else if (biased)
        {
            v0 += bias0;
            if (TVec.Value > 1) v1 += bias1;
        }
        v0.Store(c);
        if (TVec.Value > 1) v1.Store(c + 16);
    }
}

/// <summary>6 x 16 tile on AVX2 + FMA: 12 ymm accumulators, 2 B vectors and 1 broadcast per step; the C tile is prefetched before the loop.</summary>
internal readonly struct Avx2Kernel6x16 : IGemmMicroKernel
{
    public static int MR => 6;

    public static int NR => 16;

    public static bool IsSupported => Vector256.IsHardwareAccelerated && Fma.IsSupported;

    public static bool AddsBias => true;

    public static unsafe void RunPartial(int rows, int cols, int kc, float* a, float* b, float* tile) =>
        Run(kc, a, b, tile, NR, false, null);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe void Run(int kc, float* a, float* b, float* c, nint ldc, bool accumulate, float* bias)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector256<float> c20 = default, c21 = default, c30 = default, c31 = default;
        Vector256<float> c40 = default, c41 = default, c50 = default, c51 = default;
        // The C tile comes from L2 or L3 (a block of C is 1.5 MB for gpt-mini's 384 x 1,024): ask for it before the
        // loop, as the AVX-512 tile does. Zen 4, one thread, AVX-512 off: lm head weight gradient 95-99 -> 107
        // GFLOP/s; prefetching packed A inside the loop as well added nothing.
        for (int i = 0; i < 6; i++)
        {
            Sse.Prefetch0(c + i * ldc);
            Sse.Prefetch0(c + i * ldc + 15);
        }
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Vector256.Load(b);
            Vector256<float> b1 = Vector256.Load(b + 8);
            Vector256<float> x = Vector256.Create(a[0]);
            c00 = Fma.MultiplyAdd(x, b0, c00);
            c01 = Fma.MultiplyAdd(x, b1, c01);
            x = Vector256.Create(a[1]);
            c10 = Fma.MultiplyAdd(x, b0, c10);
            c11 = Fma.MultiplyAdd(x, b1, c11);
            x = Vector256.Create(a[2]);
            c20 = Fma.MultiplyAdd(x, b0, c20);
            c21 = Fma.MultiplyAdd(x, b1, c21);
            x = Vector256.Create(a[3]);
            c30 = Fma.MultiplyAdd(x, b0, c30);
            c31 = Fma.MultiplyAdd(x, b1, c31);
            x = Vector256.Create(a[4]);
            c40 = Fma.MultiplyAdd(x, b0, c40);
            c41 = Fma.MultiplyAdd(x, b1, c41);
            x = Vector256.Create(a[5]);
            c50 = Fma.MultiplyAdd(x, b0, c50);
            c51 = Fma.MultiplyAdd(x, b1, c51);
            a += 6;
            b += 16;
        }
        // the bias joins in registers, as in the AVX-512 tile
        bool biased = bias != null;
        Vector256<float> bias0 = biased ? Vector256.Load(bias) : default, bias1 = biased ? Vector256.Load(bias + 8) : default;
        StoreRow(c, c00, c01, accumulate, biased, bias0, bias1);
        StoreRow(c + ldc, c10, c11, accumulate, biased, bias0, bias1);
        StoreRow(c + 2 * ldc, c20, c21, accumulate, biased, bias0, bias1);
        StoreRow(c + 3 * ldc, c30, c31, accumulate, biased, bias0, bias1);
        StoreRow(c + 4 * ldc, c40, c41, accumulate, biased, bias0, bias1);
        StoreRow(c + 5 * ldc, c50, c51, accumulate, biased, bias0, bias1);
    }

    /// <summary>Stores v (+ C when accumulating) (+ the bias when biased), rounded as IGemmMicroKernel.Run says.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void StoreRow(float* c, Vector256<float> v0, Vector256<float> v1, bool accumulate,
        bool biased, Vector256<float> bias0, Vector256<float> bias1)
    {
        if (accumulate)
        {
            v0 += biased ? Vector256.Load(c) + bias0 : Vector256.Load(c);
            v1 += biased ? Vector256.Load(c + 8) + bias1 : Vector256.Load(c + 8);
        }
        else if (biased)
        {
            v0 += bias0;
            v1 += bias1;
        }
        v0.Store(c);
        v1.Store(c + 8);
    }
}

/// <summary>
/// 8 x 12 tile on ARM64 NEON (AdvSimd): 24 q-register accumulators, 3 B vectors and 2 A vectors per step, 29 of the 32
/// vector registers. Each A value is used in place by lane (fmla v.4s, v.4s, v.s[i]), so a step is 5 loads for 24
/// FMAs and no broadcast. (.NET accelerates Vector128 only on ARM64, so this is the widest tile there.)
/// </summary>
internal readonly struct NeonKernel8x12 : IGemmMicroKernel
{
    public static int MR => 8;

    public static int NR => 12;

    public static bool IsSupported => AdvSimd.Arm64.IsSupported;

    /// <summary>Not measured on an ARM64 machine: the driver seeds C with the bias (the x86 tiles add it in registers).</summary>
    public static bool AddsBias => false;

    public static unsafe void RunPartial(int rows, int cols, int kc, float* a, float* b, float* tile) =>
        Run(kc, a, b, tile, NR, false, null);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe void Run(int kc, float* a, float* b, float* c, nint ldc, bool accumulate, float* bias)
    {
        Vector128<float> c00 = default, c01 = default, c02 = default, c10 = default, c11 = default, c12 = default;
        Vector128<float> c20 = default, c21 = default, c22 = default, c30 = default, c31 = default, c32 = default;
        Vector128<float> c40 = default, c41 = default, c42 = default, c50 = default, c51 = default, c52 = default;
        Vector128<float> c60 = default, c61 = default, c62 = default, c70 = default, c71 = default, c72 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector128<float> b0 = AdvSimd.LoadVector128(b), b1 = AdvSimd.LoadVector128(b + 4), b2 = AdvSimd.LoadVector128(b + 8);
            Vector128<float> a0 = AdvSimd.LoadVector128(a), a1 = AdvSimd.LoadVector128(a + 4);
            c00 = AdvSimd.Arm64.FusedMultiplyAddBySelectedScalar(c00, b0, a0, 0);
            c01 = AdvSimd.Arm64.FusedMultiplyAddBySelectedScalar(c01, b1, a0, 0);
            c02 = AdvSimd.Arm64.FusedMultiplyAddBySelectedScalar(c02, b2, a0, 0);
            c10 = AdvSimd.Arm64.FusedMultiplyAddBySelectedScalar(c10, b0, a0, 1);
            c11 = AdvSimd.Arm64.FusedMultiplyAddBySelectedScalar(c11, b1, a0, 1);
            c12 = AdvSimd.Arm64.FusedMultiplyAddBySelectedScalar(c12, b2, a0, 1);
            c20 = AdvSimd.Arm64.FusedMultiplyAddBySelectedScalar(c20, b0, a0, 2);
            c21 = AdvSimd.Arm64.FusedMultiplyAddBySelectedScalar(c21, b1, a0, 2);
            c22 = AdvSimd.Arm64.FusedMultiplyAddBySelectedScalar(c22, b2, a0, 2);
            c30 = AdvSimd.Arm64.FusedMultiplyAddBySelectedScalar(c30, b0, a0, 3);
            c31 = AdvSimd.Arm64.FusedMultiplyAddBySelectedScalar(c31, b1, a0, 3);
            c32 = AdvSimd.Arm64.FusedMultiplyAddBySelectedScalar(c32, b2, a0, 3);
            c40 = AdvSimd.Arm64.FusedMultiplyAddBySelectedScalar(c40, b0, a1, 0);
            c41 = AdvSimd.Arm64.FusedMultiplyAddBySelectedScalar(c41, b1, a1, 0);
            c42 = AdvSimd.Arm64.FusedMultiplyAddBySelectedScalar(c42, b2, a1, 0);
            c50 = AdvSimd.Arm64.FusedMultiplyAddBySelectedScalar(c50, b0, a1, 1);
            c51 = AdvSimd.Arm64.FusedMultiplyAddBySelectedScalar(c51, b1, a1, 1);
            c52 = AdvSimd.Arm64.FusedMultiplyAddBySelectedScalar(c52, b2, a1, 1);
            c60 = AdvSimd.Arm64.FusedMultiplyAddBySelectedScalar(c60, b0, a1, 2);
            c61 = AdvSimd.Arm64.FusedMultiplyAddBySelectedScalar(c61, b1, a1, 2);
            c62 = AdvSimd.Arm64.FusedMultiplyAddBySelectedScalar(c62, b2, a1, 2);
            c70 = AdvSimd.Arm64.FusedMultiplyAddBySelectedScalar(c70, b0, a1, 3);
            c71 = AdvSimd.Arm64.FusedMultiplyAddBySelectedScalar(c71, b1, a1, 3);
            c72 = AdvSimd.Arm64.FusedMultiplyAddBySelectedScalar(c72, b2, a1, 3);
            a += 8;
            b += 12;
        }
        StoreRow(c, c00, c01, c02, accumulate);
        StoreRow(c + ldc, c10, c11, c12, accumulate);
        StoreRow(c + 2 * ldc, c20, c21, c22, accumulate);
        StoreRow(c + 3 * ldc, c30, c31, c32, accumulate);
        StoreRow(c + 4 * ldc, c40, c41, c42, accumulate);
        StoreRow(c + 5 * ldc, c50, c51, c52, accumulate);
        StoreRow(c + 6 * ldc, c60, c61, c62, accumulate);
        StoreRow(c + 7 * ldc, c70, c71, c72, accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void StoreRow(float* c, Vector128<float> v0, Vector128<float> v1, Vector128<float> v2, bool accumulate)
    {
        if (accumulate)
        {
            v0 += Vector128.Load(c);
            v1 += Vector128.Load(c + 4);
            v2 += Vector128.Load(c + 8);
        }
        v0.Store(c);
        v1.Store(c + 4);
        v2.Store(c + 8);
    }
}

/// <summary>4 x 4 tile in plain scalar code: the fallback for machines without a vector unit .NET accelerates.</summary>
internal readonly struct ScalarKernel4x4 : IGemmMicroKernel
{
    public static int MR => 4;

    public static int NR => 4;

    public static bool IsSupported => true;

    public static bool AddsBias => false;

    public static unsafe void RunPartial(int rows, int cols, int kc, float* a, float* b, float* tile) =>
        Run(kc, a, b, tile, NR, false, null);

    public static unsafe void Run(int kc, float* a, float* b, float* c, nint ldc, bool accumulate, float* bias)
    {
        float c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        float c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
        for (int p = 0; p < kc; p++)
        {
            float b0 = b[0], b1 = b[1], b2 = b[2], b3 = b[3];
            float x = a[0];
            c00 += x * b0; c01 += x * b1; c02 += x * b2; c03 += x * b3;
            x = a[1];
            c10 += x * b0; c11 += x * b1; c12 += x * b2; c13 += x * b3;
            x = a[2];
            c20 += x * b0; c21 += x * b1; c22 += x * b2; c23 += x * b3;
            x = a[3];
            c30 += x * b0; c31 += x * b1; c32 += x * b2; c33 += x * b3;
            a += 4;
            b += 4;
        }
        StoreRow(c, c00, c01, c02, c03, accumulate);
        StoreRow(c + ldc, c10, c11, c12, c13, accumulate);
        StoreRow(c + 2 * ldc, c20, c21, c22, c23, accumulate);
        StoreRow(c + 3 * ldc, c30, c31, c32, c33, accumulate);
    }

    private static unsafe void StoreRow(float* c, float v0, float v1, float v2, float v3, bool accumulate)
    {
        if (accumulate)
        {
            c[0] += v0; c[1] += v1; c[2] += v2; c[3] += v3;
        }
        else
        {
            c[0] = v0; c[1] = v1; c[2] = v2; c[3] = v3;
        }
    }
}
