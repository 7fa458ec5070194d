// Every vector width of the elementwise, norm, loss, RoPE and AdamW kernels (512, 256, 128 and scalar, as many as
// this CPU runs) against the plain reference twins, on sizes that leave a ragged tail at every width. The 128-bit
// path is the one ARM64 (NEON) runs; on x86 the same generic code runs on SSE, so a mistake in it fails here
// before the emulated ARM64 run in CI.
using System.Runtime.Intrinsics;
using Quill.Kernels;
using static Quill.Tests.Kernels.KernelTestUtil;

namespace Quill.Tests.Kernels;

public class KernelWidthTests
{
    /// <summary>The widths this CPU runs, by name (KernelWidth is internal, test parameters are public).</summary>
    public static TheoryData<string> Widths()
    {
        var data = new TheoryData<string>();
        if (Vector512.IsHardwareAccelerated) data.Add(nameof(KernelWidth.Vector512));
        if (Vector256.IsHardwareAccelerated) data.Add(nameof(KernelWidth.Vector256));
        if (Vector128.IsHardwareAccelerated) data.Add(nameof(KernelWidth.Vector128));
        data.Add(nameof(KernelWidth.Scalar));
        return data;
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void Norms_match_reference(string name)
    {
        var width = Enum.Parse<KernelWidth>(name);
        foreach (var (n, c) in new[] { (3, 7), (5, 37), (4, 301) })
        {
            var rnd = new Random(c);
            float[] x = Random(rnd, n * c, 2f, 0.3f), gamma = Random(rnd, c, 1f, 1f), beta = Random(rnd, c), dy = Random(rnd, n * c);
            float[] y = new float[n * c], yR = new float[n * c], mean = new float[n], meanR = new float[n], rstd = new float[n], rstdR = new float[n];
            float[] dx = Random(rnd, n * c), dg = Random(rnd, c), db = Random(rnd, c);
            float[] dxR = (float[])dx.Clone(), dgR = (float[])dg.Clone(), dbR = (float[])db.Clone();
            RmsNorm.Forward(x, gamma, y, rstd, n, c, 1e-5f, width);
            RmsNorm.Backward(dy, x, gamma, rstd, dx, dg, n, c, width);
            RmsNormReference.Forward(x, gamma, yR, rstdR, n, c, 1e-5f);
            RmsNormReference.Backward(dy, x, gamma, rstdR, dxR, dgR, n, c);
            AssertClose(yR, y, 1e-5, 1e-6, "rms y");
            AssertClose(rstdR, rstd, 1e-5, 1e-6, "rms rstd");
            AssertClose(dxR, dx, 1e-4, 1e-5, "rms dx");
            AssertClose(dgR, dg, 1e-4, 1e-4, "rms dgamma");

            LayerNorm.Forward(x, gamma, beta, y, mean, rstd, n, c, 1e-5f, width);
            LayerNorm.Backward(dy, x, gamma, mean, rstd, dx, dg, db, n, c, width);
            LayerNormReference.Forward(x, gamma, beta, yR, meanR, rstdR, n, c, 1e-5f);
            LayerNormReference.Backward(dy, x, gamma, meanR, rstdR, dxR, dgR, dbR, n, c);
            AssertClose(yR, y, 1e-5, 1e-5, "ln y");
            AssertClose(meanR, mean, 1e-5, 1e-6, "ln mean");
            AssertClose(dxR, dx, 1e-4, 1e-5, "ln dx");
            AssertClose(dgR, dg, 1e-4, 1e-4, "ln dgamma");
            AssertClose(dbR, db, 1e-4, 1e-4, "ln dbeta");
        }
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void Softmax_and_cross_entropy_match_reference(string name)
    {
        var width = Enum.Parse<KernelWidth>(name);
        const int n = 6, v = 53;
        var rnd = new Random(3);
        float[] x = Random(rnd, n * v, 9f), dy = Random(rnd, n * v);
        float[] y = new float[n * v], yR = new float[n * v], dx = Random(rnd, n * v), dxR = (float[])dx.Clone();
        Softmax.Forward(x, y, n, v, width);
        Softmax.Backward(y, dy, dx, n, v, width);
        SoftmaxReference.Forward(x, yR, n, v);
        SoftmaxReference.Backward(yR, dy, dxR, n, v);
        AssertClose(yR, y, 1e-5, 1e-7, "softmax y");
        AssertClose(dxR, dx, 1e-5, 1e-6, "softmax dx");

        int[] targets = [0, 52, -1, 7, 31, 8];
        float[] lse = new float[n], lseR = new float[n], d = new float[n * v], dR = new float[n * v];
        double loss = CrossEntropy.Forward(x, targets, lse, n, v, width);
        double lossR = CrossEntropyReference.Forward(x, targets, lseR, n, v);
        CrossEntropy.Backward(x, targets, lse, 0.2f, d, n, v, width);
        CrossEntropyReference.Backward(x, targets, lseR, 0.2f, dR, n, v);
        AssertClose(lossR, loss, 1e-6, 1e-6, "loss");
        AssertClose(lseR, lse, 1e-6, 1e-6, "lse");
        AssertClose(dR, d, 1e-5, 1e-7, "dlogits");
        Assert.All(d.AsSpan(2 * v, v).ToArray(), g => Assert.Equal(0f, g));
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void Activations_match_reference(string name)
    {
        var width = Enum.Parse<KernelWidth>(name);
        const int len = 1051;  // two Block-sized blocks and a ragged tail
        var rnd = new Random(4);
        float[] x = Random(rnd, len, 12f), u = Random(rnd, len, 2f), dy = Random(rnd, len);
        float[] y = new float[len], yR = new float[len], dx = Random(rnd, len), dxR = (float[])dx.Clone();
        Gelu.Forward(x, y, width);
        Gelu.Backward(x, dy, dx, width);
        GeluReference.Forward(x, yR);
        GeluReference.Backward(x, dy, dxR);
        AssertClose(yR, y, 1e-5, 1e-6, "gelu y");
        AssertClose(dxR, dx, 1e-5, 5e-6, "gelu dx");

        Silu.Forward(x, y, width);
        Silu.Backward(x, dy, dx, width);
        SiluReference.Forward(x, yR);
        SiluReference.Backward(x, dy, dxR);
        AssertClose(yR, y, 1e-5, 1e-6, "silu y");
        AssertClose(dxR, dx, 1e-5, 5e-6, "silu dx");

        float[] du = Random(rnd, len), duR = (float[])du.Clone();
        SwiGlu.Forward(x, u, y, width);
        SwiGlu.Backward(x, u, dy, dx, du, width);
        SwiGluReference.Forward(x, u, yR);
        SwiGluReference.Backward(x, u, dy, dxR, duR);
        AssertClose(yR, y, 1e-5, 1e-6, "swiglu y");
        AssertClose(dxR, dx, 1e-5, 5e-6, "swiglu dgate");
        AssertClose(duR, du, 1e-5, 1e-6, "swiglu dup");
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void AdamW_matches_reference_bitwise(string name)
    {
        var width = Enum.Parse<KernelWidth>(name);
        const int len = 2053;
        var rnd = new Random(5);
        float[] p = Random(rnd, len), m = Random(rnd, len, 0.1f), v = Random(rnd, len, 0.01f, 0.01f);
        float[] pR = (float[])p.Clone(), mR = (float[])m.Clone(), vR = (float[])v.Clone();
        for (int step = 1; step <= 3; step++)
        {
            float[] g = Random(rnd, len);
            AdamW.Step(p, g, m, v, 3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, step, 0.7f, width);
            AdamWReference.Step(pR, g, mR, vR, 3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, step, 0.7f);
        }
        Assert.Equal(pR, p);
        Assert.Equal(mR, m);
        Assert.Equal(vR, v);
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void Rope_and_residual_adds_match_reference(string name)
    {
        var width = Enum.Parse<KernelWidth>(name);
        const int B = 2, T = 7, H = 3, D = 38, rotary = 34, rowStride = H * D + 6;
        float[] cos = new float[20 * rotary / 2], sin = new float[cos.Length];
        Rope.Tables(20, rotary, 10000, cos, sin);
        var rnd = new Random(6);
        foreach (var style in new[] { RopeStyle.Half, RopeStyle.Interleaved })
        {
            foreach (bool inverse in new[] { false, true })
            {
                float[] x = Random(rnd, B * T * rowStride), xR = (float[])x.Clone(), xS = (float[])x.Clone();
                Rope.Apply(x, B, T, H, D, rowStride, rotary, 4, cos, sin, style, inverse, width);
                RopeReference.Apply(xR, B, T, H, D, rowStride, rotary, 4, cos, sin, style, inverse);
                AssertClose(xR, x, 1e-6, 1e-7, $"rope {style}");
                // every width rounds as the scalar loop does, bit for bit
                Rope.Apply(xS, B, T, H, D, rowStride, rotary, 4, cos, sin, style, inverse, KernelWidth.Scalar);
                Assert.Equal(xS, x);
            }
        }

        const int n = 5, c = 301;
        float[] a = Random(rnd, n * c), b = Random(rnd, n * c), bias = Random(rnd, c);
        float[] y = new float[n * c], yR = new float[n * c];
        Elementwise.Add(a, b, y, width);
        ElementwiseReference.Add(a, b, yR);
        Elementwise.AddInPlace(y, a, width);
        ElementwiseReference.AddInPlace(yR, a);
        Elementwise.AddBiasRows(y, bias, n, c, width);
        ElementwiseReference.AddBiasRows(yR, bias, n, c);
        Elementwise.Scale(y, 0.3f, width);
        ElementwiseReference.Scale(yR, 0.3f);
        Assert.Equal(yR, y);  // one rounding per element in both: bit for bit
        float[] s = Random(rnd, c), sR = (float[])s.Clone();
        Elementwise.SumRows(a, s, n, c, width);
        ElementwiseReference.SumRows(a, sR, n, c);
        AssertClose(sR, s, 1e-6, 1e-6, "sum rows");
        AssertClose(ElementwiseReference.SumOfSquares(a), Elementwise.SumOfSquares(a, width), 1e-12, 0, "sum of squares");
    }
}
