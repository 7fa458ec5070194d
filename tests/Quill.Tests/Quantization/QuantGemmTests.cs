// Holds quantized prefill's integer GEMM (QuantGemm) to its references for every block format it takes: each
// unpacked weight row rebuilds the format's dequantized values; each product entry equals the scalar twin
// (dequantized weight times the int8 activation, in double) and the decode path's integer dot on the same
// quantized row; the activation rows equal Q8Activation's; groups and edges (m not a multiple of 4, rows not of 8,
// several slabs) and 1 or 2 threads give the same bits; WeightMatrix.Multiply with many rows lands within the activation's rounding
// of the float product and takes the shared quantization for several matrices.
using Quill.Kernels;
using Quill.Quantization;
using Quill.Tensors;

namespace Quill.Tests.Quantization;

public unsafe class QuantGemmTests
{
    private static float[] Random(int n, int seed, float scale = 1)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return x;
    }

    public static TheoryData<GgmlType, int> Cases => new()
    {
        { GgmlType.Q8_0, 288 }, { GgmlType.Q4_0, 288 }, { GgmlType.Q4_1, 96 }, { GgmlType.Q5_0, 160 }, { GgmlType.Q5_1, 96 },
        { GgmlType.Q4_K, 512 }, { GgmlType.Q5_K, 256 }, { GgmlType.Q6_K, 768 },
    };

    private static byte[] QuantizedMatrix(GgmlType type, int rows, int k, int seed)
    {
        long rb = GgmlTypeInfo.RowBytes(type, k);
        var m = new byte[rb * rows];
        GgmlQuant.Quantize(type, Random(rows * k, seed), m);
        if (type == GgmlType.Q8_0) m[2] = 0x80; // a file may hold -128
        return m;
    }

    internal static float[] Product(GgmlType type, byte[] w, int rows, int k, float[] x, int m, int threads)
    {
        var y = new float[m * rows];
        int saved = KernelThreads.Count;
        KernelThreads.Count = threads;
        try
        {
            fixed (float* px = x)
            fixed (byte* pw = w)
            fixed (float* py = y)
            {
                var rowsQ = QuantGemm.Rows.Quantize(QuantGemm.FlavorOf(type), px, k, m, k);
                QuantGemm.Multiply(type, pw, rows, GgmlTypeInfo.RowBytes(type, k), rowsQ, py, rows);
            }
        }
        finally
        {
            KernelThreads.Count = saved;
        }
        return y;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Unpacked_rows_rebuild_the_dequantized_values(GgmlType type, int k)
    {
        byte[] w = QuantizedMatrix(type, 3, k, 1);
        int rb = (int)GgmlTypeInfo.RowBytes(type, k), nbo = (k / 32 + 7) / 8 * 8, kp = (k + 63) / 64 * 64;
        var v = new byte[kp];
        var sv = new float[kp / 4];
        var wo = new float[nbo];
        var want = new float[k];
        bool signed = type is GgmlType.Q8_0 or GgmlType.Q6_K;
        for (int r = 0; r < 3; r++)
        {
            fixed (byte* pw = w)
            fixed (byte* pv = v)
            fixed (float* ps = sv)
            fixed (float* po = wo)
                QuantGemm.Unpack(type, pw + r * rb, k, pv, ps, po);
            GgmlQuant.Dequantize(type, w.AsSpan(r * rb, rb), want);
            for (int i = 0; i < k; i++)
            {
                int q = signed ? (sbyte)v[i] : v[i];
                float got = q * sv[i / 32 * 8 + i % 32 / 4] + wo[i / 32];
                Assert.True(Math.Abs(got - want[i]) <= 1e-5f * (1 + Math.Abs(want[i])), $"{type} row {r} value {i}: {got} vs {want[i]}");
            }
            for (int b = k / 32; b < nbo; b++) Assert.Equal(0f, wo[b]);
            for (int i = k; i < kp; i++) Assert.Equal((0, 0f), (v[i], sv[i / 4]));
        }
    }

    [Theory]
    [InlineData(GgmlType.Q4_0, 288)]
    [InlineData(GgmlType.Q5_0, 160)]
    [InlineData(GgmlType.Q4_K, 512)]
    [InlineData(GgmlType.Q6_K, 768)]
    public void Largest_values_and_activations_do_not_overflow_the_int16_sums(GgmlType type, int k)
    {
        // every weight byte 0xFF: the largest unsigned value of each format (15, 31, 63 -> |63 - 32| = 31) and, for
        // the K-quants, the largest 6-bit scales and minimums; scales d = 1 (f16 0x3C00, also Q6_K's int8 scales -1)
        const int M = 8, R = 9;
        int rb = (int)GgmlTypeInfo.RowBytes(type, k);
        var w = new byte[rb * R];
        w.AsSpan().Fill(0xFF);
        int bs = GgmlTypeInfo.BlockSize(type), bb = GgmlTypeInfo.BlockBytes(type);
        for (int b = 0; b < w.Length / bb; b++)
        {
            int dAt = type == GgmlType.Q6_K ? b * bb + 208 : b * bb;
            BitConverter.TryWriteBytes(w.AsSpan(dAt, 2), (ushort)0x3C00);
            if (type == GgmlType.Q4_K) BitConverter.TryWriteBytes(w.AsSpan(b * bb + 2, 2), (ushort)0x3C00);
        }
        // activations at +-amax: each 4-value group quantizes to 127 or -127
        var x = new float[M * k];
        for (int i = 0; i < x.Length; i++) x[i] = i / k % 2 == 0 ? 1f : (i % 3 == 0 ? -1f : 1f);
        float[] y = Product(type, w, R, k, x, M, threads: 1);
        QuantGemm.Rows rowsQ;
        fixed (float* px = x) rowsQ = QuantGemm.Rows.Quantize(QuantGemm.FlavorOf(type), px, k, M, k, vector: false);
        for (int i = 0; i < M; i++)
            for (int r = 0; r < R; r++)
            {
                double twin = QuantGemm.RowReference(type, w.AsSpan(r * rb, rb), rowsQ, i);
                Assert.True(Math.Abs(y[i * R + r] - twin) <= 1e-5 * Math.Abs(twin) + 1e-3, $"{type} [{i}, {r}]: {y[i * R + r]} vs twin {twin} ({bs}-value blocks)");
            }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Products_match_the_scalar_twin_and_the_decode_dot(GgmlType type, int k)
    {
        const int M = 11, R = 37; // groups of four activation rows and single ones, eight weight rows and a partial group, three slabs
        byte[] w = QuantizedMatrix(type, R, k, 2);
        float[] x = Random(M * k, 3, 3);
        float[] y = Product(type, w, R, k, x, M, threads: 1);
        int rb = (int)GgmlTypeInfo.RowBytes(type, k);
        QuantGemm.Rows rowsQ;
        fixed (float* px = x) rowsQ = QuantGemm.Rows.Quantize(QuantGemm.FlavorOf(type), px, k, M, k, vector: false);
        var wd = new float[k];
        for (int i = 0; i < M; i++)
        {
            var xq = Q8Activation.Quantize(x.AsSpan(i * k, k));
            // the GEMM's activation rows are Q8Activation's numbers
            bool k256 = GgmlTypeInfo.BlockSize(type) == 256;
            Assert.Equal((k256 ? xq.Q256 : xq.Q32).AsSpan(0, k).ToArray(), rowsQ.Q.AsSpan(i * rowsQ.Kp, k).ToArray());
            for (int r = 0; r < R; r++)
            {
                var row = w.AsSpan(r * rb, rb);
                GgmlQuant.Dequantize(type, row, wd);
                double scale = 0;
                for (int j = 0; j < k; j++) scale += Math.Abs(wd[j] * x[i * k + j]);
                double tol = 2e-5 * scale + 1e-6;
                double twin = QuantGemm.RowReference(type, row, rowsQ, i);
                float got = y[i * R + r];
                Assert.True(Math.Abs(got - twin) <= tol, $"{type} [{i}, {r}]: {got} vs twin {twin}");
                float decode = QuantDot.Dot(type, row, xq);
                Assert.True(Math.Abs(got - decode) <= tol, $"{type} [{i}, {r}]: {got} vs decode dot {decode}");
            }
        }
    }

    [Theory]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_K)]
    public void Tiles_edges_and_threads_give_the_same_bits(GgmlType type)
    {
        const int K = 512, R = 70;
        byte[] w = QuantizedMatrix(type, R, K, 4);
        float[] x = Random(13 * K, 5);
        float[] all = Product(type, w, R, K, x, 13, threads: 1);
        Assert.Equal(all, Product(type, w, R, K, x, 13, threads: 2));
        // row 12 alone (an edge) and rows 0..3 (a tile) equal their places in the 13-row product
        Assert.Equal(all.AsSpan(12 * R, R).ToArray(), Product(type, w, R, K, x[(12 * K)..], 1, threads: 1));
        Assert.Equal(all.AsSpan(0, 4 * R).ToArray(), Product(type, w, R, K, x[..(4 * K)], 4, threads: 2));
    }

    [Theory]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_0)]
    [InlineData(GgmlType.Q5_1)]
    [InlineData(GgmlType.Q4_K)]
    [InlineData(GgmlType.Q6_K)]
    public void Weight_matrix_prefill_takes_the_integer_gemm(GgmlType type)
    {
        if (!QuantGemm.Enabled) return; // CPUs without AVX2 keep dequantize + SGEMM
        const int K = 512, R = 40, M = 24;
        float[] wf = Random(R * K, 6), x = Random(M * K, 7, 2);
        var w = WeightMatrix.Quantize("w", wf, R, K, type);
        var w2 = WeightMatrix.Quantize("w2", Random(R * K, 8), R, K, type);
        var y = new float[M * R];
        var y2 = new float[M * R];
        fixed (float* px = x)
        fixed (float* py = y)
        fixed (float* py2 = y2)
        {
            w.Multiply(px, K, M, py, R);
            // q | k | v style: two matrices reading one x share one quantization, same numbers
            var many = new float[M * R];
            var many2 = new float[M * R];
            fixed (float* pm = many)
            fixed (float* pm2 = many2)
                WeightMatrix.MultiplyMany([w, w2], px, K, M, [(nint)pm, (nint)pm2], [R, R]);
            w2.Multiply(px, K, M, py2, R);
            Assert.Equal(y, many);
            Assert.Equal(y2, many2);
        }
        float[] wd = w.ToFloats();
        for (int i = 0; i < M; i++)
        {
            for (int r = 0; r < R; r++)
            {
                var row = wd.AsSpan(r * K, K);
                var xi = x.AsSpan(i * K, K);
                double exact = 0;
                for (int j = 0; j < K; j++) exact += (double)row[j] * xi[j];
                // integer path, not the float product: the error is the activation's rounding, and it is there
                double bound = QuantDotTests.ActivationErrorBound(type, row, xi) * 1.01 + 1e-5;
                Assert.True(Math.Abs(y[i * R + r] - exact) <= bound, $"{type} [{i}, {r}]: {y[i * R + r]} vs {exact}");
                byte[] rowBytes = w.Bytes.Slice((int)(r * w.RowBytes), (int)w.RowBytes).ToArray();
                Assert.Equal(QuantDot.Dot(type, rowBytes, Q8Activation.Quantize(xi)), y[i * R + r], 1e-4f * (1 + Math.Abs(y[i * R + r])));
            }
        }
    }
}
