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
        string elementwise = WidthName(KernelWidths.Bits(KernelWidth.Auto));
        return
        [
            ("gemm", Gemm.KernelName),
            ($"gemm, up to {Gemm.ThinRows} rows", Gemm.ThinKernelName),
            ("gemv (fp32 decode)", WidthName(gemv)),
            ("gemv (f16, bf16 decode)", WidthName(gemv)),
            ("attention", WidthName(attention)),
            ("quantized dot", IntegerDot.PathName),
            ("quantized gemm (prefill)", QuantGemm.PathName),
            ("norms (RMSNorm, LayerNorm)", elementwise),
            ("softmax, cross-entropy", elementwise),
            ("activations (GELU, SiLU, SwiGLU)", elementwise),
            ("AdamW", elementwise),
            ("RoPE, residual adds", elementwise),
        ];
    }

    /// <summary>Runs every check.</summary>
    public static IReadOnlyList<KernelCheckResult> Run()
    {
        var paths = Paths().ToDictionary(p => p.Family, p => p.Path);
        return
        [
            new("gemm", paths["gemm"], CheckGemm(thin: false), 1e-5),
            new($"gemm, up to {Gemm.ThinRows} rows", paths[$"gemm, up to {Gemm.ThinRows} rows"], CheckGemm(thin: true), 1e-5),
            new("gemv (fp32 decode)", paths["gemv (fp32 decode)"], CheckGemv(), 1e-5),
            new("gemv (f16, bf16 decode)", paths["gemv (f16, bf16 decode)"], CheckHalfGemv(), 1e-5),
            new("attention", paths["attention"], CheckAttention(), 1e-4),
            new("quantized dot", paths["quantized dot"], CheckQuantDot(), 1e-4),
            new("norms (RMSNorm, LayerNorm)", paths["norms (RMSNorm, LayerNorm)"], CheckNorms(), 1e-5),
            new("softmax, cross-entropy", paths["softmax, cross-entropy"], CheckSoftmaxLoss(), 1e-5),
            new("activations (GELU, SiLU, SwiGLU)", paths["activations (GELU, SiLU, SwiGLU)"], CheckActivations(), 1e-5),
            // AdamW repeats PyTorch's float operations lane by lane: bit for bit
            new("AdamW", paths["AdamW"], CheckAdamW(), 0),
            new("RoPE, residual adds", paths["RoPE, residual adds"], CheckRopeAdds(), 1e-6),
            .. QuantGemm.Enabled ? [new KernelCheckResult("quantized gemm (prefill)", paths["quantized gemm (prefill)"], CheckQuantGemm(), 1e-4)] : Array.Empty<KernelCheckResult>(),
            // on ARM64 the K-quant dots sum each super-block in integers and then run the reference's float expression
            .. IntegerDot.Neon ? [new KernelCheckResult("quantized dot, k-quants bit for bit", paths["quantized dot"], CheckKQuantDotExact(), 0)] : Array.Empty<KernelCheckResult>(),
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

    /// <summary>The packed path (more than Gemm.ThinRows rows), or the thin path (at most that many).</summary>
    private static double CheckGemm(bool thin)
    {
        double worst = 0;
        // ragged in every dimension, both transposes, accumulate, and a product big enough to use several threads;
        // each also with a linear layer's bias, which the micro-kernel adds as it stores a whole tile (thin: row
        // groups with a remainder, B's columns past the last whole vector block, k past a 1,024-deep strip)
        (int, int, int, bool, bool, float)[] shapes = thin
            ? [(13, 50, 7, true, false, 1f), (9, 13, 300, true, true, 0f), (3, 70, 33, false, true, 0.5f), (16, 40, 1100, false, false, 1f)]
            : [(37, 29, 45, false, false, 0f), (64, 96, 128, false, true, 0.5f), (150, 70, 260, false, false, 1f), (48, 64, 96, false, true, 0f)];
        foreach (var (m, n, k, ta, tb, beta) in shapes)
        {
            float[] a = Random(m * k, 1), b = Random(k * n, 2), c0 = Random(m * n, 3), bias = Random(n, 4);
            int lda = ta ? m : k, ldb = tb ? k : n;
            foreach (bool biased in new[] { false, true })
            {
                float[] want = (float[])c0.Clone(), got = (float[])c0.Clone();
                GemmReference.Sgemm(ta, tb, m, n, k, 0.75f, a, lda, b, ldb, beta, want, n);
                if (biased) ElementwiseReference.AddBiasRows(want, bias, m, n);
                Gemm.Sgemm(ta, tb, m, n, k, 0.75f, a, lda, b, ldb, beta, got, n, biased ? bias : default);
                worst = Math.Max(worst, Error(want, got, k));
            }
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

    // F16 and BF16 rows widened in registers, against the reference on the widened floats; F16's two widenings (any
    // bits, and the scaled one for finite weights) must also agree bit for bit, or the check fails outright.
    private static unsafe double CheckHalfGemv()
    {
        double worst = 0;
        foreach (var (n, k, bf16) in new[] { (37, 45, false), (9, 1000, false), (13, 290, true) })
        {
            float[] wf = Random(n * k, 6), x = Random(k, 7);
            var bits = new ushort[n * k];
            if (bf16) Bf16.FromSingle(wf, bits);
            else Fp16.FromSingle(wf, bits);
            if (bf16) Bf16.ToSingle(bits, wf);
            else Fp16.ToSingle(bits, wf);
            float[] want = new float[n], exact = new float[n], scaled = new float[n];
            GemvReference.MultiplyBatch(wf, n, k, x, 1, want);
            fixed (ushort* pw = bits)
            fixed (float* px = x, pe = exact, ps = scaled)
            {
                Gemv.RunHalf(bf16, pw, n, k, px, pe, finite: false);
                Gemv.RunHalf(bf16, pw, n, k, px, ps, finite: true);
            }
            if (!exact.AsSpan().SequenceEqual(scaled)) return double.PositiveInfinity;
            worst = Math.Max(worst, Error(want, exact, k));
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
        foreach (var type in new[] { GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K })
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

    /// <summary>Largest |kernel - reference| over Q4_K, Q5_K and Q6_K rows of several super-blocks, absolute: 0 when bit for bit.</summary>
    private static double CheckKQuantDotExact()
    {
        double worst = 0;
        const int rows = 5, cols = 256 * 3;
        float[] w = Random(rows * cols, 40), x = Random(cols, 41);
        var q = Q8Activation.Quantize(x);
        foreach (var type in new[] { GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K })
        {
            int rowBytes = (int)Quantization.GgmlTypeInfo.RowBytes(type, cols);
            var bytes = new byte[rows * rowBytes];
            GgmlQuant.Quantize(type, w, bytes);
            var got = new float[rows];
            QuantDot.MatVec(type, bytes, rows, cols, q, got);
            for (int r = 0; r < rows; r++)
                worst = Math.Max(worst, Math.Abs(QuantDot.DotReference(type, bytes.AsSpan(r * rowBytes, rowBytes), q) - got[r]));
        }
        return worst;
    }

    private static double CheckNorms()
    {
        double worst = 0;
        // 37: ragged tail at every width; 300: several 128-column blocks in the gamma reduction
        foreach (var (n, c) in new[] { (5, 37), (9, 300) })
        {
            float[] x = Random(n * c, 11), gamma = Random(c, 12), beta = Random(c, 13), dy = Random(n * c, 14);
            float[] yW = new float[n * c], yG = new float[n * c], rW = new float[n], rG = new float[n], mW = new float[n], mG = new float[n];
            float[] dxW = new float[n * c], dxG = new float[n * c], dgW = new float[c], dgG = new float[c], dbW = new float[c], dbG = new float[c];
            RmsNormReference.Forward(x, gamma, yW, rW, n, c, 1e-5f);
            RmsNorm.Forward(x, gamma, yG, rG, n, c, 1e-5f);
            RmsNormReference.Backward(dy, x, gamma, rW, dxW, dgW, n, c);
            RmsNorm.Backward(dy, x, gamma, rW, dxG, dgG, n, c);
            worst = Math.Max(worst, Math.Max(Error(yW, yG, c), Error(rW, rG, c)));
            worst = Math.Max(worst, Math.Max(Error(dxW, dxG, c), Error(dgW, dgG, n)));
            Array.Clear(dxW); Array.Clear(dxG); Array.Clear(dgW); Array.Clear(dgG);
            LayerNormReference.Forward(x, gamma, beta, yW, mW, rW, n, c, 1e-5f);
            LayerNorm.Forward(x, gamma, beta, yG, mG, rG, n, c, 1e-5f);
            LayerNormReference.Backward(dy, x, gamma, mW, rW, dxW, dgW, dbW, n, c);
            LayerNorm.Backward(dy, x, gamma, mW, rW, dxG, dgG, dbG, n, c);
            worst = Math.Max(worst, Math.Max(Error(yW, yG, c), Math.Max(Error(mW, mG, c), Error(rW, rG, c))));
            worst = Math.Max(worst, Math.Max(Error(dxW, dxG, c), Math.Max(Error(dgW, dgG, n), Error(dbW, dbG, n))));
        }
        return worst;
    }

    private static double CheckSoftmaxLoss()
    {
        const int n = 7, v = 45;
        float[] x = Random(n * v, 15), dy = Random(n * v, 16);
        float[] yW = new float[n * v], yG = new float[n * v], dxW = new float[n * v], dxG = new float[n * v];
        SoftmaxReference.Forward(x, yW, n, v);
        Softmax.Forward(x, yG, n, v);
        SoftmaxReference.Backward(yW, dy, dxW, n, v);
        Softmax.Backward(yW, dy, dxG, n, v);
        double worst = Math.Max(Error(yW, yG, v), Error(dxW, dxG, v));
        for (int i = 0; i < x.Length; i++) x[i] *= 8;  // logits with a wide range
        int[] targets = [3, -1, 44, 0, 17, 9, 30];     // one ignored row
        float[] lseW = new float[n], lseG = new float[n];
        double lossW = CrossEntropyReference.Forward(x, targets, lseW, n, v);
        double lossG = CrossEntropy.Forward(x, targets, lseG, n, v);
        CrossEntropyReference.Backward(x, targets, lseW, 1f / 6, dxW, n, v);
        CrossEntropy.Backward(x, targets, lseW, 1f / 6, dxG, n, v);
        worst = Math.Max(worst, Math.Max(Error(lseW, lseG, v), Error(dxW, dxG, v)));
        return Math.Max(worst, Math.Abs(lossW - lossG) / (1 + Math.Abs(lossW)) / Math.Sqrt(v));
    }

    private static double CheckActivations()
    {
        const int len = 1037;
        float[] x = Random(len, 17), u = Random(len, 18), dy = Random(len, 19);
        for (int i = 0; i < len; i++) x[i] *= 8;  // both tails of the sigmoid
        float[] yW = new float[len], yG = new float[len], dW = new float[len], dG = new float[len], duW = new float[len], duG = new float[len];
        double worst = 0;
        GeluReference.Forward(x, yW);
        Gelu.Forward(x, yG);
        GeluReference.Backward(x, dy, dW);
        Gelu.Backward(x, dy, dG);
        worst = Math.Max(worst, Math.Max(Error(yW, yG, 1), Error(dW, dG, 1)));
        Array.Clear(dW); Array.Clear(dG);
        SiluReference.Forward(x, yW);
        Silu.Forward(x, yG);
        SiluReference.Backward(x, dy, dW);
        Silu.Backward(x, dy, dG);
        worst = Math.Max(worst, Math.Max(Error(yW, yG, 1), Error(dW, dG, 1)));
        Array.Clear(dW); Array.Clear(dG);
        SwiGluReference.Forward(x, u, yW);
        SwiGlu.Forward(x, u, yG);
        SwiGluReference.Backward(x, u, dy, dW, duW);
        SwiGlu.Backward(x, u, dy, dG, duG);
        return Math.Max(worst, Math.Max(Error(yW, yG, 1), Math.Max(Error(dW, dG, 1), Error(duW, duG, 1))));
    }

    private static double CheckAdamW()
    {
        const int len = 1031;
        float[] p = Random(len, 20), m = new float[len], v = new float[len];
        float[] pW = (float[])p.Clone(), mW = new float[len], vW = new float[len];
        for (int step = 1; step <= 3; step++)
        {
            float[] g = Random(len, 20 + step);
            AdamW.Step(p, g, m, v, 3e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step, 0.5f);
            AdamWReference.Step(pW, g, mW, vW, 3e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step, 0.5f);
        }
        return Math.Max(Error(pW, p, 1), Math.Max(Error(mW, m, 1), Error(vW, v, 1)));
    }

    private static double CheckRopeAdds()
    {
        const int B = 2, T = 5, H = 3, D = 22, rotary = 18, rowStride = H * D + 4;
        float[] cos = new float[16 * rotary / 2], sin = new float[cos.Length];
        Rope.Tables(16, rotary, 10000, cos, sin);
        double worst = 0;
        foreach (var style in new[] { RopeStyle.Half, RopeStyle.Interleaved })
        {
            foreach (bool inverse in new[] { false, true })
            {
                float[] want = Random(B * T * rowStride, 30), got = (float[])want.Clone();
                RopeReference.Apply(want, B, T, H, D, rowStride, rotary, 3, cos, sin, style, inverse);
                Rope.Apply(got, B, T, H, D, rowStride, rotary, 3, cos, sin, style, inverse);
                worst = Math.Max(worst, Error(want, got, 1));
            }
        }
        const int n = 9, c = 293;
        float[] a = Random(n * c, 31), b = Random(n * c, 32), bias = Random(c, 33);
        float[] yW = new float[n * c], yG = new float[n * c];
        ElementwiseReference.Add(a, b, yW);
        Elementwise.Add(a, b, yG);
        worst = Math.Max(worst, Error(yW, yG, 1));
        ElementwiseReference.AddInPlace(yW, a);
        Elementwise.AddInPlace(yG, a);
        ElementwiseReference.AddBiasRows(yW, bias, n, c);
        Elementwise.AddBiasRows(yG, bias, n, c);
        worst = Math.Max(worst, Error(yW, yG, 1));
        float[] sW = new float[c], sG = new float[c];
        ElementwiseReference.SumRows(a, sW, n, c);
        Elementwise.SumRows(a, sG, n, c);
        worst = Math.Max(worst, Error(sW, sG, n));
        double qW = ElementwiseReference.SumOfSquares(a), qG = Elementwise.SumOfSquares(a);
        return Math.Max(worst, Math.Abs(qW - qG) / qW);
    }
}
