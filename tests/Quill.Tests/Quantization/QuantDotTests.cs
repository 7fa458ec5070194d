// Holds the dot-product kernels to their plain twins: the generic per-block Dot against dequantize-then-sum for
// every supported type, each available Q8_0 x Q8_0 instruction path (AVX-VNNI, AVX2, scalar) against the scalar
// int8 reference (including weights of -128), and MatVec against row-by-row dots.
using System.Runtime.Intrinsics.X86;
using Quill.Formats.Gguf;
using Quill.Quantization;

namespace Quill.Tests.Quantization;

public class QuantDotTests
{
    private static float[] Random(int n, int seed, float scale = 1)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return x;
    }

    private static float AbsDot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += Math.Abs((double)a[i] * b[i]);
        return (float)s;
    }

    [Theory]
    [InlineData(GgmlType.F32, 301)]
    [InlineData(GgmlType.F16, 301)]
    [InlineData(GgmlType.BF16, 517)]
    [InlineData(GgmlType.Q8_0, 32 * 7)]
    [InlineData(GgmlType.Q4_0, 32 * 7)]
    [InlineData(GgmlType.Q4_1, 32 * 7)]
    [InlineData(GgmlType.Q5_0, 32 * 7)]
    [InlineData(GgmlType.Q5_1, 32 * 7)]
    [InlineData(GgmlType.Q4_K, 256 * 3)]
    [InlineData(GgmlType.Q6_K, 256 * 3)]
    public void Dot_matches_reference(GgmlType type, int n)
    {
        float[] w = Random(n, 1), x = Random(n, 2);
        var row = new byte[GgmlTypeInfo.RowBytes(type, n)];
        GgmlQuant.Quantize(type, w, row);
        var wd = new float[n];
        GgmlQuant.Dequantize(type, row, wd);
        float fast = QuantDot.Dot(type, row, x);
        float reference = QuantDot.DotReference(type, row, x);
        Assert.True(Math.Abs(fast - reference) <= 1e-5f * AbsDot(wd, x) + 1e-6f, $"{type}: {fast} vs {reference}");
    }

    private static (byte[] Row, byte[] Xq) Q8Pair(int blocks, int seed)
    {
        float[] w = Random(32 * blocks, seed), x = Random(32 * blocks, seed + 100, 3);
        var row = new byte[34 * blocks];
        var xq = new byte[34 * blocks];
        Q8_0.Quantize(w, row);
        QuantDot.QuantizeActivation(x, xq);
        // a file may hold -128 (our quantizer never writes it): put some in
        for (int b = 0; b < blocks; b += 2) row[b * 34 + 2 + (b % 32)] = 0x80;
        return (row, xq);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(7)]
    [InlineData(128)]
    [InlineData(131)]
    public unsafe void Q8_0_paths_match_reference(int blocks)
    {
        var (row, xq) = Q8Pair(blocks, blocks);
        float reference = QuantDot.DotQ8_0Reference(row, xq);
        var wd = new float[32 * blocks];
        var xd = new float[32 * blocks];
        Q8_0.DequantizeReference(row, wd);
        Q8_0.DequantizeReference(xq, xd);
        float tol = 1e-5f * AbsDot(wd, xd) + 1e-6f;
        Assert.True(Math.Abs(QuantDot.DotQ8_0(row, xq) - reference) <= tol);
        var scales = new float[blocks];
        for (int b = 0; b < blocks; b++) scales[b] = (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(row, b * 34)) * (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(xq, b * 34));
        fixed (byte* w = row)
        fixed (byte* x = xq)
        fixed (float* s = scales)
        {
            Assert.True(Math.Abs(QuantDot.DotQ8_0Scalar(w, x, s, blocks) - reference) <= tol, "scalar");
            if (AvxVnni.IsSupported) Assert.True(Math.Abs(QuantDot.DotQ8_0Vnni(w, x, s, blocks) - reference) <= tol, "VNNI");
            if (Avx2.IsSupported && Fma.IsSupported) Assert.True(Math.Abs(QuantDot.DotQ8_0Avx2(w, x, s, blocks) - reference) <= tol, "AVX2");
        }
        // and the reference is what the floats say
        double exact = 0;
        for (int i = 0; i < wd.Length; i++) exact += (double)wd[i] * xd[i];
        Assert.True(Math.Abs(reference - exact) <= tol);
    }

    [Theory]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_K)]
    [InlineData(GgmlType.F16)]
    public void MatVec_matches_row_dots(GgmlType type)
    {
        const int Rows = 37, Cols = 512;
        float[] w = Random(Rows * Cols, 5), x = Random(Cols, 6);
        long rb = GgmlTypeInfo.RowBytes(type, Cols);
        var m = new byte[rb * Rows];
        GgmlQuant.Quantize(type, w, m);
        var y = new float[Rows];
        QuantDot.MatVec(type, m, Rows, Cols, x, y);
        var xq = new byte[GgmlTypeInfo.RowBytes(GgmlType.Q8_0, Cols)];
        Q8_0.Quantize(x, xq);
        for (int r = 0; r < Rows; r++)
        {
            var row = m.AsSpan((int)(r * rb), (int)rb);
            float want = type == GgmlType.Q8_0 ? QuantDot.DotQ8_0Reference(row, xq) : QuantDot.DotReference(type, row, x);
            Assert.True(Math.Abs(y[r] - want) <= 1e-4f * (1 + Math.Abs(want)), $"row {r}: {y[r]} vs {want}");
        }
    }

    [Fact]
    public void Q8_0_activation_dot_is_close_to_the_float_dot()
    {
        const int N = 4096;
        float[] w = Random(N, 11), x = Random(N, 12);
        var row = new byte[N / 32 * 34];
        var xq = new byte[N / 32 * 34];
        Q8_0.Quantize(w, row);
        QuantDot.QuantizeActivation(x, xq);
        double exact = 0;
        for (int i = 0; i < N; i++) exact += (double)w[i] * x[i];
        // each product carries at most about 1/127 relative error per side
        Assert.True(Math.Abs(QuantDot.DotQ8_0(row, xq) - exact) <= 2.0 / 127 * AbsDot(w, x));
    }
}
