// The handful of vector operations the attention kernels need, behind one static-abstract interface so that the
// kernels are written once and the JIT specializes them for Vector512, Vector256, Vector128 (ARM64 NEON, where .NET
// accelerates no wider vector) or plain float (the scalar fallback, one "lane"). Each struct is a zero-size tag: calls through it inline to the hardware instructions.
// Does not handle: anything beyond float32; widths other than 512, 256, 128 and 1.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Quill.Kernels;

/// <summary>Vector operations over TV, a register of Lanes floats (TV = float for the scalar path).</summary>
internal unsafe interface IAttentionVector<TV> where TV : struct
{
    static abstract int Lanes { get; }
    static abstract TV Zero { get; }
    static abstract TV Load(float* p);
    static abstract void Store(float* p, TV x);
    static abstract TV Broadcast(float x);
    /// <summary>a * b + c.</summary>
    static abstract TV Fma(TV a, TV b, TV c);
    static abstract TV Mul(TV a, TV b);
    static abstract TV Add(TV a, TV b);
    static abstract TV Sub(TV a, TV b);
    static abstract TV Max(TV a, TV b);
    static abstract TV Exp(TV x);
    static abstract float SumAcross(TV x);
    static abstract float MaxAcross(TV x);
    /// <summary>Lanes whose position (firstPos + lane) is above lastPos become -infinity (the causal mask).</summary>
    static abstract TV MaskAbove(TV x, int firstPos, int lastPos);
    /// <summary>Lanes whose position (firstPos + lane) is below firstVisible become -infinity (window, document start).</summary>
    static abstract TV MaskBelow(TV x, int firstPos, int firstVisible);
    static abstract TV Div(TV a, TV b);
}

internal unsafe partial struct Vec512 : IAttentionVector<Vector512<float>>
{
    public static int Lanes => 16;
    public static Vector512<float> Zero => Vector512<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(float* p) => Vector512.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector512<float> x) => x.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Broadcast(float x) => Vector512.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Fma(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Mul(Vector512<float> a, Vector512<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Sub(Vector512<float> a, Vector512<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Max(Vector512<float> a, Vector512<float> b) => Vector512.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Exp(Vector512<float> x) => AttentionExp.Exp(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float SumAcross(Vector512<float> x) => Vector512.Sum(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(Vector512<float> x) => Vec256.MaxAcross(Vector256.Max(x.GetLower(), x.GetUpper()));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> MaskAbove(Vector512<float> x, int firstPos, int lastPos)
    {
        var above = Vector512.GreaterThan(Vector512<int>.Indices + Vector512.Create(firstPos), Vector512.Create(lastPos));
        return Vector512.ConditionalSelect(above.AsSingle(), Vector512.Create(float.NegativeInfinity), x);
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> MaskBelow(Vector512<float> x, int firstPos, int firstVisible)
    {
        var below = Vector512.LessThan(Vector512<int>.Indices + Vector512.Create(firstPos), Vector512.Create(firstVisible));
        return Vector512.ConditionalSelect(below.AsSingle(), Vector512.Create(float.NegativeInfinity), x);
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Div(Vector512<float> a, Vector512<float> b) => a / b;
}

internal unsafe partial struct Vec256 : IAttentionVector<Vector256<float>>
{
    public static int Lanes => 8;
    public static Vector256<float> Zero => Vector256<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(float* p) => Vector256.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector256<float> x) => x.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Broadcast(float x) => Vector256.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Fma(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Mul(Vector256<float> a, Vector256<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Sub(Vector256<float> a, Vector256<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Max(Vector256<float> a, Vector256<float> b) => Vector256.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Exp(Vector256<float> x) => AttentionExp.Exp(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float SumAcross(Vector256<float> x) => Vector256.Sum(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(Vector256<float> x)
    {
        var m = Vector128.Max(x.GetLower(), x.GetUpper());
        return MathF.Max(MathF.Max(m[0], m[1]), MathF.Max(m[2], m[3]));
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> MaskAbove(Vector256<float> x, int firstPos, int lastPos)
    {
        var above = Vector256.GreaterThan(Vector256<int>.Indices + Vector256.Create(firstPos), Vector256.Create(lastPos));
        return Vector256.ConditionalSelect(above.AsSingle(), Vector256.Create(float.NegativeInfinity), x);
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> MaskBelow(Vector256<float> x, int firstPos, int firstVisible)
    {
        var below = Vector256.LessThan(Vector256<int>.Indices + Vector256.Create(firstPos), Vector256.Create(firstVisible));
        return Vector256.ConditionalSelect(below.AsSingle(), Vector256.Create(float.NegativeInfinity), x);
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Div(Vector256<float> a, Vector256<float> b) => a / b;
}

internal unsafe partial struct Vec128 : IAttentionVector<Vector128<float>>
{
    public static int Lanes => 4;
    public static Vector128<float> Zero => Vector128<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Load(float* p) => Vector128.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector128<float> x) => x.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Broadcast(float x) => Vector128.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Fma(Vector128<float> a, Vector128<float> b, Vector128<float> c) => Vector128.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Mul(Vector128<float> a, Vector128<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Sub(Vector128<float> a, Vector128<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Max(Vector128<float> a, Vector128<float> b) => Vector128.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Exp(Vector128<float> x) => AttentionExp.Exp(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float SumAcross(Vector128<float> x) => Vector128.Sum(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(Vector128<float> x) => MathF.Max(MathF.Max(x[0], x[1]), MathF.Max(x[2], x[3]));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> MaskAbove(Vector128<float> x, int firstPos, int lastPos)
    {
        var above = Vector128.GreaterThan(Vector128<int>.Indices + Vector128.Create(firstPos), Vector128.Create(lastPos));
        return Vector128.ConditionalSelect(above.AsSingle(), Vector128.Create(float.NegativeInfinity), x);
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> MaskBelow(Vector128<float> x, int firstPos, int firstVisible)
    {
        var below = Vector128.LessThan(Vector128<int>.Indices + Vector128.Create(firstPos), Vector128.Create(firstVisible));
        return Vector128.ConditionalSelect(below.AsSingle(), Vector128.Create(float.NegativeInfinity), x);
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Div(Vector128<float> a, Vector128<float> b) => a / b;
}

internal unsafe partial struct VecScalar : IAttentionVector<float>
{
    public static int Lanes => 1;
    public static float Zero => 0f;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Load(float* p) => *p;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, float x) => *p = x;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Broadcast(float x) => x;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Fma(float a, float b, float c) => MathF.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Mul(float a, float b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Add(float a, float b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sub(float a, float b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Max(float a, float b) => MathF.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Exp(float x) => MathF.Exp(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float SumAcross(float x) => x;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float MaxAcross(float x) => x;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaskAbove(float x, int firstPos, int lastPos) => firstPos > lastPos ? float.NegativeInfinity : x;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaskBelow(float x, int firstPos, int firstVisible) => firstPos < firstVisible ? float.NegativeInfinity : x;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Div(float a, float b) => a / b;
}
