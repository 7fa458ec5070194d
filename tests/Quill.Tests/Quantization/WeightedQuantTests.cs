// The importance-weighted quantizers (WeightedQuant): on random rows with random importances they lower the
// importance-weighted squared error against Quill's plain quantizers, and they produce ggml's own bytes
// (ggml_quantize_chunk with quant_weights, through LLamaSharp.Backend.Cpu's libggml-base) for every type they serve.
using Quill.Quantization;
using Quill.Tests.Support;

namespace Quill.Tests.Quantization;

public class WeightedQuantTests
{
    public static TheoryData<GgmlType> Types => [GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K];

    private static (float[] X, float[] Imp) Random(int rows, int cols, int seed)
    {
        var rng = new System.Random(seed);
        var x = new float[rows * cols];
        for (int i = 0; i < x.Length; i++) x[i] = (float)((rng.NextDouble() * 2 - 1) * (1 + 3 * rng.NextDouble() * rng.NextDouble()));
        var imp = new float[cols];
        // a few columns matter far more than the rest, as in real activations
        for (int j = 0; j < cols; j++) imp[j] = (float)(rng.NextDouble() < 0.1 ? 20 + 80 * rng.NextDouble() : 0.05 + rng.NextDouble());
        return (x, imp);
    }

    private static double WeightedError(GgmlType type, float[] x, byte[] q, float[] imp, int rows, int cols)
    {
        var back = new float[x.Length];
        GgmlQuant.Dequantize(type, q, back);
        double e = 0;
        for (int r = 0; r < rows; r++)
        {
            for (int j = 0; j < cols; j++)
            {
                double d = back[r * cols + j] - x[r * cols + j];
                e += imp[j] * d * d;
            }
        }
        return e;
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void Weighting_lowers_the_weighted_error(GgmlType type)
    {
        const int rows = 64, cols = 512;
        var (x, imp) = Random(rows, cols, 11);
        long rb = GgmlTypeInfo.RowBytes(type, cols);
        var plain = new byte[rb * rows];
        var weighted = new byte[rb * rows];
        var uniform = new byte[rb * rows];
        var ones = Enumerable.Repeat(1f, cols).ToArray();
        for (int r = 0; r < rows; r++)
        {
            var row = x.AsSpan(r * cols, cols);
            GgmlQuant.Quantize(type, row, plain.AsSpan((int)(r * rb), (int)rb));
            WeightedQuant.QuantizeRow(type, row, imp, weighted.AsSpan((int)(r * rb), (int)rb));
            WeightedQuant.QuantizeRow(type, row, ones, uniform.AsSpan((int)(r * rb), (int)rb));
        }
        double ePlain = WeightedError(type, x, plain, imp, rows, cols);
        double eWeighted = WeightedError(type, x, weighted, imp, rows, cols);
        double eUniform = WeightedError(type, x, uniform, imp, rows, cols);
        // the importance, not only the search, is what helps: weighted beats both the plain rule and the same
        // search with every column equal
        Assert.True(eWeighted < 0.9 * ePlain, $"{type}: weighted error {eWeighted:G4} vs plain {ePlain:G4}");
        Assert.True(eWeighted < eUniform, $"{type}: weighted error {eWeighted:G4} vs uniform weights {eUniform:G4}");
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void Weighted_quantizers_give_ggmls_bytes(GgmlType type)
    {
        const int rows = 48, cols = 512;
        var (x, imp) = Random(rows, cols, 5);
        long rb = GgmlTypeInfo.RowBytes(type, cols);
        var ours = new byte[rb * rows];
        for (int r = 0; r < rows; r++) WeightedQuant.QuantizeRow(type, x.AsSpan(r * cols, cols), imp, ours.AsSpan((int)(r * rb), (int)rb));
        var theirs = GgmlQuantizer.Quantize(type, x, rows, cols, imp);
        int bb = GgmlTypeInfo.BlockBytes(type), blocks = ours.Length / bb, same = 0;
        for (int b = 0; b < blocks; b++)
        {
            if (ours.AsSpan(b * bb, bb).SequenceEqual(theirs.AsSpan(b * bb, bb))) same++;
        }
        Assert.True(same == blocks, $"{type}: {same} of {blocks} blocks identical to ggml's");
    }

    [Fact]
    public void Types_without_weights_quantize_as_GgmlQuant()
    {
        var (x, imp) = Random(1, 256, 3);
        var a = new byte[GgmlTypeInfo.RowBytes(GgmlType.Q8_0, 256)];
        var b = new byte[a.Length];
        WeightedQuant.QuantizeRow(GgmlType.Q8_0, x, imp, a);
        GgmlQuant.Quantize(GgmlType.Q8_0, x, b);
        Assert.Equal(b, a);
        Assert.Throws<ArgumentException>(() => WeightedQuant.QuantizeRow(GgmlType.Q4_0, x, imp.AsSpan(0, 128), a));
    }
}
