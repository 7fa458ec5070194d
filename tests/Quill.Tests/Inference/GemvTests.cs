// The decode kernels against their plain twins: fp32 Gemv (every instruction width, one vector and several, odd
// shapes and tails, threaded), half-precision rows, several matrices in one region against one by one, and quantized
// weights through WeightMatrix (QuantDot's entry) against the integer scalar twin and the block format's own
// dequantized dot, within the error the int8 activation quantization implies.
using Quill.Models;
using Quill.Tensors;
using Quill.Kernels;
using Quill.Formats.Gguf;
using Quill.Inference;
using Quill.Quantization;

namespace Quill.Tests.Inference;

public sealed unsafe class GemvTests
{
    private static float[] Random(int n, int seed)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1);
        return a;
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(7, 13, 1)]
    [InlineData(64, 288, 1)]
    [InlineData(33, 100, 3)]
    [InlineData(300, 768, 2)]
    [InlineData(5, 17, 8)]
    public void Fp32_widths_match_reference(int n, int k, int m)
    {
        float[] w = Random(n * k, 1), x = Random(m * k, 2);
        var expected = new float[m * n];
        GemvReference.MultiplyBatch(w, n, k, x, m, expected);
        foreach (var width in new[] { GemvWidth.Vector512, GemvWidth.Vector256, GemvWidth.Vector128, GemvWidth.Scalar })
        {
            if (width == GemvWidth.Vector512 && !System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated) continue;
            var y = new float[m * n];
            fixed (float* pw = w, px = x, py = y) Gemv.Run(width, pw, n, k, px, m, py, n, 0);
            for (int i = 0; i < y.Length; i++) Assert.True(Math.Abs(expected[i] - y[i]) <= 1e-4f * Math.Sqrt(k), $"{width} [{i}]: {expected[i]} vs {y[i]}");
        }
        var pub = new float[m * n];
        Gemv.MultiplyBatch(w, n, k, x, m, pub);
        for (int i = 0; i < pub.Length; i++) Assert.True(Math.Abs(expected[i] - pub[i]) <= 1e-4f * Math.Sqrt(k));
    }

    [Theory]
    [InlineData(13, 768)]  // one vector, rows longer than ShortRow: one row at a time
    [InlineData(9, 1000)]  // and a tail past the last 16 (and 8)
    [InlineData(12, 288)]  // short rows: four at a time with prefetch
    public void One_vector_gives_each_row_the_same_float_as_several_vectors(int n, int k)
    {
        float[] w = Random(n * k, 7), x = Random(k, 8);
        var twice = new float[2 * k];
        x.CopyTo(twice, 0);
        x.CopyTo(twice, k);
        foreach (var width in new[] { GemvWidth.Vector512, GemvWidth.Vector256, GemvWidth.Vector128 })
        {
            if (width == GemvWidth.Vector512 && !System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated) continue;
            float[] one = new float[n], two = new float[2 * n];
            fixed (float* pw = w, px = x, pt = twice, p1 = one, p2 = two)
            {
                Gemv.Rows(width, pw, k, px, 1, p1, n, 0, n);     // the one-vector kernel
                Gemv.Rows(width, pw, k, pt, 2, p2, n, 0, n);     // the four-row kernel, x read for two vectors
            }
            Assert.True(one.AsSpan().SequenceEqual(two.AsSpan(0, n)), $"{width}: {string.Join(", ", one)} vs {string.Join(", ", two.Take(n))}");
            Assert.True(one.AsSpan().SequenceEqual(two.AsSpan(n)), $"{width}: second vector");
        }
    }

    [Theory]
    [InlineData(GgmlType.F32)]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_0)]
    [InlineData(GgmlType.Q5_0)]
    [InlineData(GgmlType.Q4_K)]
    public void Many_matrices_in_one_region_match_one_by_one(GgmlType type)
    {
        int k = 256; // 153 rows x 256: enough work for the shared region to go parallel, each matrix alone does not
        float[] x = Random(k, 3);
        var mats = new[] { (Rows: 96, W: Random(96 * k, 4)), (Rows: 50, W: Random(50 * k, 5)), (Rows: 7, W: Random(7 * k, 6)) };
        var ws = mats.Select((t, i) => WeightMatrix.Quantize($"m{i}", t.W, t.Rows, k, type)).ToArray();
        var outs = mats.Select(t => new float[t.Rows]).ToArray();
        fixed (float* px = x, o0 = outs[0], o1 = outs[1], o2 = outs[2])
            WeightMatrix.MultiplyMany(ws, px, k, 1, [(nint)o0, (nint)o1, (nint)o2], [96, 50, 7]);
        for (int i = 0; i < mats.Length; i++)
        {
            var e = new float[mats[i].Rows];
            fixed (float* px = x, pe = e) ws[i].Multiply(px, k, 1, pe, mats[i].Rows);
            for (int j = 0; j < e.Length; j++) Assert.True(Math.Abs(e[j] - outs[i][j]) < 1e-4f, $"matrix {i} row {j}: {e[j]} vs {outs[i][j]}");
        }
    }

    [Theory]
    [InlineData(GgmlType.F16, 37, 100)]
    [InlineData(GgmlType.BF16, 9, 288)]
    public void Half_precision_weights_match_their_float_values(GgmlType type, int rows, int cols)
    {
        float[] w = Random(rows * cols, 9), x = Random(cols, 10);
        var m = WeightMatrix.Quantize("w", w, rows, cols, type);
        float[] exact = m.ToFloats();
        var expected = new float[rows];
        GemvReference.MultiplyBatch(exact, rows, cols, x, 1, expected);
        var y = new float[rows];
        fixed (float* px = x, py = y) m.Multiply(px, cols, 1, py, rows);
        for (int r = 0; r < rows; r++) Assert.True(Math.Abs(expected[r] - y[r]) <= 1e-4f * Math.Sqrt(cols), $"row {r}: {expected[r]} vs {y[r]}");
    }

    [Theory]
    [InlineData(GgmlType.Q8_0, 3)]
    [InlineData(GgmlType.Q4_0, 5)]
    [InlineData(GgmlType.Q4_1, 2)]
    [InlineData(GgmlType.Q5_0, 8)]
    [InlineData(GgmlType.Q5_1, 3)]
    [InlineData(GgmlType.Q4_K, 4)]
    [InlineData(GgmlType.Q5_K, 3)]
    [InlineData(GgmlType.Q6_K, 7)]
    [InlineData(GgmlType.F16, 3)]
    [InlineData(GgmlType.BF16, 5)]
    public void Batched_decode_equals_one_vector_at_a_time_bit_for_bit(GgmlType type, int m)
    {
        // m vectors read each weight row once (BatchRows rows through every vector); each output must be the one-vector
        // call's float, for one matrix and for several sharing the input (q, k, v)
        int cols = 512, rows = 37;
        var mats = new[] { WeightMatrix.Quantize("a", Random(rows * cols, 21), rows, cols, type), WeightMatrix.Quantize("b", Random(19 * cols, 22), 19, cols, type) };
        float[] x = Random(m * (cols + 3), 23);
        int ldx = cols + 3;
        foreach (var w in mats)
        {
            var batched = new float[m * w.Rows];
            var single = new float[m * w.Rows];
            fixed (float* px = x, pb = batched, ps = single)
            {
                w.Multiply(px, ldx, m, pb, w.Rows);
                for (int v = 0; v < m; v++) w.Multiply(px + v * ldx, ldx, 1, ps + v * w.Rows, w.Rows);
            }
            Assert.True(batched.AsSpan().SequenceEqual(single), $"{type} {w.Name}");
        }
        var many = new[] { new float[m * rows], new float[m * 19] };
        fixed (float* px = x, p0 = many[0], p1 = many[1])
        {
            WeightMatrix.MultiplyMany(mats, px, ldx, m, [(nint)p0, (nint)p1], [rows, 19]);
            var one = new float[rows];
            for (int v = 0; v < m; v++)
            {
                fixed (float* po = one) mats[0].Multiply(px + v * ldx, ldx, 1, po, rows);
                Assert.True(one.AsSpan().SequenceEqual(many[0].AsSpan(v * rows, rows)), $"{type} many, vector {v}");
            }
        }
    }

    [Fact]
    public void F16_matrix_with_an_infinity_keeps_it_through_decode()
    {
        // WeightMatrix scans an F16 matrix once; with an infinity in it the cheap widening (which would read the
        // infinity as 2^16) must not run, so the row's product stays infinite; the other rows are unaffected
        int rows = 8, cols = 64;
        float[] w = Random(rows * cols, 11), x = Random(cols, 12);
        x[5] = 0.5f;
        w[3 * cols + 5] = float.PositiveInfinity;
        var m = WeightMatrix.Quantize("w", w, rows, cols, GgmlType.F16);
        var y = new float[rows];
        fixed (float* px = x, py = y) m.Multiply(px, cols, 1, py, rows);
        Assert.True(float.IsPositiveInfinity(y[3]), $"row 3: {y[3]}");
        var expected = new float[rows];
        GemvReference.MultiplyBatch(m.ToFloats(), rows, cols, x, 1, expected);
        for (int r = 0; r < rows; r++)
            if (r != 3) Assert.True(Math.Abs(expected[r] - y[r]) <= 1e-5f * (1 + Math.Abs(expected[r])), $"row {r}: {expected[r]} vs {y[r]}");
    }

    [Theory]
    [InlineData(GgmlType.Q8_0, 4, 32)]
    [InlineData(GgmlType.Q8_0, 37, 288)]
    [InlineData(GgmlType.Q4_0, 4, 64)]
    [InlineData(GgmlType.Q4_0, 61, 768)]
    [InlineData(GgmlType.Q4_K, 9, 512)]
    [InlineData(GgmlType.Q5_1, 11, 96)]
    public void Quantized_weights_match_their_scalar_twin_and_dequantized_dot(GgmlType type, int rows, int cols)
    {
        float[] w = Random(rows * cols, 7), x = Random(cols, 8);
        var m = WeightMatrix.Quantize("w", w, rows, cols, type);
        var y = new float[rows];
        fixed (float* px = x, py = y) m.Multiply(px, cols, 1, py, rows);
        var xq = Q8Activation.Quantize(x);
        long rb = GgmlTypeInfo.RowBytes(type, cols);
        float[] wd = m.ToFloats();
        double xnorm = Math.Sqrt(x.Sum(v => (double)v * v));
        for (int r = 0; r < rows; r++)
        {
            var row = m.Bytes.Slice((int)(r * rb), (int)rb);
            float twin = QuantDot.DotReference(type, row, xq);
            float exact = QuantDot.DotReference(type, row, x);
            // int8 activation: per-value error <= d_x / 2 = max|x_block| / 254, so |error| <= |w_row| |x| / 127 or so
            double wnorm = Math.Sqrt(wd.AsSpan(r * cols, cols).ToArray().Sum(v => (double)v * v));
            double bound = wnorm * xnorm / 100 + 1e-5;
            Assert.True(Math.Abs(exact - twin) <= bound, $"scalar twin row {r}: {twin} vs {exact}");
            Assert.True(Math.Abs(y[r] - twin) <= 1e-4 * (1 + Math.Abs(twin)), $"engine row {r}: {y[r]} vs scalar twin {twin}");
        }
    }
}
