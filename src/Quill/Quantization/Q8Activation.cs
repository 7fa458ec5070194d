// An activation vector quantized once to int8 for the integer dot kernels, in the two groupings the weight
// formats need: 32-value blocks (for Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 weights: f32 scale, int8 values, block sum) and
// 256-value super-blocks (for Q4_K, Q5_K, Q6_K weights: f32 scale, int8 values, sums of each 16 values), as ggml's
// Q8_0 and Q8_K do. Each value is round(x / d) with d = amax / 127 of its group, rounding halves to even (what
// the AVX2 conversion does), so it lies within d / 2 of the original. Build it once per input vector and reuse it
// for every matrix that reads that vector (q, k and v share one).
// There is one quantizer: each 32-value piece is scaled, converted and packed with AVX2 (QuantizeBlock); the scalar
// twin (QuantizeScalar) computes the same numbers one by one, and the tests hold the two equal value for value.
// Decoding does not allocate: QuantDot.MatVec quantizes into one activation per thread, reused from call to call.
// Does not handle: vectors whose length is not a multiple of 32 (no 32-groups then) or of 256 (no 256-groups).
// Glossary: n values, nb = n / 32 blocks, d scale.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Quill.Quantization;

/// <summary>An activation vector in int8 form for <see cref="QuantDot"/>'s integer kernels.</summary>
public sealed unsafe class Q8Activation
{
    [ThreadStatic] private static Q8Activation? perThread;

    /// <summary>Number of values.</summary>
    public int Length { get; private set; }

    // Arrays may be longer than the groups in use (a reused per-thread activation); only the first Length values count.
    internal sbyte[] Q32 { get; private set; } = [];      // [n]
    internal float[] Scale32 { get; private set; } = [];  // [n / 32]
    internal int[] Sum32 { get; private set; } = [];      // [n / 32]
    internal sbyte[] Q256 { get; private set; } = [];     // [n]
    internal float[] Scale256 { get; private set; } = []; // [n / 256]
    internal short[] Sum16 { get; private set; } = [];    // [n / 16]

    /// <summary>True when the 32-value grouping exists (Length % 32 == 0).</summary>
    public bool Has32 { get; private set; }

    /// <summary>True when the 256-value grouping exists (Length % 256 == 0).</summary>
    public bool Has256 { get; private set; }

    private Q8Activation()
    {
    }

    /// <summary>Quantizes x in every grouping its length allows. x: [n]</summary>
    public static Q8Activation Quantize(ReadOnlySpan<float> x) => Quantize(x, vector: true);

    /// <summary>As <see cref="Quantize(ReadOnlySpan{float})"/>; vector false pins the scalar twin (tests).</summary>
    internal static Q8Activation Quantize(ReadOnlySpan<float> x, bool vector)
    {
        var a = new Q8Activation();
        fixed (float* px = x) a.Fill(px, x.Length, with256: true, vector && Avx2.IsSupported);
        return a;
    }

    /// <summary>
    /// x in 32-value groups (and 256-value ones when asked), into an activation reused by the calling thread (no
    /// allocation once it is large enough). Valid until the same thread calls this again. x: [n]
    /// </summary>
    internal static Q8Activation QuantizeForThread(float* x, int n, bool with256)
    {
        var a = perThread ??= new Q8Activation();
        a.Fill(x, n, with256, Avx2.IsSupported);
        return a;
    }

    private void Fill(float* x, int n, bool with256, bool vector)
    {
        Length = n;
        Has32 = n > 0 && n % 32 == 0;
        Has256 = with256 && n > 0 && n % 256 == 0;
        if (Has32)
        {
            if (Q32.Length < n)
            {
                Q32 = GC.AllocateArray<sbyte>(n, pinned: true);
                Scale32 = new float[n / 32];
                Sum32 = new int[n / 32];
            }
            fixed (sbyte* q = Q32)
            fixed (float* d = Scale32)
            fixed (int* s = Sum32)
            {
                for (int b = 0; b < n / 32; b++) s[b] = QuantizeGroup(x + b * 32, 32, q + b * 32, out d[b], vector);
            }
        }
        if (Has256)
        {
            if (Q256.Length < n)
            {
                Q256 = new sbyte[n];
                Scale256 = new float[n / 256];
                Sum16 = new short[n / 16];
            }
            fixed (sbyte* q = Q256)
            fixed (float* d = Scale256)
            {
                for (int b = 0; b < n / 256; b++) QuantizeGroup(x + b * 256, 256, q + b * 256, out d[b], vector);
            }
            for (int k = 0; k < n / 16; k++)
            {
                int s = 0;
                for (int i = 0; i < 16; i++) s += Q256[16 * k + i];
                Sum16[k] = (short)s;
            }
        }
    }

    // x [size] (a multiple of 32) -> q = round(x / d), d = max|x| / 127; returns the sum of q.
    private static int QuantizeGroup(float* x, int size, sbyte* q, out float d, bool vector)
    {
        float amax = 0;
        if (vector)
        {
            var m = Vector256<float>.Zero;
            for (int i = 0; i < size; i += 8) m = Vector256.Max(m, Vector256.Abs(Vector256.Load(x + i)));
            amax = Math.Max(Math.Max(Math.Max(m[0], m[1]), Math.Max(m[2], m[3])), Math.Max(Math.Max(m[4], m[5]), Math.Max(m[6], m[7])));
        }
        else
        {
            for (int i = 0; i < size; i++) amax = Math.Max(amax, Math.Abs(x[i]));
        }
        d = amax / 127f;
        float inv = d > 0 ? 1f / d : 0f;
        if (float.IsInfinity(inv))
        {
            // amax below about 4e-37: 1 / d overflows; such a group counts as zeros
            d = 0;
            inv = 0;
        }
        int sum = 0;
        for (int i = 0; i < size; i += 32) sum += vector ? QuantizeBlock(x + i, inv, q + i) : QuantizeScalar(x + i, inv, q + i);
        return sum;
    }

    // 32 floats -> round(x * inv) as int8 at q[0..32) (rounding to even, as MathF.Round), returns their sum. The
    // two packs interleave 128-bit lanes; the dword permutation puts the bytes back in order. |x * inv| <= 127 (up
    // to rounding of inv), so the saturating packs never clip.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int QuantizeBlock(float* x, float inv, sbyte* q)
    {
        var s = Vector256.Create(inv);
        var i0 = Avx.ConvertToVector256Int32(Avx.LoadVector256(x) * s);
        var i1 = Avx.ConvertToVector256Int32(Avx.LoadVector256(x + 8) * s);
        var i2 = Avx.ConvertToVector256Int32(Avx.LoadVector256(x + 16) * s);
        var i3 = Avx.ConvertToVector256Int32(Avx.LoadVector256(x + 24) * s);
        var bytes = Avx2.PackSignedSaturate(Avx2.PackSignedSaturate(i0, i1), Avx2.PackSignedSaturate(i2, i3));
        var ordered = Avx2.PermuteVar8x32(bytes.AsInt32(), Vector256.Create(0, 4, 1, 5, 2, 6, 3, 7)).AsSByte();
        ordered.Store(q);
        return Vector256.Sum((i0 + i1) + (i2 + i3));
    }

    /// <summary>Scalar twin of QuantizeBlock.</summary>
    private static int QuantizeScalar(float* x, float inv, sbyte* q)
    {
        int sum = 0;
        for (int i = 0; i < 32; i++)
        {
            int v = (int)MathF.Round(x[i] * inv);
            q[i] = (sbyte)v;
            sum += v;
        }
        return sum;
    }
}
