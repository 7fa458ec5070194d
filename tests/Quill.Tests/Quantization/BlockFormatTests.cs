// Round-trips every block format and checks each value against the error bound its format implies (stated per
// format below, computed from the data alone), checks a few hand-built blocks against the bit layouts ggml
// documents, and checks that F16 tensors of a real GGUF dequantize to the same floats an independent conversion
// gives.
using System.Buffers.Binary;
using Quill.Formats.Gguf;
using Quill.Quantization;
using Quill.Tests.Support;

namespace Quill.Tests.Quantization;

public class BlockFormatTests
{
    private const float Ulp16 = 1f / 1024; // relative spacing of f16 values

    /// <summary>Gaussian-ish data with outliers, plus blocks that are constant, zero, all negative and all positive.</summary>
    private static float[] Sample(int n, int seed)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++)
        {
            double g = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
            x[i] = (float)(g * 0.05 * (1 + (i / 256 % 4)));
            if (rng.Next(100) == 0) x[i] *= 20;
        }
        for (int i = 0; i < 32 && 256 + i < n; i++) x[256 + i] = 0.3f;         // constant
        for (int i = 0; i < 32 && 288 + i < n; i++) x[288 + i] = 0;            // zero
        for (int i = 0; i < 32 && 320 + i < n; i++) x[320 + i] = -1 - i * 0.01f; // all negative
        for (int i = 0; i < 32 && 352 + i < n; i++) x[352 + i] = 2 + i * 0.03f;  // all positive
        return x;
    }

    private static float[] RoundTrip(GgmlType type, float[] x)
    {
        var q = new byte[GgmlTypeInfo.RowBytes(type, x.Length)];
        GgmlQuant.Quantize(type, x, q);
        var y = new float[x.Length];
        GgmlQuant.Dequantize(type, q, y);
        return y;
    }

    private static (float Min, float Max, float AbsMax, float SignedMax) Stats(ReadOnlySpan<float> x)
    {
        float min = float.PositiveInfinity, max = float.NegativeInfinity, amax = 0, smax = 0;
        foreach (float v in x)
        {
            min = Math.Min(min, v);
            max = Math.Max(max, v);
            if (Math.Abs(v) > amax)
            {
                amax = Math.Abs(v);
                smax = v;
            }
        }
        return (min, max, amax, smax);
    }

    private static void AssertWithin(float[] x, float[] y, Func<int, float> bound, string format)
    {
        for (int i = 0; i < x.Length; i++)
        {
            float err = Math.Abs(x[i] - y[i]);
            Assert.True(err <= bound(i), $"{format} value {i}: {x[i]} came back as {y[i]}, error {err} > bound {bound(i)}");
        }
    }

    // Q8_0: d = amax / 127 (rounded to f16); every value within d / 2.
    [Fact]
    public void Q8_0_within_half_a_step()
    {
        float[] x = Sample(32 * 40, 1), y = RoundTrip(GgmlType.Q8_0, x);
        AssertWithin(x, y, i =>
        {
            var s = Stats(x.AsSpan(i / 32 * 32, 32));
            return 0.5f * s.AbsMax / 127 * (1 + 2 * Ulp16) + 1e-7f * s.AbsMax;
        }, "Q8_0");
    }

    // Q4_0 / Q5_0: the largest-magnitude value m maps to the lowest code, d = |m| / 8 (or / 16); values on the
    // other side only reach 7|d| (15|d|), so the bound is max(d / 2, |x| - 7|d|) (resp. 15|d|).
    [Theory]
    [InlineData(GgmlType.Q4_0, 8)]
    [InlineData(GgmlType.Q5_0, 16)]
    public void Symmetric_formats_within_half_a_step_or_the_clip(GgmlType type, int half)
    {
        float[] x = Sample(32 * 40, 2), y = RoundTrip(type, x);
        AssertWithin(x, y, i =>
        {
            var s = Stats(x.AsSpan(i / 32 * 32, 32));
            float d = s.AbsMax / half;
            return Math.Max(0.5f * d * (1 + 2 * Ulp16), Math.Abs(x[i]) - (half - 1) * d * (1 - 2 * Ulp16)) + 1e-6f * s.AbsMax;
        }, type.ToString());
    }

    // Q4_1 / Q5_1: d = (max - min) / 15 (or / 31) with m <= min stored in f16; every value within d / 2, plus one
    // f16 ulp of min for the stored minimum.
    [Theory]
    [InlineData(GgmlType.Q4_1, 15)]
    [InlineData(GgmlType.Q5_1, 31)]
    public void Affine_formats_within_half_a_step(GgmlType type, int levels)
    {
        float[] x = Sample(32 * 40, 3), y = RoundTrip(type, x);
        AssertWithin(x, y, i =>
        {
            var s = Stats(x.AsSpan(i / 32 * 32, 32));
            float slack = Ulp16 * Math.Abs(s.Min);
            return 0.5f * (s.Max - s.Min + slack) / levels * (1 + 2 * Ulp16) + slack + 1e-6f * s.AbsMax;
        }, type.ToString());
    }

    // Q4_K / Q5_K: sub-block j (32 values) has range r_j = max_j - min(min_j, 0); with M the largest
    // |min(min_j, 0)| and R the largest r_j of the super-block, the step is at most (r_j + M / 63) / L +
    // (R + M / 63) / (L * 63) for L = 15 (Q4_K) or 31 (Q5_K) levels, and every value is within half of it.
    [Theory]
    [InlineData(GgmlType.Q4_K, 15)]
    [InlineData(GgmlType.Q5_K, 31)]
    public void K_quants_with_mins_within_half_a_step(GgmlType type, int levels)
    {
        float[] x = Sample(256 * 6, 4), y = RoundTrip(type, x);
        AssertWithin(x, y, i =>
        {
            int sb = i / 256 * 256;
            float bigR = 0, bigM = 0;
            for (int j = 0; j < 8; j++)
            {
                var t = Stats(x.AsSpan(sb + 32 * j, 32));
                bigM = Math.Max(bigM, -Math.Min(t.Min, 0));
                bigR = Math.Max(bigR, t.Max - Math.Min(t.Min, 0));
            }
            var s = Stats(x.AsSpan(i / 32 * 32, 32));
            float rj = s.Max - Math.Min(s.Min, 0);
            float dmin = bigM / 63 * (1 + 2 * Ulp16);
            float d = (bigR + dmin) / (levels * 63) * (1 + 2 * Ulp16);
            return 0.5f * ((rj + dmin) / levels + d) + 1e-5f * (bigR + bigM);
        }, type.ToString());
    }

    // Q6_K: sub-block k (16 values) with amax a_k; d = max a_k / (31 * 127); step <= a_k / 31 + d; error <= step / 2.
    [Fact]
    public void Q6_K_within_half_a_step()
    {
        float[] x = Sample(256 * 6, 5), y = RoundTrip(GgmlType.Q6_K, x);
        AssertWithin(x, y, i =>
        {
            int sb = i / 256 * 256;
            float bigA = Stats(x.AsSpan(sb, 256)).AbsMax;
            float a = Stats(x.AsSpan(i / 16 * 16, 16)).AbsMax;
            return 0.5f * (a / 31 + bigA / (31 * 127) * (1 + 2 * Ulp16)) + 1e-6f * bigA;
        }, "Q6_K");
    }

    [Fact]
    public void F16_and_BF16_round_trip_within_their_precision()
    {
        float[] x = Sample(1000, 6);
        float[] h = RoundTrip(GgmlType.F16, x), b = RoundTrip(GgmlType.BF16, x);
        for (int i = 0; i < x.Length; i++)
        {
            Assert.True(Math.Abs(x[i] - h[i]) <= Math.Abs(x[i]) * Ulp16 / 2 + 3e-8f, $"F16 {i}");
            Assert.True(Math.Abs(x[i] - b[i]) <= Math.Abs(x[i]) / 256, $"BF16 {i}");
        }
        Assert.Equal(x, RoundTrip(GgmlType.F32, x));
    }

    [Fact]
    public void Q8_0_vectorized_dequantize_matches_reference()
    {
        var rng = new Random(8);
        var q = new byte[34 * 9];
        rng.NextBytes(q);
        for (int b = 0; b < 9; b++) BinaryPrimitives.WriteUInt16LittleEndian(q.AsSpan(b * 34), BitConverter.HalfToUInt16Bits((Half)(rng.NextDouble() * 0.1)));
        var fast = new float[288];
        var reference = new float[288];
        Q8_0.Dequantize(q, fast);
        Q8_0.DequantizeReference(q, reference);
        Assert.Equal(reference, fast);
    }

    // ---- hand-built blocks: the bit layouts as ggml documents them ----

    private const ushort One = 0x3C00; // 1.0 in f16

    [Fact]
    public void Q4_0_layout_low_nibbles_first_half_high_nibbles_second()
    {
        var blk = new byte[18];
        BinaryPrimitives.WriteUInt16LittleEndian(blk, One);
        for (int j = 0; j < 16; j++) blk[2 + j] = (byte)(j | ((15 - j) << 4));
        var y = new float[32];
        Q4_0.Dequantize(blk, y);
        for (int j = 0; j < 16; j++)
        {
            Assert.Equal(j - 8, y[j]);
            Assert.Equal(7 - j, y[j + 16]);
        }
    }

    [Fact]
    public void Q5_1_layout_fifth_bits_in_qh()
    {
        var blk = new byte[24];
        BinaryPrimitives.WriteUInt16LittleEndian(blk, One);
        BinaryPrimitives.WriteUInt16LittleEndian(blk.AsSpan(2), 0xC000); // m = -2
        BinaryPrimitives.WriteUInt32LittleEndian(blk.AsSpan(4), 0x8000_0001); // value 0 and value 31 get bit 4
        for (int j = 0; j < 16; j++) blk[8 + j] = 0x21;
        var y = new float[32];
        Q5_1.Dequantize(blk, y);
        Assert.Equal(17 - 2, y[0]);
        Assert.Equal(1 - 2, y[1]);
        Assert.Equal(2 - 2, y[16]);
        Assert.Equal(18 - 2, y[31]);
    }

    [Fact]
    public void Q4_K_scale_packing_round_trips_every_6_bit_value()
    {
        Span<int> sc = stackalloc int[8], mc = stackalloc int[8];
        var packed = new byte[12];
        for (int v = 0; v < 64; v++)
        {
            for (int j = 0; j < 8; j++)
            {
                sc[j] = (v + 7 * j) & 63;
                mc[j] = (v * 3 + 11 * j) & 63;
            }
            Q4_K.PackScales(sc, mc, packed);
            for (int j = 0; j < 8; j++) Assert.Equal((sc[j], mc[j]), Q4_K.ScaleMin(j, packed));
        }
        // the documented places: j < 4 plain bytes; j >= 4 nibbles in bytes 8..11, top bits in bytes 0..7
        sc.Fill(0);
        mc.Fill(0);
        sc[5] = 0b110101;
        mc[6] = 0b101010;
        Q4_K.PackScales(sc, mc, packed);
        Assert.Equal(0b0101, packed[9] & 0x0F);
        Assert.Equal(0b11, packed[1] >> 6);
        Assert.Equal(0b1010, packed[10] >> 4);
        Assert.Equal(0b10, packed[6] >> 6);
    }

    [Fact]
    public void Q5_K_layout_fifth_bits_in_qh_by_sub_block_pair()
    {
        var blk = new byte[176];
        BinaryPrimitives.WriteUInt16LittleEndian(blk, One);        // d = 1
        BinaryPrimitives.WriteUInt16LittleEndian(blk.AsSpan(2), One); // dmin = 1
        for (int j = 0; j < 4; j++) blk[4 + j] = 1;                  // sub-blocks 0..3: scale 1, min 0
        blk[4 + 10] = 0x11;                                          // sub-block 6: scale 1, min 1 (packed byte 10)
        blk[16 + 3] = 0b0000_0110;                                   // qh[3]: bit 1 (value 35), bit 2 (value 67)
        blk[48 + 3] = 0x21;                                          // value 3: 1, value 35: 2
        blk[48 + 64 + 5] = 0x07;                                     // pair 2, l = 5: value 133 low nibble 7
        var y = new float[256];
        Q5_K.Dequantize(blk, y);
        Assert.Equal(1, y[3]);
        Assert.Equal(16 + 2, y[35]);
        Assert.Equal(16, y[67]);
        Assert.Equal(0, y[64 + 3 + 32]);
        Assert.Equal(-1, y[192 + 4]);  // sub-block 6: 1 * 0 - 1 * 1
        Assert.Equal(0, y[133]);       // sub-block 4 has scale 0 (bytes 8 and 0 top bits are 0)
    }

    [Fact]
    public void Q6_K_layout_qh_holds_top_bits_of_four_values()
    {
        var blk = new byte[210];
        BinaryPrimitives.WriteUInt16LittleEndian(blk.AsSpan(208), One);
        for (int k = 0; k < 16; k++) blk[192 + k] = 1;
        blk[128] = 0b11_10_01_00; // value 0: top 0, value 32: top 1, value 64: top 2, value 96: top 3
        blk[0] = 0x5A;            // value 0 low nibble 0xA, value 64 low nibble 0x5
        blk[192 + 6] = 0xFF;      // scale of values 96..111 is -1
        var y = new float[256];
        Q6_K.Dequantize(blk, y);
        Assert.Equal(0x0A - 32, y[0]);
        Assert.Equal(16 - 32, y[32]);
        Assert.Equal(0x25 - 32, y[64]);
        Assert.Equal(-(48 - 32), y[96]);
        Assert.Equal(-32, y[1]);
        Assert.Equal(-32, y[128]);
    }

    [Fact]
    public void Unsupported_types_name_the_type()
    {
        var e = Assert.Throws<QuillException>(() => GgmlQuant.Dequantize(GgmlType.Q3_K, new byte[110], new float[256]));
        Assert.Contains("Q3_K", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => GgmlQuant.Quantize(GgmlType.Q8_0, new float[33], new byte[34]));
    }

    // ---- a real file ----

    /// <summary>IEEE binary16 decoded from its definition, without System.Half or Quill's converter.</summary>
    private static float DecodeHalf(ushort h)
    {
        int sign = h >> 15, exp = (h >> 10) & 31, mant = h & 1023;
        double v = exp switch
        {
            0 => Math.ScaleB(mant, -24),
            31 => mant == 0 ? double.PositiveInfinity : double.NaN,
            _ => Math.ScaleB(1024 + mant, exp - 25),
        };
        return (float)(sign == 1 ? -v : v);
    }

    [TestDataFact("gguf-models/llama-2-tiny-random.gguf")]
    public void F16_tensors_of_a_real_gguf_dequantize_exactly()
    {
        using var g = GgufFile.Open(TestData.PathOf("gguf-models/llama-2-tiny-random.gguf"));
        int checkedTensors = 0;
        foreach (var t in g.Tensors.Where(t => t.Type == GgmlType.F16))
        {
            ReadOnlySpan<byte> raw = g.GetTensorData(t);
            var y = new float[t.ElementCount];
            g.ReadSingle(t, y);
            for (int i = 0; i < y.Length; i++)
            {
                float want = DecodeHalf(BinaryPrimitives.ReadUInt16LittleEndian(raw[(2 * i)..]));
                Assert.True(want.Equals(y[i]), $"{t.Name}[{i}]: {want} vs {y[i]}");
            }
            checkedTensors++;
        }
        Assert.Equal(9, checkedTensors);
        var norm = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(g.GetTensorData("output_norm.weight")).ToArray();
        Assert.Equal(norm, g.ReadSingle("output_norm.weight"));
        Assert.Throws<InvalidConfigException>(() => g.ReadSingle(g.GetTensor("output_norm.weight"), new float[7]));
    }

    [Fact]
    public void Quantized_tensor_survives_a_gguf_round_trip()
    {
        float[] x = Sample(256 * 4, 9);
        var q = new byte[GgmlTypeInfo.RowBytes(GgmlType.Q4_K, x.Length)];
        GgmlQuant.Quantize(GgmlType.Q4_K, x, q);
        string dir = Directory.CreateTempSubdirectory("quill-q-").FullName;
        try
        {
            string path = Path.Combine(dir, "q.gguf");
            new GgufWriter().SetUInt32("general.quantization_version", 2).AddTensor("w", GgmlType.Q4_K, [256, 4], q).Write(path);
            using var g = GgufFile.Open(path);
            float[] y = g.ReadSingle("w");
            var direct = new float[x.Length];
            GgmlQuant.Dequantize(GgmlType.Q4_K, q, direct);
            Assert.Equal(direct, y);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
