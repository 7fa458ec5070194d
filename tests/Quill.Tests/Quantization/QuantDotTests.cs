// Holds the dot-product kernels to their plain twins: the float-activation Dot against dequantize-then-sum for
// every supported type; each integer kernel (Q8_0, Q4_0, Q4_K, Q6_K against a Q8Activation) on each instruction
// path this machine has (AVX-VNNI, AVX2) against its scalar twin; MatVec against row-by-row dots; and the
// integer path against the exact float dot within the error the int8 activation implies.
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
        { GgmlType.Q4_0, 32 }, { GgmlType.Q4_0, 32 * 131 },
        { GgmlType.Q4_1, 32 * 9 }, { GgmlType.Q5_0, 32 * 9 }, { GgmlType.Q5_1, 32 * 9 },
        { GgmlType.Q4_K, 256 }, { GgmlType.Q4_K, 256 * 5 },
        { GgmlType.Q5_K, 256 }, { GgmlType.Q5_K, 256 * 5 },
        { GgmlType.Q6_K, 256 }, { GgmlType.Q6_K, 256 * 5 },
    };

    private static unsafe float Kernel<T>(GgmlType type, byte* w, Q8Activation x, int nb) where T : struct, IU8S8 => type switch
    {
        GgmlType.Q8_0 => IntegerDot.Q8_0<T>(w, x, 0, nb),
        GgmlType.Q4_0 => IntegerDot.Q4_0<T>(w, x, 0, nb),
        GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1 => IntegerDot.Small<T>(type, w, x, 0, nb),
        GgmlType.Q4_K => IntegerDot.Q4_K<T>(w, x, 0, nb),
        GgmlType.Q5_K => IntegerDot.Q5_K<T>(w, x, 0, nb),
        _ => IntegerDot.Q6_K<T>(w, x, 0, nb),
    };

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
        Assert.True(Math.Abs(reference - exact) <= tol, $"{type} reference {reference} vs float {exact}");

        Assert.True(Math.Abs(QuantDot.Dot(type, row, x) - reference) <= tol, $"{type} dispatch");
        int nb = n / GgmlTypeInfo.BlockSize(type);
        fixed (byte* w = row)
        {
            if (Avx2.IsSupported && Fma.IsSupported)
                Assert.True(Math.Abs(Kernel<Avx2U8S8>(type, w, x, nb) - reference) <= tol, $"{type} AVX2");
            if (AvxVnni.IsSupported)
                Assert.True(Math.Abs(Kernel<VnniU8S8>(type, w, x, nb) - reference) <= tol, $"{type} AVX-VNNI");
        }
    }

    [Theory]
    [InlineData(GgmlType.Q8_0)]
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
        int g = GgmlTypeInfo.BlockSize(type) == 256 ? 256 : 32;
        // each activation value is within (its group's amax / 127) / 2 of x
        double bound = 0;
        for (int b = 0; b < N / g; b++)
        {
            float amax = 0, wsum = 0;
            for (int i = b * g; i < (b + 1) * g; i++)
            {
                amax = Math.Max(amax, Math.Abs(x[i]));
                wsum += Math.Abs(wd[i]);
            }
            bound += wsum * amax / 254;
        }
        double exact = 0;
        for (int i = 0; i < N; i++) exact += (double)wd[i] * x[i];
        Assert.True(Math.Abs(QuantDot.Dot(type, row, xq) - exact) <= bound * 1.01 + 1e-4, $"{type}");
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

    [Fact]
    public void Activation_values_are_within_half_a_step()
    {
        float[] x = Random(512, 21, 5);
        var a = Q8Activation.Quantize(x);
        Assert.True(a.Has32 && a.Has256);
        for (int i = 0; i < x.Length; i++)
        {
            Assert.True(Math.Abs(a.Q32[i] * a.Scale32[i / 32] - x[i]) <= a.Scale32[i / 32] / 2 * 1.0001f);
            Assert.True(Math.Abs(a.Q256[i] * a.Scale256[i / 256] - x[i]) <= a.Scale256[i / 256] / 2 * 1.0001f);
        }
        for (int k = 0; k < 32; k++) Assert.Equal(a.Q256.Skip(16 * k).Take(16).Sum(v => v), a.Sum16[k]);
        Assert.False(Q8Activation.Quantize(new float[96]).Has256);
        Assert.Throws<ArgumentException>(() => QuantDot.Dot(GgmlType.Q4_K, new byte[3 * 18], Q8Activation.Quantize(new float[96])));
        Assert.Throws<ArgumentException>(() => QuantDot.Dot(GgmlType.F16, new byte[64], Q8Activation.Quantize(new float[32])));
    }
}
