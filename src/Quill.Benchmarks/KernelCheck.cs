// What the kernels run on this CPU, and a check that each path computes what its plain reference twin computes,
// on random data of awkward shapes (ragged tiles, odd lengths). `quill version` prints the paths; `quill version
// --check` runs the checks, so a user on a new CPU (an ARM laptop, an AVX2-only server) or CI under qemu-aarch64
// can see that the vector paths chosen there are right. Tolerances allow float reassociation, nothing more.
// Does not handle: timing (that is `quill bench`), kernels without a reference twin.
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using Quill.Kernels;
using Quill.Quantization;

namespace Quill.Benchmarks;

/// <summary>One kernel family's check: which path ran and the largest relative error against the reference.</summary>
public sealed record KernelCheckResult(string Family, string Path, double MaxError, double Tolerance)
{
    public bool Passed => MaxError <= Tolerance;
}

/// <summary>Reports and checks the kernel paths this machine runs.</summary>
public static class KernelCheck
{
    private static string Width128 => AdvSimd.IsSupported ? "neon 128-bit" : "sse 128-bit";

    private static string WidthName(int bits) => bits switch
    {
        512 => "avx512",
        256 => "avx2",
        128 => Width128,
        _ => "scalar",
    };

    /// <summary>(family, path) for each kernel family, as this CPU runs it.</summary>
    public static IReadOnlyList<(string Family, string Path)> Paths()
    {
        int gemv = Gemv.Best switch { GemvWidth.Vector512 => 512, GemvWidth.Vector256 => 256, GemvWidth.Vector128 => 128, _ => 0 };
        int attention = Attention.Resolve(AttentionWidth.Auto) switch
        {
            AttentionWidth.Vector512 => 512,
            AttentionWidth.Vector256 => 256,
            AttentionWidth.Vector128 => 128,
            _ => 0,
        };
        int elementwise = Vector512.IsHardwareAccelerated ? 512 : Vector256.IsHardwareAccelerated ? 256 : 0;
        return
        [
            ("gemm", Gemm.KernelName),
            ("gemv (fp32 decode)", WidthName(gemv)),
            ("attention", WidthName(attention)),
            ("quantized dot", IntegerDot.PathName),
            ("quantized gemm (prefill)", QuantGemm.PathName),
            ("norms, activations, AdamW", WidthName(elementwise)),
        ];
    }

    /// <summary>Runs every check.</summary>
    public static IReadOnlyList<KernelCheckResult> Run()
    {
        var paths = Paths().ToDictionary(p => p.Family, p => p.Path);
        return
        [
            new("gemm", paths["gemm"], CheckGemm(), 1e-5),
            new("gemv (fp32 decode)", paths["gemv (fp32 decode)"], CheckGemv(), 1e-5),
            new("attention", paths["attention"], CheckAttention(), 1e-4),
            new("quantized dot", paths["quantized dot"], CheckQuantDot(), 1e-4),
            .. QuantGemm.Enabled ? [new KernelCheckResult("quantized gemm (prefill)", paths["quantized gemm (prefill)"], CheckQuantGemm(), 1e-4)] : Array.Empty<KernelCheckResult>(),
        ];
    }

    private static float[] Random(int n, int seed)
    {
        var rng = new System.Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
        return a;
    }

    /// <summary>max |want - got| / (1 + |want|), scaled by 1 / sqrt(terms) so long sums get the same tolerance.</summary>
    private static double Error(ReadOnlySpan<float> want, ReadOnlySpan<float> got, int terms)
    {
        double worst = 0;
        for (int i = 0; i < want.Length; i++)
        {
            double d = Math.Abs(want[i] - got[i]) / (1 + Math.Abs(want[i]));
            if (!(d <= worst)) worst = double.IsNaN(d) ? double.PositiveInfinity : d;
        }
        return worst / Math.Sqrt(Math.Max(terms, 1));
    }

