// Holds the dot-product kernels to their plain twins: the float-activation Dot against dequantize-then-sum for
// every supported type; each integer kernel (every block format against a Q8Activation) on each instruction path
// this machine has (AVX-VNNI, AVX2) against its scalar twin; MatVec against row-by-row dots; and the integer path
// (Dot and MatVec) against the exact float dot within the error the int8 activation implies, for every type.
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

    private static (byte[] Row, float[] Dequantized) QuantizedRow(GgmlType type, int n, int seed)
    {
        var row = new byte[GgmlTypeInfo.RowBytes(type, n)];
        GgmlQuant.Quantize(type, Random(n, seed), row);
        if (type == GgmlType.Q8_0)
        {
            // a file may hold -128 (Quill's quantizer never writes it)
            for (int b = 0; b < n / 32; b += 2) row[b * 34 + 2 + (b % 32)] = 0x80;
        }
        var wd = new float[n];
        GgmlQuant.Dequantize(type, row, wd);
        return (row, wd);
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
    [InlineData(GgmlType.Q5_K, 256 * 3)]
    [InlineData(GgmlType.Q6_K, 256 * 3)]
    public void Float_dot_matches_reference(GgmlType type, int n)
    {
        var (row, wd) = QuantizedRow(type, n, 1);
        float[] x = Random(n, 2);
        float fast = QuantDot.Dot(type, row, x);
        float reference = QuantDot.DotReference(type, row, x);
        Assert.True(Math.Abs(fast - reference) <= 1e-5f * AbsDot(wd, x) + 1e-6f, $"{type}: {fast} vs {reference}");
    }

    public static TheoryData<GgmlType, int> IntegerCases => new()
    {
        { GgmlType.Q8_0, 32 }, { GgmlType.Q8_0, 32 * 7 }, { GgmlType.Q8_0, 32 * 131 },
        { GgmlType.Q4_0, 32 }, { GgmlType.Q4_0, 32 * 8 }, { GgmlType.Q4_0, 32 * 9 }, { GgmlType.Q4_0, 32 * 131 },
        { GgmlType.Q4_1, 32 * 9 }, { GgmlType.Q5_0, 32 * 9 }, { GgmlType.Q5_1, 32 * 9 },
        { GgmlType.Q4_K, 256 }, { GgmlType.Q4_K, 256 * 5 },
        { GgmlType.Q5_K, 256 }, { GgmlType.Q5_K, 256 * 5 },
        { GgmlType.Q6_K, 256 }, { GgmlType.Q6_K, 256 * 5 },
    };

    private static unsafe float Kernel<T>(GgmlType type, byte* w, Q8Activation x, int nb) where T : struct, IU8S8
    {
        fixed (sbyte* q = x.Q32)
        fixed (float* d = x.Scale32)
        fixed (int* s = x.Sum32)
        {
            return type switch
            {
                GgmlType.Q8_0 => IntegerDot.Q8_0<T>(w, q, d, nb),
                GgmlType.Q4_0 => IntegerDot.Q4_0<T>(w, q, d, s, nb),
                GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1 => IntegerDot.Small<T>(type, w, x, 0, nb),
                GgmlType.Q4_K => IntegerDot.Q4_K<T>(w, x, 0, nb),
                GgmlType.Q5_K => IntegerDot.Q5_K<T>(w, x, 0, nb),
                _ => IntegerDot.Q6_K<T>(w, x, 0, nb),
            };
        }
    }

    [Theory]
    [MemberData(nameof(IntegerCases))]
    public unsafe void Integer_kernels_match_their_scalar_twins(GgmlType type, int n)
    {
        var (row, wd) = QuantizedRow(type, n, n);
        var x = Q8Activation.Quantize(Random(n, n + 1, 3));
        float reference = QuantDot.DotReference(type, row, x);
        var xd = new float[n];
        float[] scales = GgmlTypeInfo.BlockSize(type) == 256 ? x.Scale256 : x.Scale32;
        sbyte[] q = GgmlTypeInfo.BlockSize(type) == 256 ? x.Q256 : x.Q32;
        for (int i = 0; i < n; i++) xd[i] = q[i] * scales[i / GgmlTypeInfo.BlockSize(type)];
        float tol = 2e-5f * AbsDot(wd, xd) + 1e-6f;

        // the scalar twin is what the dequantized values say
        double exact = 0;
        for (int i = 0; i < n; i++) exact += (double)wd[i] * xd[i];
        if (type is GgmlType.Q4_1 or GgmlType.Q5_1)
        {
            // ggml's Q8_1: the minimum meets s = f16(d sum q), not dx sum q
            int bytes = type == GgmlType.Q4_1 ? 20 : 24;
            for (int b = 0; b < n / 32; b++)
                exact += (double)(float)BitConverter.ToHalf(row, bytes * b + 2) * (x.Offset32[b] - (double)x.Scale32[b] * x.Sum32[b]);
        }
        Assert.True(Math.Abs(reference - exact) <= tol, $"{type} reference {reference} vs float {exact}");

        Assert.True(Math.Abs(QuantDot.Dot(type, row, x) - reference) <= tol, $"{type} dispatch");
        int nb = n / GgmlTypeInfo.BlockSize(type);
        fixed (byte* w = row)
        {
            if (Avx2.IsSupported && Fma.IsSupported)
                Assert.True(Math.Abs(Kernel<Avx2U8S8>(type, w, x, nb) - reference) <= tol, $"{type} AVX2");
            if (AvxVnni.IsSupported)
                Assert.True(Math.Abs(Kernel<VnniU8S8>(type, w, x, nb) - reference) <= tol, $"{type} AVX-VNNI");
            if (type == GgmlType.Q4_0 && IntegerDot.Avx512Q4)
                Assert.True(Math.Abs(Q4_0Avx512(w, x, nb) - reference) <= tol, $"{type} AVX-512");
        }
    }

    [Theory]
    [InlineData(GgmlType.Q4_1, 32 * 9)]   // odd block count: the last block takes the 256-bit step
    [InlineData(GgmlType.Q5_0, 32 * 24)]
    [InlineData(GgmlType.Q5_1, 32 * 7)]
    [InlineData(GgmlType.Q5_0, 32)]
    public unsafe void Small_formats_on_AVX512_equal_the_AVX2_kernel_bit_for_bit(GgmlType type, int n)
    {
        if (!IntegerDot.Avx512Small) return; // the kernel runs only where AVX-512 BW is
        var (row, _) = QuantizedRow(type, n, n + 3);
        var x = Q8Activation.Quantize(Random(n, n + 5, 6));
        fixed (byte* w = row)
        {
            float wide = IntegerDot.SmallAvx512(type, w, x, 0, n / 32);
            float avx2 = IntegerDot.Small<Avx2U8S8>(type, w, x, 0, n / 32);
            Assert.Equal(BitConverter.SingleToInt32Bits(avx2), BitConverter.SingleToInt32Bits(wide));
            Assert.Equal(BitConverter.SingleToInt32Bits(avx2), BitConverter.SingleToInt32Bits(QuantDot.Dot(type, row, x))); // the dispatch takes it
        }
    }

    private static unsafe float Q4_0Avx512(byte* w, Q8Activation x, int nb)
    {
        fixed (sbyte* q = x.Q32)
        fixed (float* d = x.Scale32)
        fixed (int* s = x.Sum32)
        fixed (float* dx4 = x.Dx4)
        fixed (int* corr4 = x.Corr4)
            return IntegerDot.Q4_0Avx512(w, q, dx4, corr4, d, s, nb);
    }

    [Fact]
    public unsafe void Avx512_q4_0_converts_every_finite_f16_scale_as_the_table_does()
    {
        if (!IntegerDot.Avx512Q4) return;
        // scales a quantizer rarely writes: subnormals, zeros of both signs, the largest finite, negatives, 1
        ushort[] scales = [0x0001, 0x03FF, 0x0000, 0x8000, 0x7BFF, 0xFBFF, 0x8001, 0x3C00, 0x0400, 0x8400, 0x1234, 0xB321];
        int nb = scales.Length, n = nb * 32;
        var (row, _) = QuantizedRow(GgmlType.Q4_0, n, 5);
        for (int b = 0; b < nb; b++) BitConverter.TryWriteBytes(row.AsSpan(b * 18, 2), scales[b]);
        var wd = new float[n];
        GgmlQuant.Dequantize(GgmlType.Q4_0, row, wd);
        var x = Q8Activation.Quantize(Random(n, 6));
        float reference = QuantDot.DotReference(GgmlType.Q4_0, row, x);
        var xd = new float[n];
        for (int i = 0; i < n; i++) xd[i] = x.Q32[i] * x.Scale32[i / 32];
        fixed (byte* w = row)
        {
            // each block alone (the others' scales zero), so a wrong scale cannot hide behind a larger one
            for (int k = 0; k < nb; k++)
            {
                var one = (byte[])row.Clone();
                for (int j = 0; j < nb; j++)
                    if (j != k) BitConverter.TryWriteBytes(one.AsSpan(j * 18, 2), (ushort)0);
                fixed (byte* o = one)
                {
                    float want = QuantDot.DotReference(GgmlType.Q4_0, one, x);
                    float got = Q4_0Avx512(o, x, nb);
                    Assert.True(Math.Abs(got - want) <= 1e-6f * Math.Abs(want) + 1e-37f, $"scale {scales[k]:X4}: {got} vs {want}");
                    Assert.True(want != 0 || scales[k] is 0x0000 or 0x8000, $"scale {scales[k]:X4} gave a zero dot");
                }
            }
            Assert.True(Math.Abs(Q4_0Avx512(w, x, nb) - reference) <= 2e-5f * AbsDot(wd, xd) + 1e-6f);
        }
    }

    /// <summary>
    /// How far the integer path may be from the exact dot: each activation value is within (its group's amax / 127) / 2
    /// of x, plus, for 32-value groups, the f16 rounding of the scale (q * 2^-11 of it: amax / 2048) and, for Q4_1 /
    /// Q5_1, of Q8_1's s (|m| |d sum q| / 2048, |m| at most the largest |w|).
    /// </summary>
    internal static double ActivationErrorBound(GgmlType type, ReadOnlySpan<float> wd, ReadOnlySpan<float> x)
    {
        if (!QuantDot.HasIntegerPath(type)) return 0;
        int g = GgmlTypeInfo.BlockSize(type) == 256 ? 256 : 32;
        double bound = 0;
        for (int b = 0; b < x.Length / g; b++)
        {
            float amax = 0, wsum = 0, wmax = 0;
            for (int i = b * g; i < (b + 1) * g; i++)
            {
                amax = Math.Max(amax, Math.Abs(x[i]));
                wsum += Math.Abs(wd[i]);
                wmax = Math.Max(wmax, Math.Abs(wd[i]));
            }
            bound += wsum * amax / 254;
            if (g == 32) bound += wsum * amax / 2048;
            if (type is GgmlType.Q4_1 or GgmlType.Q5_1) bound += wmax * 32 * amax / 2048;
        }
        return bound;
    }

    [Theory]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_0)]
    [InlineData(GgmlType.Q4_1)]
    [InlineData(GgmlType.Q5_0)]
    [InlineData(GgmlType.Q5_1)]
    [InlineData(GgmlType.Q4_K)]
    [InlineData(GgmlType.Q5_K)]
    [InlineData(GgmlType.Q6_K)]
    public void Integer_path_is_close_to_the_float_dot(GgmlType type)
    {
        const int N = 4096;
        var (row, wd) = QuantizedRow(type, N, 11);
        float[] x = Random(N, 12);
        var xq = Q8Activation.Quantize(x);
        double bound = ActivationErrorBound(type, wd, x);
        double exact = 0;
        for (int i = 0; i < N; i++) exact += (double)wd[i] * x[i];
        Assert.True(Math.Abs(QuantDot.Dot(type, row, xq) - exact) <= bound * 1.01 + 1e-4, $"{type}");
    }

    // MatVec (int8 activation for the integer-kernel types, Q8_0 / Q4_0 in the decode region) against the general
    // float path (dequantize, then an exact dot) for every supported type, within what the activation's rounding allows.
    [Theory]
    [InlineData(GgmlType.F32)]
    [InlineData(GgmlType.F16)]
    [InlineData(GgmlType.BF16)]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_0)]
    [InlineData(GgmlType.Q4_1)]
    [InlineData(GgmlType.Q5_0)]
    [InlineData(GgmlType.Q5_1)]
    [InlineData(GgmlType.Q4_K)]
    [InlineData(GgmlType.Q5_K)]
    [InlineData(GgmlType.Q6_K)]
    public void MatVec_is_within_the_activation_error_of_the_float_path(GgmlType type)
    {
        const int Rows = 67, Cols = 768; // 51 K multiply-adds: the threaded path
        float[] w = Random(Rows * Cols, 31), x = Random(Cols, 32, 4);
        int rb = (int)GgmlTypeInfo.RowBytes(type, Cols);
        var m = new byte[rb * Rows];
        GgmlQuant.Quantize(type, w, m);
        var y = new float[Rows];
        QuantDot.MatVec(type, m, Rows, Cols, x, y);
        var wd = new float[Cols];
        for (int r = 0; r < Rows; r++)
        {
            GgmlQuant.Dequantize(type, m.AsSpan(r * rb, rb), wd);
            double exact = 0;
            for (int i = 0; i < Cols; i++) exact += (double)wd[i] * x[i];
            double bound = ActivationErrorBound(type, wd, x) * 1.01 + 1e-5 * AbsDot(wd, x);
            Assert.True(Math.Abs(y[r] - exact) <= bound, $"{type} row {r}: {y[r]} vs {exact} (bound {bound})");
        }
    }

    [Theory]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_0)]
    [InlineData(GgmlType.Q4_K)]
    [InlineData(GgmlType.Q5_K)]
    [InlineData(GgmlType.Q6_K)]
    [InlineData(GgmlType.Q5_1)]
    [InlineData(GgmlType.F16)]
    [InlineData(GgmlType.BF16)]
    public void MatVec_matches_row_dots(GgmlType type)
    {
        const int Rows = 37, Cols = 512;
        float[] w = Random(Rows * Cols, 5), x = Random(Cols, 6);
        int rb = (int)GgmlTypeInfo.RowBytes(type, Cols);
        var m = new byte[rb * Rows];
        GgmlQuant.Quantize(type, w, m);
        var y = new float[Rows];
        QuantDot.MatVec(type, m, Rows, Cols, x, y);
        var xq = Q8Activation.Quantize(x);
        for (int r = 0; r < Rows; r++)
        {
            var row = m.AsSpan(r * rb, rb);
            float want = QuantDot.HasIntegerPath(type) ? QuantDot.DotReference(type, row, xq) : QuantDot.DotReference(type, row, x);
            Assert.True(Math.Abs(y[r] - want) <= 1e-4f * (1 + Math.Abs(want)), $"row {r}: {y[r]} vs {want}");
        }
    }
}
