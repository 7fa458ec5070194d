// Checks the vectorized F16 and BF16 conversions against their reference twins: every one of the 65536 half /
// bfloat16 bit patterns to float, and a million random float bit patterns (plus edge values) back.
using Quill.Quantization;
using Quill.Kernels;

namespace Quill.Tests.Quantization;

public class FloatConversionTests
{
    private static readonly ushort[] AllBits = Enumerable.Range(0, 65536).Select(i => (ushort)i).ToArray();

    private static float[] EdgeAndRandomFloats()
    {
        var rng = new Random(1234);
        var list = new List<float>
        {
            0f, -0f, 1f, -1f, 65504f, 65519.99f, 65520f, 65536f, float.MaxValue, float.MinValue, float.Epsilon, -float.Epsilon,
            float.PositiveInfinity, float.NegativeInfinity, float.NaN, 6.1035156e-05f, 6.1035153e-05f, 5.9604645e-08f, 2.9802322e-08f,
            2.9802326e-08f, 8.940697e-08f, 1.0009765625f, 1.00048828125f, 1.00146484375f, 3.3895314e38f, 3.3961776e38f,
        };
        for (int i = 0; i < 1_000_000; i++) list.Add(BitConverter.UInt32BitsToSingle((uint)rng.NextInt64(0, 1L << 32)));
        // concentrate on the half range too
        for (int i = 0; i < 200_000; i++) list.Add((float)((rng.NextDouble() - 0.5) * Math.Pow(2, rng.Next(-30, 18))));
        return list.ToArray();
    }

    private static void AssertSameFloats(float[] expected, float[] actual)
    {
        for (int i = 0; i < expected.Length; i++)
        {
            if (float.IsNaN(expected[i])) Assert.True(float.IsNaN(actual[i]), $"index {i}");
            else Assert.True(BitConverter.SingleToUInt32Bits(expected[i]) == BitConverter.SingleToUInt32Bits(actual[i]), $"index {i}: {expected[i]} vs {actual[i]}");
        }
    }

    private static void AssertSameHalves(ushort[] expected, ushort[] actual, Func<ushort, bool> isNaN)
    {
        for (int i = 0; i < expected.Length; i++)
        {
            if (isNaN(expected[i])) Assert.True(isNaN(actual[i]), $"index {i}");
            else Assert.True(expected[i] == actual[i], $"index {i}: 0x{expected[i]:X4} vs 0x{actual[i]:X4}");
        }
    }

    [Fact]
    public void Fp16_to_single_matches_reference_for_all_bit_patterns()
    {
        // an odd length exercises the scalar tail
        var src = AllBits.AsSpan(0, 65533);
        var fast = new float[src.Length];
        var reference = new float[src.Length];
        Fp16.ToSingle(src, fast);
        Fp16.ToSingleReference(src, reference);
        AssertSameFloats(reference, fast);
    }

    [Fact]
    public void Fp16_from_single_matches_reference()
    {
        float[] src = EdgeAndRandomFloats();
        var fast = new ushort[src.Length];
        var reference = new ushort[src.Length];
        Fp16.FromSingle(src, fast);
        Fp16.FromSingleReference(src, reference);
        AssertSameHalves(reference, fast, h => (h & 0x7C00) == 0x7C00 && (h & 0x3FF) != 0);
    }

    [Fact]
    public void Bf16_to_single_is_the_top_half_of_the_float()
    {
        var fast = new float[AllBits.Length];
        var reference = new float[AllBits.Length];
        Bf16.ToSingle(AllBits, fast);
        Bf16.ToSingleReference(AllBits, reference);
        AssertSameFloats(reference, fast);
        for (int i = 0; i < AllBits.Length; i += 251)
            Assert.Equal((uint)AllBits[i] << 16, BitConverter.SingleToUInt32Bits(fast[i]));
    }

    [Fact]
    public void Bf16_from_single_rounds_to_nearest_even()
    {
        float[] src = EdgeAndRandomFloats();
        var fast = new ushort[src.Length];
        var reference = new ushort[src.Length];
        Bf16.FromSingle(src, fast);
        Bf16.FromSingleReference(src, reference);
        static bool IsNaN(ushort b) => (b & 0x7F80) == 0x7F80 && (b & 0x7F) != 0;
        AssertSameHalves(reference, fast, IsNaN);
        // independent check: the result is one of the two neighbours and the nearer one (ties to even)
        for (int i = 0; i < src.Length; i += 7)
        {
            float x = src[i];
            if (!float.IsFinite(x)) continue;
            uint bits = BitConverter.SingleToUInt32Bits(x);
            uint down = bits & 0xFFFF0000;
            double lo = BitConverter.UInt32BitsToSingle(down);
            double hi = (down & 0x7FFFFFFF) == 0x7F7F0000 ? Math.CopySign(Math.Pow(2, 128), x) : BitConverter.UInt32BitsToSingle(down + 0x10000);
            double dl = Math.Abs(x - lo), dh = Math.Abs(hi - x);
            uint want = dl < dh ? down >> 16 : dh < dl ? (down + 0x10000) >> 16 : ((down >> 16) & 1) == 0 ? down >> 16 : (down + 0x10000) >> 16;
            Assert.Equal(want, (uint)fast[i]);
        }
    }

    [Fact]
    public unsafe void Widen512Fast_gives_every_half_bit_pattern_the_exact_float_NaN_payloads_included()
    {
        if (!System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated) return; // the kernel runs only where Vector512 is accelerated
        var want = new float[AllBits.Length];
        Fp16.ToSingle(AllBits, want);
        fixed (ushort* h = AllBits)
        {
            for (int i = 0; i < AllBits.Length; i += 16)
            {
                var got = Fp16.Widen512Fast(System.Runtime.Intrinsics.Vector256.Load(h + i));
                for (int j = 0; j < 16; j++)
                    Assert.True(BitConverter.SingleToUInt32Bits(want[i + j]) == BitConverter.SingleToUInt32Bits(got[j]), $"half 0x{i + j:X4}: {want[i + j]} vs {got[j]}");
            }
        }
    }