    private static double CheckGemm()
    {
        double worst = 0;
        // ragged in every dimension, both transposes, accumulate, and a product big enough to use several threads
        foreach (var (m, n, k, ta, tb, beta) in new[] { (37, 29, 45, false, false, 0f), (13, 50, 7, true, false, 1f), (64, 96, 128, false, true, 0.5f), (9, 13, 300, true, true, 0f), (150, 70, 260, false, false, 1f) })
        {
            float[] a = Random(m * k, 1), b = Random(k * n, 2), c0 = Random(m * n, 3);
            float[] want = (float[])c0.Clone(), got = (float[])c0.Clone();
            int lda = ta ? m : k, ldb = tb ? k : n;
            GemmReference.Sgemm(ta, tb, m, n, k, 0.75f, a, lda, b, ldb, beta, want, n);
            Gemm.Sgemm(ta, tb, m, n, k, 0.75f, a, lda, b, ldb, beta, got, n);
            worst = Math.Max(worst, Error(want, got, k));
        }
        return worst;
    }

    private static double CheckGemv()
    {
        double worst = 0;
        foreach (var (n, k, m) in new[] { (37, 45, 1), (64, 288, 3), (7, 1000, 2) })
        {
            float[] w = Random(n * k, 4), x = Random(m * k, 5);
            var want = new float[m * n];
            var got = new float[m * n];
            GemvReference.MultiplyBatch(w, n, k, x, m, want);
            Gemv.MultiplyBatch(w, n, k, x, m, got);
            worst = Math.Max(worst, Error(want, got, k));
        }
        return worst;
    }

    private static double CheckAttention()
    {
        const int B = 2, T = 19, Hq = 4, Hkv = 2, D = 24;
        float scale = 1 / MathF.Sqrt(D);
        float[] q = Random(B * T * Hq * D, 6), k = Random(B * T * Hkv * D, 7), v = Random(B * T * Hkv * D, 8);
        float[] wantO = new float[B * T * Hq * D], gotO = new float[wantO.Length], wantL = new float[B * Hq * T], gotL = new float[wantL.Length];
        AttentionReference.Forward(B, T, Hq, Hkv, D, scale, q, Hq * D, k, Hkv * D, v, Hkv * D, wantO, wantL);
        Attention.Forward(B, T, Hq, Hkv, D, scale, q, Hq * D, k, Hkv * D, v, Hkv * D, gotO, gotL);
        return Math.Max(Error(wantO, gotO, 1), Error(wantL, gotL, 1));
    }

    private static unsafe double CheckQuantGemm()
    {
        double worst = 0;
        const int m = 7, rows = 21, cols = 512; // four activation rows and single ones; eight weight rows and a partial group
        float[] w = Random(rows * cols, 11), x = Random(m * cols, 12);
        foreach (var type in new[] { GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q4_K, GgmlType.Q6_K })
        {
            int rowBytes = (int)Quantization.GgmlTypeInfo.RowBytes(type, cols);
            var bytes = new byte[rows * rowBytes];
            GgmlQuant.Quantize(type, w, bytes);
            var got = new float[m * rows];
            var want = new float[m * rows];
            fixed (float* px = x)
            fixed (byte* pw = bytes)
            fixed (float* py = got)
            {
                var q = QuantGemm.Rows.Quantize(QuantGemm.FlavorOf(type), px, cols, m, cols);
                QuantGemm.Multiply(type, pw, rows, rowBytes, q, py, rows);
                for (int i = 0; i < m; i++)
                    for (int r = 0; r < rows; r++) want[i * rows + r] = (float)QuantGemm.RowReference(type, bytes.AsSpan(r * rowBytes, rowBytes), q, i);
            }
            worst = Math.Max(worst, Error(want, got, cols));
        }
        return worst;
    }

    private static double CheckQuantDot()
    {
        double worst = 0;
        const int rows = 9, cols = 256;
        float[] w = Random(rows * cols, 9), x = Random(cols, 10);
        foreach (var type in new[] { GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q6_K })
        {
            var bytes = new byte[rows * Quantization.GgmlTypeInfo.RowBytes(type, cols)];
            GgmlQuant.Quantize(type, w, bytes);
            // both sides use the same int8 activation, so only the integer kernel's arithmetic differs
            var q = Q8Activation.Quantize(x);
            var got = new float[rows];
            QuantDot.MatVec(type, bytes, rows, cols, q, got);
            var want = new float[rows];
            int rowBytes = (int)Quantization.GgmlTypeInfo.RowBytes(type, cols);
            for (int r = 0; r < rows; r++) want[r] = QuantDot.DotReference(type, bytes.AsSpan(r * rowBytes, rowBytes), q);
            worst = Math.Max(worst, Error(want, got, cols));
        }
        return worst;
    }
}
