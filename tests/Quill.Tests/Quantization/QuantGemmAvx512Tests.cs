// Holds the AVX-512 BW kernels of quantized prefill (QuantGemmAvx512.cs). The super-block kernel (Q4_K, Q5_K, Q6_K, 16 weight rows
// by 4 activation rows, scales as integers) to the decode dot's scalar twins (IntegerDot.Q4_KReference,
// Q5_KReference, Q6_KReference) bit for bit: every product entry, for activation counts that leave single rows after
// the groups of four, weight rows that leave a partial slab of 16, one to three super-blocks, 1 and 2 threads; the
// largest values, scales and activations; and the AVX2 kernel it replaces on those CPUs within float rounding. The
// block kernels (Q4_0, Q5_0, Q4_1, Q5_1; Q8_0 in int16) equal the AVX2 kernel bit for bit (same float steps, 16 lanes).
// Where the CPU has no AVX-512 BW the tests return at once (the AVX2 kernel keeps QuantGemmTests).
using Quill.Kernels;
using Quill.Quantization;
using Quill.Tensors;

namespace Quill.Tests.Quantization;

public unsafe class QuantGemmAvx512Tests
{
    private static float[] Random(int n, int seed, float scale = 1)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return x;
    }

    // QuantGemmTests' product with the AVX-512 kernels switched on or off for the call.
    private static float[] Product(GgmlType type, byte[] w, int rows, int k, float[] x, int m, int threads, bool avx512)
    {
        bool savedKernel = QuantGemm.Avx512Kernels;
        QuantGemm.Avx512Kernels = avx512;
        try
        {
            return QuantGemmTests.Product(type, w, rows, k, x, m, threads);
        }
        finally
        {
            QuantGemm.Avx512Kernels = savedKernel;
        }
    }

    private static float Twin(GgmlType type, byte[] w, int r, int k, Q8Activation xq)
    {
        int rb = (int)GgmlTypeInfo.RowBytes(type, k);
        fixed (byte* pw = w)
        {
            byte* row = pw + (long)r * rb;
            return type switch
            {
                GgmlType.Q4_K => IntegerDot.Q4_KReference(row, xq, 0, k / 256),
                GgmlType.Q5_K => IntegerDot.Q5_KReference(row, xq, 0, k / 256),
                _ => IntegerDot.Q6_KReference(row, xq, 0, k / 256),
            };
        }
    }

    private static bool Runs()
    {
        bool saved = QuantGemm.Avx512Kernels;
        QuantGemm.Avx512Kernels = true;
        bool runs = QuantGemm.Avx512Kernels && QuantGemm.Enabled;
        QuantGemm.Avx512Kernels = saved;
        return runs;
    }

    [Theory]
    [InlineData(GgmlType.Q4_K, 256, 7, 16)]
    [InlineData(GgmlType.Q4_K, 768, 11, 37)]
    [InlineData(GgmlType.Q5_K, 512, 6, 21)]
    [InlineData(GgmlType.Q6_K, 256, 5, 16)]
    [InlineData(GgmlType.Q6_K, 768, 9, 35)]
    public void Products_equal_the_decode_dots_scalar_twin_bit_for_bit(GgmlType type, int k, int m, int rows)
    {
        if (!Runs()) return;
        var w = new byte[GgmlTypeInfo.RowBytes(type, k) * rows];
        GgmlQuant.Quantize(type, Random(rows * k, 11), w);
        float[] x = Random(m * k, 12, 3);
        float[] y = Product(type, w, rows, k, x, m, threads: 1, avx512: true);
        Assert.Equal(y, Product(type, w, rows, k, x, m, threads: 2, avx512: true));
        float[] old = Product(type, w, rows, k, x, m, threads: 1, avx512: false);
        int same = 0;
        for (int i = 0; i < m; i++)
        {
            var xq = Q8Activation.Quantize(x.AsSpan(i * k, k));
            for (int r = 0; r < rows; r++)
            {
                float twin = Twin(type, w, r, k, xq);
                Assert.True(BitConverter.SingleToInt32Bits(twin) == BitConverter.SingleToInt32Bits(y[i * rows + r]), $"{type} [{i}, {r}]: {y[i * rows + r]} vs twin {twin}");
                // the AVX2 kernel rounds per 32-value block: the same products up to float rounding
                Assert.True(Math.Abs(old[i * rows + r] - twin) <= 1e-4f * (1 + Math.Abs(twin)), $"{type} [{i}, {r}]: AVX2 kernel {old[i * rows + r]} vs {twin}");
                same += old[i * rows + r] == twin ? 1 : 0;
            }
        }
        Assert.True(same < m * rows, "the new kernel's order was meant to differ from the per-block float sums somewhere");
    }

    [Theory]
    [InlineData(GgmlType.Q4_K)]
    [InlineData(GgmlType.Q5_K)]
    [InlineData(GgmlType.Q6_K)]
    public void Largest_values_scales_and_activations_stay_exact(GgmlType type)
    {
        if (!Runs()) return;
        // every byte 0xFF: values 15 / 31 / 63, 6-bit scales and minimums 63 (Q6_K's int8 scales -1); d = dmin = 1
        const int K = 768, M = 5, R = 17;
        int rb = (int)GgmlTypeInfo.RowBytes(type, K), bb = GgmlTypeInfo.BlockBytes(type);
        var w = new byte[rb * R];
        w.AsSpan().Fill(0xFF);
        for (int b = 0; b < w.Length / bb; b++)
        {
            BitConverter.TryWriteBytes(w.AsSpan(type == GgmlType.Q6_K ? b * bb + 208 : b * bb, 2), (ushort)0x3C00);
            if (type != GgmlType.Q6_K) BitConverter.TryWriteBytes(w.AsSpan(b * bb + 2, 2), (ushort)0x3C00);
        }
        // Q6_K with the largest positive scale too (127) in the second half of the rows
        if (type == GgmlType.Q6_K)
            for (int r = R / 2; r < R; r++)
                for (int s = 0; s < K / 256; s++) w.AsSpan(r * rb + s * bb + 192, 16).Fill(127);
        var x = new float[M * K];
        for (int i = 0; i < x.Length; i++) x[i] = i / K % 2 == 0 ? 1f : (i % 3 == 0 ? -1f : 1f);
        float[] y = Product(type, w, R, K, x, M, threads: 1, avx512: true);
        for (int i = 0; i < M; i++)
        {
            var xq = Q8Activation.Quantize(x.AsSpan(i * K, K));
            for (int r = 0; r < R; r++) Assert.Equal(Twin(type, w, r, K, xq), y[i * R + r]);
        }
    }
    [Theory]
    [InlineData(GgmlType.Q4_0, 288, 11, 37)]
    [InlineData(GgmlType.Q4_0, 768, 4, 16)]
    [InlineData(GgmlType.Q5_0, 160, 9, 21)]
    [InlineData(GgmlType.Q4_1, 96, 6, 17)]
    [InlineData(GgmlType.Q5_1, 512, 7, 33)]
    [InlineData(GgmlType.Q8_0, 288, 11, 37)]
    [InlineData(GgmlType.Q8_0, 768, 5, 16)]
    public void Block_formats_equal_the_avx2_kernel_bit_for_bit(GgmlType type, int k, int m, int rows)
    {
        if (!Runs()) return;
        var w = new byte[GgmlTypeInfo.RowBytes(type, k) * rows];
        GgmlQuant.Quantize(type, Random(rows * k, 13), w);
        if (type == GgmlType.Q8_0) w[2] = w[40] = 0x80; // a file may hold -128
        float[] x = Random(m * k, 14, 3);
        float[] y = Product(type, w, rows, k, x, m, threads: 1, avx512: true);
        Assert.Equal(Product(type, w, rows, k, x, m, threads: 1, avx512: false), y);
        Assert.Equal(y, Product(type, w, rows, k, x, m, threads: 2, avx512: true));
        // and a real product: within the activation's rounding of the twin
        QuantGemm.Rows rowsQ;
        fixed (float* px = x) rowsQ = QuantGemm.Rows.Quantize(QuantGemm.FlavorOf(type), px, k, m, k);
        int rb = (int)GgmlTypeInfo.RowBytes(type, k);
        for (int i = 0; i < m; i++)
            for (int r = 0; r < rows; r++)
            {
                double twin = QuantGemm.RowReference(type, w.AsSpan(r * rb, rb), rowsQ, i);
                Assert.True(Math.Abs(y[i * rows + r] - twin) <= 1e-4 * (1 + Math.Abs(twin)), $"{type} [{i}, {r}]: {y[i * rows + r]} vs twin {twin}");
            }
    }
}
