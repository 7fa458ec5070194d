// The one int8 activation quantizer: its AVX2 path equals its scalar twin value for value (scales, int8 values,
// block sums, 16-value sums), both follow ggml's quantize_row_q8_0 / q8_1 / q8_K rules as written out plainly here,
// every value lies within half a step of x, the per-thread activation decoding reuses
// gives the same numbers as a fresh one whatever length it held before, and a group too small to scale counts as zeros.
using Quill.Quantization;

namespace Quill.Tests.Quantization;

public unsafe class Q8ActivationTests
{
    private static float[] Random(int n, int seed, float scale = 1)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return x;
    }

    private static void AssertSame(Q8Activation want, Q8Activation got)
    {
        Assert.Equal(want.Length, got.Length);
        Assert.Equal(want.Has32, got.Has32);
        Assert.Equal(want.Has256, got.Has256);
        int n = want.Length;
        if (want.Has32)
        {
            Assert.Equal(want.Q32.AsSpan(0, n).ToArray(), got.Q32.AsSpan(0, n).ToArray());
            Assert.Equal(want.Scale32.AsSpan(0, n / 32).ToArray(), got.Scale32.AsSpan(0, n / 32).ToArray());
            Assert.Equal(want.Sum32.AsSpan(0, n / 32).ToArray(), got.Sum32.AsSpan(0, n / 32).ToArray());
        }
        if (want.Has256)
        {
            Assert.Equal(want.Q256.AsSpan(0, n).ToArray(), got.Q256.AsSpan(0, n).ToArray());
            Assert.Equal(want.Scale256.AsSpan(0, n / 256).ToArray(), got.Scale256.AsSpan(0, n / 256).ToArray());
            Assert.Equal(want.Sum16.AsSpan(0, n / 16).ToArray(), got.Sum16.AsSpan(0, n / 16).ToArray());
        }
    }

    [Fact]
    public void Vector_quantization_equals_the_scalar_twin()
    {
        var rng = new Random(7);
        var x = new float[2048]; // both groupings
        for (int i = 0; i < x.Length; i++) x[i] = (float)((rng.NextDouble() - 0.5) * Math.Pow(10, rng.Next(-3, 3)));
        for (int i = 0; i < 32; i++) x[64 + i] = 0; // an all-zero block
        x[100] = 127f; x[101] = -127f; x[102] = 63.5f; x[103] = 0.5f; // exact halves: rounding to even
        var vec = Q8Activation.Quantize(x, vector: true);
        var scalar = Q8Activation.Quantize(x, vector: false);
        Assert.True(scalar.Has32 && scalar.Has256);
        AssertSame(scalar, vec);
        Assert.Contains(scalar.Q32, v => v < -100); // the data exercises the range
        Assert.Equal(64, scalar.Q32[102]); // 63.5 rounds to even
    }

    [Fact]
    public void Quantization_follows_ggml_q8_0_q8_1_and_q8_k()
    {
        float[] x = Random(512, 33, 4);
        x[300] = -9f; x[301] = 9f; // a Q8_K tie: the first (negative) one sets the sign of max
        foreach (bool vector in new[] { true, false })
        {
            var a = Q8Activation.Quantize(x, vector);
            for (int b = 0; b < 16; b++)
            {
                // Q8_0: d = amax / 127 stored as f16; q = round-half-even(x * (127 / amax)); Q8_1: s = f16(d * sum q)
                float amax = 0;
                for (int i = 0; i < 32; i++) amax = Math.Max(amax, Math.Abs(x[32 * b + i]));
                float id = 127f / amax;
                int sum = 0;
                for (int i = 0; i < 32; i++)
                {
                    int q = (int)MathF.Round(x[32 * b + i] * id, MidpointRounding.ToEven);
                    Assert.Equal(q, a.Q32[32 * b + i]);
                    sum += q;
                }
                Assert.Equal((float)(Half)(amax / 127f), a.Scale32[b]);
                Assert.Equal((float)(Half)(amax / 127f * sum), a.Offset32[b]);
            }
            for (int b = 0; b < 2; b++)
            {
                // Q8_K: max = the value of largest |x| (first on ties), iscale = -127 / max, q = round(iscale x), d = 1 / iscale
                float amax = 0, max = 0;
                for (int i = 0; i < 256; i++)
                {
                    if (Math.Abs(x[256 * b + i]) > amax)
                    {
                        amax = Math.Abs(x[256 * b + i]);
                        max = x[256 * b + i];
                    }
                }
                float iscale = -127f / max;
                for (int i = 0; i < 256; i++) Assert.Equal((int)MathF.Round(iscale * x[256 * b + i], MidpointRounding.ToEven), a.Q256[256 * b + i]);
                Assert.Equal(1f / iscale, a.Scale256[b]);
            }
            Assert.Equal(-127, a.Q256[300]); // block 1's max is the first of the tie, -9: iscale = -127 / -9
            Assert.Equal(127, a.Q256[301]);
        }
    }

    [Fact]
    public void Values_are_within_half_a_step()
    {
        float[] x = Random(512, 21, 5);
        var a = Q8Activation.Quantize(x);
        Assert.True(a.Has32 && a.Has256);
        for (int i = 0; i < x.Length; i++)
        {
            // the 32-group scale is f16-rounded (ggml's block_q8_0): q * 2^-11 of it more
            float d32 = a.Scale32[i / 32], d256 = Math.Abs(a.Scale256[i / 256]);
            Assert.True(Math.Abs(a.Q32[i] * d32 - x[i]) <= d32 / 2 * 1.0001f + 127 * d32 / 2048);
            Assert.True(Math.Abs(a.Q256[i] * a.Scale256[i / 256] - x[i]) <= d256 / 2 * 1.0001f);
        }
        for (int b = 0; b < 16; b++) Assert.Equal(a.Q32.Skip(32 * b).Take(32).Sum(v => v), a.Sum32[b]);
        for (int k = 0; k < 32; k++) Assert.Equal(a.Q256.Skip(16 * k).Take(16).Sum(v => v), a.Sum16[k]);
        Assert.False(Q8Activation.Quantize(new float[96]).Has256);
        Assert.False(Q8Activation.Quantize(new float[100]).Has32);
        Assert.Throws<ArgumentException>(() => QuantDot.Dot(GgmlType.Q4_K, new byte[3 * 18], Q8Activation.Quantize(new float[96])));
        Assert.Throws<ArgumentException>(() => QuantDot.Dot(GgmlType.F16, new byte[64], Q8Activation.Quantize(new float[32])));
    }

    [Fact]
    public void Per_thread_activation_matches_a_fresh_one_after_other_lengths()
    {
        // runs on one test thread: a long vector, then a shorter one, then 32-only, then with 256-groups again
        foreach (var (n, with256) in new[] { (1024, true), (288, false), (768, true), (64, false), (768, false) })
        {
            float[] x = Random(n, n, 3);
            Q8Activation got;
            fixed (float* px = x) got = Q8Activation.QuantizeForThread(px, n, with256);
            var want = Q8Activation.Quantize(x, vector: false);
            Assert.Equal(with256, got.Has256);
            Assert.True(got.Has32);
            fixed (sbyte* q = got.Q32)
            {
                Assert.Equal(want.Q32, new ReadOnlySpan<sbyte>(q, n).ToArray());
            }
            Assert.Equal(want.Scale32, got.Scale32.AsSpan(0, n / 32).ToArray());
            Assert.Equal(want.Sum32, got.Sum32.AsSpan(0, n / 32).ToArray());
            if (with256) Assert.Equal(want.Sum16, got.Sum16.AsSpan(0, n / 16).ToArray());
        }
    }

    [Fact]
    public void A_group_too_small_to_scale_counts_as_zeros()
    {
        var x = new float[64];
        x[3] = 1e-38f; // amax / 127 is subnormal and 1 / that overflows
        x[40] = 2f;
        foreach (bool vector in new[] { true, false })
        {
            var a = Q8Activation.Quantize(x, vector);
            Assert.Equal(0f, a.Scale32[0]);
            Assert.All(a.Q32.Take(32), v => Assert.Equal(0, v));
            Assert.Equal(127, a.Q32[40]);
        }
    }
}
