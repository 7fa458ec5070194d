// The vector width of the elementwise, normalization, loss, RoPE and optimizer kernels, and the few operations they
// need beyond the attention kernels' (IAttentionVector): one, negation, square root, the fast max and the full-range
// exp of ElementwiseMath. Each kernel body is written once over TOps / TV and the JIT specializes it for Vector512,
// Vector256, Vector128 (NEON on ARM64, where .NET accelerates no wider vector; SSE on an x86 without AVX) or plain
// float (the scalar fallback, one "lane"). Production passes KernelWidth.Auto; the tests pin every width on one CPU.
// Does not handle: anything but float32.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Quill.Kernels;

/// <summary>Vector width of the elementwise kernels: Auto picks the widest the hardware accelerates.</summary>
internal enum KernelWidth { Auto, Vector512, Vector256, Vector128, Scalar }

/// <summary>Resolves <see cref="KernelWidth.Auto"/> to this CPU's widest accelerated vector.</summary>
internal static class KernelWidths
{
    /// <summary>The width Auto runs at on this CPU.</summary>
    public static KernelWidth Best { get; } =
        Vector512.IsHardwareAccelerated ? KernelWidth.Vector512
        : Vector256.IsHardwareAccelerated ? KernelWidth.Vector256
        : Vector128.IsHardwareAccelerated ? KernelWidth.Vector128
        : KernelWidth.Scalar;

    public static KernelWidth Resolve(KernelWidth width) => width == KernelWidth.Auto ? Best : width;

    /// <summary>Register width in bits (0 for scalar).</summary>
    public static int Bits(KernelWidth width) => Resolve(width) switch
    {
        KernelWidth.Vector512 => 512,
        KernelWidth.Vector256 => 256,
        KernelWidth.Vector128 => 128,
        _ => 0,
    };
}

/// <summary>The attention vector operations plus what the elementwise kernels need.</summary>
internal unsafe interface IKernelVector<TV> : IAttentionVector<TV> where TV : struct
{
    static abstract TV One { get; }
    static abstract TV Neg(TV x);
    static abstract TV Sqrt(TV x);
    /// <summary>Lane-wise max without NaN / signed-zero fix-ups (one instruction).</summary>
    static abstract TV MaxNative(TV a, TV b);
    /// <summary>e^x over float's whole range (ElementwiseMath.Exp: +infinity above 88.37, 0 below -87.33).</summary>
    static abstract TV ExpFull(TV x);
    /// <summary>Swaps the lanes of each pair: [x1, x0, x3, x2, ...].</summary>
    static abstract TV SwapPairs(TV x);
    /// <summary>Lanes/2 floats from p, each twice: [p0, p0, p1, p1, ...] (reads only Lanes/2 floats).</summary>
    static abstract TV LoadPairs(float* p);
    /// <summary>Even lanes from even, odd lanes from odd.</summary>
    static abstract TV EvenOdd(TV even, TV odd);
}

internal unsafe partial struct Vec512 : IKernelVector<Vector512<float>>
{
    public static Vector512<float> One => Vector512<float>.One;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Neg(Vector512<float> x) => -x;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Sqrt(Vector512<float> x) => Vector512.Sqrt(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> MaxNative(Vector512<float> a, Vector512<float> b) => Vector512.MaxNative(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> ExpFull(Vector512<float> x) => ElementwiseMath.Exp(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> SwapPairs(Vector512<float> x) =>
        Vector512.Shuffle(x, Vector512.Create(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadPairs(float* p) =>
        Vector512.Shuffle(Vector256.Load(p).ToVector512Unsafe(), Vector512.Create(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> EvenOdd(Vector512<float> even, Vector512<float> odd) =>
        Vector512.ConditionalSelect(Vector512.Create(-1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0).AsSingle(), even, odd);
}

internal unsafe partial struct Vec256 : IKernelVector<Vector256<float>>
{
    public static Vector256<float> One => Vector256<float>.One;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Neg(Vector256<float> x) => -x;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Sqrt(Vector256<float> x) => Vector256.Sqrt(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> MaxNative(Vector256<float> a, Vector256<float> b) => Vector256.MaxNative(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> ExpFull(Vector256<float> x) => ElementwiseMath.Exp(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> SwapPairs(Vector256<float> x) => Vector256.Shuffle(x, Vector256.Create(1, 0, 3, 2, 5, 4, 7, 6));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LoadPairs(float* p) =>
        Vector256.Shuffle(Vector128.Load(p).ToVector256Unsafe(), Vector256.Create(0, 0, 1, 1, 2, 2, 3, 3));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> EvenOdd(Vector256<float> even, Vector256<float> odd) =>
        Vector256.ConditionalSelect(Vector256.Create(-1, 0, -1, 0, -1, 0, -1, 0).AsSingle(), even, odd);
}

internal unsafe partial struct Vec128 : IKernelVector<Vector128<float>>
{
    public static Vector128<float> One => Vector128<float>.One;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Neg(Vector128<float> x) => -x;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Sqrt(Vector128<float> x) => Vector128.Sqrt(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> MaxNative(Vector128<float> a, Vector128<float> b) => Vector128.MaxNative(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> ExpFull(Vector128<float> x) => ElementwiseMath.Exp(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> SwapPairs(Vector128<float> x) => Vector128.Shuffle(x, Vector128.Create(1, 0, 3, 2));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> LoadPairs(float* p) =>
        Vector128.Shuffle(Vector64.Load(p).ToVector128Unsafe(), Vector128.Create(0, 0, 1, 1));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> EvenOdd(Vector128<float> even, Vector128<float> odd) =>
        Vector128.ConditionalSelect(Vector128.Create(-1, 0, -1, 0).AsSingle(), even, odd);
}

internal unsafe partial struct VecScalar : IKernelVector<float>
{
    public static float One => 1f;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Neg(float x) => -x;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sqrt(float x) => MathF.Sqrt(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float MaxNative(float a, float b) => MathF.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float ExpFull(float x) => MathF.Exp(x);
    // One lane holds no pair: the RoPE kernel takes its scalar loop at this width and never calls these.
    public static float SwapPairs(float x) => throw new NotSupportedException("a scalar lane holds no pair");
    public static float LoadPairs(float* p) => throw new NotSupportedException("a scalar lane holds no pair");
    public static float EvenOdd(float even, float odd) => throw new NotSupportedException("a scalar lane holds no pair");
}
