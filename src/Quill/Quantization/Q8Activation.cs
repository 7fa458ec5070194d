// An activation vector quantized once to int8 for the integer dot kernels, in the two groupings the weight
// formats need, with ggml's arithmetic so that Quill's quantized products round as llama.cpp's do:
// - 32-value blocks (ggml's Q8_0 / Q8_1, for Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 weights): q = round(x * 127 / amax),
//   scale d = amax / 127 rounded to f16 (the products use the f16 value, as ggml's block_q8_0 stores it), int block
//   sum, and Q8_1's s = f16(d * sum) for the formats with a minimum (Q4_1, Q5_1);
// - 256-value super-blocks (ggml's Q8_K, for Q4_K, Q5_K, Q6_K weights): with max the value of largest |x| (first
//   one on ties), iscale = -127 / max, q = round(iscale * x), f32 scale 1 / iscale, sums of each 16 values.
// Rounding is to nearest, halves to even (ggml: _mm256_round_ps / nearest_int; here the AVX2 conversion and
// MathF.Round). Build it once per input vector and reuse it for every matrix that reads that vector.
// There is one quantizer: each 32-value piece is scaled, converted and packed with AVX2 (QuantizeBlock); the scalar
// twin (QuantizeScalar) computes the same numbers one by one, and the tests hold the two equal value for value.
// QuantizeRow writes the same numbers into caller-owned memory (QuantGemm's activation rows).
// Decoding does not allocate: QuantDot.MatVec quantizes into one activation per thread, reused from call to call.
// Does not handle: vectors whose length is not a multiple of 32 (no 32-groups then) or of 256 (no 256-groups).
// Glossary: n values, nb = n / 32 blocks, d scale.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Quill.Kernels;

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
    internal float[] Offset32 { get; private set; } = []; // [n / 32] Q8_1's s = f16(d * sum), d before rounding
    internal float[] Dx4 { get; private set; } = [];      // [n / 8] each Scale32 four times (IntegerDot.Q4_0Avx512's lanes)
    internal int[] Corr4 { get; private set; } = [];      // [n / 8] per block -8 * Sum32, 0, 0, 0 (Q4_0's offset in those lanes)
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

    [ThreadStatic] private static Q8Activation[]? perThreadBatch;

    /// <summary>
    /// m rows of x (ldx apart, n values each) into activations reused by the calling thread, as QuantizeForThread
    /// does for one; the array may be longer than m. Valid until the same thread calls this again.
    /// </summary>
    internal static Q8Activation[] QuantizeBatchForThread(float* x, int ldx, int m, int n, bool with256)
    {
        var pool = perThreadBatch;
        if (pool == null || pool.Length < m)
        {
            var grown = new Q8Activation[m];
            pool?.CopyTo(grown, 0);
            perThreadBatch = pool = grown;
        }
        for (int v = 0; v < m; v++) (pool[v] ??= new Q8Activation()).Fill(x + (long)v * ldx, n, with256, Avx2.IsSupported);
        return pool;
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
                Offset32 = new float[n / 32];
                Dx4 = new float[n / 8];
                Corr4 = new int[n / 8];
            }
            fixed (sbyte* q = Q32)
            fixed (float* d = Scale32)
            fixed (int* s = Sum32)
            fixed (float* o = Offset32)
            {
                for (int b = 0; b < n / 32; b++) s[b] = QuantizeBlock32(x + b * 32, q + b * 32, out d[b], out o[b], vector);
            }
            for (int b = 0; b < n / 32; b++)
            {
                Dx4[4 * b] = Dx4[4 * b + 1] = Dx4[4 * b + 2] = Dx4[4 * b + 3] = Scale32[b];
                Corr4[4 * b] = -8 * Sum32[b];
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
            fixed (short* s16 = Sum16)
            {
                for (int b = 0; b < n / 256; b++) d[b] = QuantizeBlock256(x + b * 256, q + b * 256, s16 + b * 16, vector);
            }
        }
    }

    /// <summary>
    /// One row in ggml's Q8_0 form into caller memory (QuantGemm): q [n], d [n / 32] (f16-rounded scales), sum [n / 32],
    /// offset [n / 32] (Q8_1's s). n a multiple of 32.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void QuantizeRow32(float* x, int n, sbyte* q, float* d, int* sum, float* offset, bool vector)
    {
        for (int b = 0; b < n / 32; b++) sum[b] = QuantizeBlock32(x + b * 32, q + b * 32, out d[b], out offset[b], vector);
    }

    /// <summary>One row in ggml's Q8_K form into caller memory: q [n], d [n / 256], sums of 16 [n / 16]. n a multiple of 256.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void QuantizeRow256(float* x, int n, sbyte* q, float* d, short* sum16, bool vector)
    {
        for (int b = 0; b < n / 256; b++) d[b] = QuantizeBlock256(x + b * 256, q + b * 256, sum16 + b * 16, vector);
    }

    // ggml's quantize_row_q8_0 / q8_1: x [32] -> q = round(x * 127 / amax); d = f16(amax / 127); returns sum q;
    // offset = f16(d * sum) with d before rounding (Q8_1's s).
    private static int QuantizeBlock32(float* x, sbyte* q, out float d, out float offset, bool vector)
    {
        float amax = 0;
        if (vector)
        {
            var m = Vector256.Max(Vector256.Max(Vector256.Abs(Vector256.Load(x)), Vector256.Abs(Vector256.Load(x + 8))),
                Vector256.Max(Vector256.Abs(Vector256.Load(x + 16)), Vector256.Abs(Vector256.Load(x + 24))));
            amax = Math.Max(Math.Max(Math.Max(m[0], m[1]), Math.Max(m[2], m[3])), Math.Max(Math.Max(m[4], m[5]), Math.Max(m[6], m[7])));
        }
        else
        {
            for (int i = 0; i < 32; i++) amax = Math.Max(amax, Math.Abs(x[i]));
        }
        float draw = amax / 127f;
        float id = amax != 0 ? 127f / amax : 0f;
        if (float.IsInfinity(id))
        {
            // amax below about 4e-37: 127 / amax overflows; such a block counts as zeros
            draw = 0;
            id = 0;
        }
        d = Fp16.ToSingle(Fp16.FromSingle(draw));
        int sum = vector ? QuantizeBlock(x, id, q) : QuantizeScalar(x, id, q);
        offset = Fp16.ToSingle(Fp16.FromSingle(draw * sum));
        return sum;
    }

    // ggml's quantize_row_q8_K: x [256] -> q = round(iscale * x), iscale = -127 / max (max: the value of largest
    // |x|, first on ties); returns the scale 1 / iscale (0 for an all-zero block); sum16 [16] the sums of each 16 q.
    // The vector path finds the same max: the largest |x| by vmaxps (which keeps the running value when x is NaN, as
    // the scalar comparison skips NaN), then the first position holding it; its sums are the same integer sums.
    private static float QuantizeBlock256(float* x, sbyte* q, short* sum16, bool vector)
    {
        float amax = 0, max = 0;
        if (vector)
        {
            var acc = Vector256<float>.Zero;
            for (int i = 0; i < 256; i += 8) acc = Avx.Max(Vector256.Abs(Avx.LoadVector256(x + i)), acc);
            amax = Vec256.MaxAcross(acc); // no NaN got into acc
            if (amax != 0)
            {
                var amaxV = Vector256.Create(amax);
                for (int i = 0; i < 256; i += 8)
                {
                    uint hit = Vector256.Equals(Vector256.Abs(Avx.LoadVector256(x + i)), amaxV).ExtractMostSignificantBits();
                    if (hit != 0)
                    {
                        max = x[i + System.Numerics.BitOperations.TrailingZeroCount(hit)];
                        break;
                    }
                }
            }
        }
        else
        {
            for (int i = 0; i < 256; i++)
            {
                float ax = Math.Abs(x[i]);
                if (ax > amax)
                {
                    amax = ax;
                    max = x[i];
                }
            }
        }
        float iscale = amax != 0 ? -127f / max : 0f;
        if (float.IsInfinity(iscale)) iscale = 0;
        for (int i = 0; i < 256; i += 32)
        {
            if (vector) QuantizeBlock(x + i, iscale, q + i);
            else QuantizeScalar(x + i, iscale, q + i);
        }
        if (vector)
        {
            for (int k = 0; k < 16; k++) sum16[k] = (short)Vector256.Sum(Avx2.ConvertToVector256Int16(Vector128.Load(q + 16 * k)));
            return iscale != 0 ? 1f / iscale : 0f;
        }
        for (int k = 0; k < 16; k++)
        {
            int s = 0;
            for (int i = 0; i < 16; i++) s += q[16 * k + i];
            sum16[k] = (short)s;
        }
        return iscale != 0 ? 1f / iscale : 0f;
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
