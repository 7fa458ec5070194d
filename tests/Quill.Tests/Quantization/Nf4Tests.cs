// bitsandbytes' NF4 as Quill holds it (Quantization.Nf4): the round trip of fixtures/nf4/nf4.json, which PyTorch
// computed from the published code table and bitsandbytes' reference rule (make_nf4_fixture.py: absmax per block of
// 64, clamp(x * (1 / absmax)), argmin over the codes, first value in the high nibble), must come out bit for bit:
// every absmax, every packed byte, every dequantized value; the vectorized dequantization equals its plain twin; the
// error stays within half the widest gap between codes times absmax; a WeightMatrix in NF4 multiplies as its floats;
// NF4 never goes into a GGUF file or --dtype, while lora.quant_type takes it.
using System.Buffers.Binary;
using System.Text.Json;
using Quill.Formats.Gguf;
using Quill.Inference;
using Quill.Quantization;
using Quill.Tensors;
using Quill.Training;

namespace Quill.Tests.Quantization;

public class Nf4Tests
{
    private sealed record Fixture(int Rows, int Cols, float[] X, float[] Absmax, byte[] Packed, float[] Dequantized);

    private static Fixture Load()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "nf4", "nf4.json")));
        var r = doc.RootElement;
        float[] Floats(string name) => [.. r.GetProperty(name).EnumerateArray().Select(e => e.GetSingle())];
        Assert.Equal(64, r.GetProperty("block").GetInt32());
        return new Fixture(r.GetProperty("rows").GetInt32(), r.GetProperty("cols").GetInt32(), Floats("x"), Floats("absmax"),
            Convert.FromHexString(r.GetProperty("packed").GetString()!), Floats("dequantized"));
    }

    [Fact]
    public void Quantize_and_dequantize_equal_the_pytorch_reference_bit_for_bit()
    {
        var f = Load();
        var q = new byte[GgmlTypeInfo.RowBytes(GgmlType.NF4, f.X.Length)];
        GgmlQuant.Quantize(GgmlType.NF4, f.X, q);
        Assert.Equal(f.Absmax.Length * 36, q.Length);
        for (int b = 0; b < f.Absmax.Length; b++)
        {
            Assert.Equal(f.Absmax[b], BinaryPrimitives.ReadSingleLittleEndian(q.AsSpan(b * 36, 4)));
            Assert.Equal(f.Packed.AsSpan(b * 32, 32).ToArray(), q.AsSpan(b * 36 + 4, 32).ToArray());
        }
        var y = new float[f.X.Length];
        GgmlQuant.Dequantize(GgmlType.NF4, q, y);
        Assert.Equal(f.Dequantized, y);
        var plain = new float[f.X.Length];
        Nf4.DequantizeReference(q, plain);
        Assert.Equal(f.Dequantized, plain);
    }

    [Fact]
    public void The_error_stays_within_half_the_widest_code_gap_and_the_codes_are_bitsandbytes()
    {
        Assert.Equal(16, Nf4.Codes.Length);
        Assert.Equal(-1f, Nf4.Codes[0]);
        Assert.Equal(0f, Nf4.Codes[7]);
        Assert.Equal(0.07958029955625534f, Nf4.Codes[8]);
        Assert.Equal(1f, Nf4.Codes[15]);
        var rng = new Random(7);
        var x = new float[64 * 50];
        for (int i = 0; i < x.Length; i++) x[i] = (float)((rng.NextDouble() - 0.5) * (1 + i / 64));
        x.AsSpan(64, 64).Clear(); // an all-zero block comes back as zeros
        var q = new byte[GgmlTypeInfo.RowBytes(GgmlType.NF4, x.Length)];
        GgmlQuant.Quantize(GgmlType.NF4, x, q);
        var y = new float[x.Length];
        GgmlQuant.Dequantize(GgmlType.NF4, q, y);
        float gap = 0;
        for (int c = 0; c < 15; c++) gap = MathF.Max(gap, Nf4.Codes[c + 1] - Nf4.Codes[c]);
        for (int b = 0; b < 50; b++)
        {
            float amax = 0;
            for (int j = 0; j < 64; j++) amax = MathF.Max(amax, MathF.Abs(x[b * 64 + j]));
            for (int j = 0; j < 64; j++)
            {
                int i = b * 64 + j;
                Assert.True(MathF.Abs(x[i] - y[i]) <= gap / 2 * amax * 1.0001f, $"value {i}: {x[i]} -> {y[i]} (absmax {amax})");
            }
        }
        Assert.All(y.AsSpan(64, 64).ToArray(), v => Assert.Equal(0f, v));
    }

    [Fact]
    public unsafe void An_nf4_matrix_multiplies_as_its_dequantized_floats()
    {
        var f = Load();
        var w = WeightMatrix.Quantize("w", f.X, f.Rows, f.Cols, GgmlType.NF4);
        Assert.Equal(f.Dequantized, w.ToFloats());
        var dense = WeightMatrix.FromFloats("d", f.Dequantized, f.Rows, f.Cols);
        int m = 12; // above WeightMatrix.SmallM: dequantized panels into GEMM; and one row through the matrix-vector path
        var x = new float[m * f.Cols];
        var rng = new Random(3);
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() - 0.5);
        foreach (int rows in new[] { m, 1 })
        {
            var want = new float[rows * f.Rows];
            var got = new float[rows * f.Rows];
            fixed (float* px = x, pw = want, pg = got)
            {
                dense.Multiply(px, f.Cols, rows, pw, f.Rows);
                w.Multiply(px, f.Cols, rows, pg, f.Rows);
            }
            for (int i = 0; i < want.Length; i++) Assert.True(MathF.Abs(want[i] - got[i]) <= 1e-5f * (1 + MathF.Abs(want[i])), $"{rows} rows, output {i}: {got[i]} vs {want[i]}");
        }
    }

    [Fact]
    public void Nf4_stays_in_memory_a_gguf_file_or_dtype_refuses_it_and_quant_type_takes_it()
    {
        Assert.False(GgmlTypeInfo.IsFileType(GgmlType.NF4));
        Assert.True(GgmlTypeInfo.IsFileType(GgmlType.Q4_0));
        var e = Assert.Throws<InvalidConfigException>(() => new GgufWriter().AddTensor("w", GgmlType.NF4, [64L, 2L], new byte[72]));
        Assert.Contains("NF4 is not a type GGUF files hold", e.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidConfigException>(() => ModelLoader.ParseType("nf4"));
        Assert.Equal(GgmlType.NF4, new LoraRunConfig { Method = "qlora", QuantType = "nf4" }.ParsedQuantType);
        Assert.DoesNotContain(GgmlType.NF4, GgmlQuant.SupportedTypes);
        Assert.True(GgmlQuant.IsSupported(GgmlType.NF4));
    }
}