    [Theory]
    [InlineData(8, 768, false)]
    [InlineData(11, 290, false)] // ragged: rows past the last group of four, a 2-value tail past the last 16 (and 8)
    [InlineData(4, 7, false)]
    [InlineData(9, 300, true)]
    public unsafe void Half_decode_product_widening_in_registers_equals_widening_first_bit_for_bit(int n, int k, bool bf16)
    {
        var rnd = new Random(n * 1000 + k);
        var w = new ushort[n * k];
        var x = new float[k];
        for (int i = 0; i < w.Length; i++)
        {
            float v = (float)(rnd.NextDouble() * 2 - 1) * (i % 97 == 0 ? 1e-5f : 0.1f); // some F16 subnormals
            w[i] = bf16 ? Bf16.FromSingle(v) : Fp16.FromSingle(v);
        }
        for (int i = 0; i < k; i++) x[i] = (float)(rnd.NextDouble() * 2 - 1) * (i % 31 == 0 ? 3e4f : 1f);
        var wf = new float[w.Length];
        if (bf16) Bf16.ToSingle(w, wf);
        else Fp16.ToSingle(w, wf);
        var reference = new float[n];
        GemvReference.MultiplyBatch(wf, n, k, x, 1, reference);
        foreach (var width in AcceleratedWidths())
        {
            float[] fused = new float[n], buffered = FourRowKernel(width, wf, n, k, x);
            foreach (bool finite in new[] { false, true })
            {
                fixed (ushort* pw = w)
                fixed (float* px = x, pf = fused)
                    Gemv.RunHalf(bf16, pw, n, k, px, pf, width, finite);
                Assert.True(buffered.AsSpan().SequenceEqual(fused), $"{width}, finite {finite}: {string.Join(", ", fused)} vs {string.Join(", ", buffered)}");
            }
            for (int i = 0; i < n; i++) Assert.True(Math.Abs(reference[i] - fused[i]) < 1e-3 * (1 + Math.Abs(reference[i])), $"{width} row {i}: {fused[i]} vs {reference[i]}");
        }
    }

    [Fact]
    public unsafe void F16_decode_product_keeps_infinities_NaNs_and_large_activations_exact()
    {
        const int n = 8, k = 64;
        var rnd = new Random(5);
        var w = new ushort[n * k];
        for (int i = 0; i < w.Length; i++) w[i] = Fp16.FromSingle((float)(rnd.NextDouble() - 0.5));
        w[3] = 0x7C00;          // +inf in row 0
        w[k + 5] = 0xFE00;      // NaN in row 1
        w[2 * k + 7] = 0x7BFF;  // 65504, the largest half, in row 2
        var x = new float[k];
        for (int i = 0; i < k; i++) x[i] = (float)(rnd.NextDouble() - 0.5);
        x[9] = 70000f;          // x * 2^112 would overflow: the scaled path must step aside
        fixed (ushort* pw = w) Assert.False(Fp16.AllFinite(pw, w.Length));
        fixed (ushort* pw = w) Assert.True(Fp16.AllFinite(pw + 2 * k, w.Length - 2 * k));
        var wf = new float[w.Length];
        Fp16.ToSingle(w, wf);
        foreach (var width in AcceleratedWidths())
        {
            float[] fused = new float[n], buffered = FourRowKernel(width, wf, n, k, x);
            fixed (ushort* pw = w)
            fixed (float* px = x, pf = fused)
            {
                Gemv.RunHalf(false, pw, n, k, px, pf, width, finite: false);
                Assert.True(buffered.AsSpan().SequenceEqual(fused), $"{width}: {string.Join(", ", fused)} vs {string.Join(", ", buffered)}");
                Assert.True(float.IsNaN(fused[1]), $"{width}: a NaN weight gave {fused[1]}");
                Assert.True(float.IsInfinity(fused[0]) || float.IsNaN(fused[0]), $"{width}: an infinite weight gave {fused[0]}");
                Gemv.RunHalf(false, pw + 2 * k, n - 2, k, px, pf, width, finite: true); // finite rows, large x
                Assert.True(buffered.AsSpan(2).SequenceEqual(fused.AsSpan(0, n - 2)), $"{width} large x");
            }
        }
    }

    // Each row of wf through the fp32 four-row kernel at this width (the row four times, result 0): what the half
    // kernels must equal bit for bit, rows past the last group of four included.
    private static unsafe float[] FourRowKernel(GemvWidth width, float[] wf, int n, int k, float[] x)
    {
        var y = new float[n];
        var four = new float[4 * k];
        var out4 = new float[4];
        for (int r = 0; r < n; r++)
        {
            for (int j = 0; j < 4; j++) Array.Copy(wf, r * k, four, j * k, k);
            fixed (float* pw = four, px = x, po = out4) Gemv.Rows(width, pw, k, px, 1, po, 1, 0, 4);
            y[r] = out4[0];
        }
        return y;
    }

    private static IEnumerable<GemvWidth> AcceleratedWidths()
    {
        if (System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated) yield return GemvWidth.Vector512;
        if (System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated) yield return GemvWidth.Vector256;
        if (System.Runtime.Intrinsics.Vector128.IsHardwareAccelerated) yield return GemvWidth.Vector128;
        yield return GemvWidth.Scalar;
    }
}
