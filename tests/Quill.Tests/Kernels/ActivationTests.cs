// Gelu (tanh), Silu and SwiGlu: optimized vs reference (1 and 2 threads, tails), central differences, PyTorch fixtures.
using Quill.Kernels;
using static Quill.Tests.Kernels.KernelTestUtil;

namespace Quill.Tests.Kernels;

[Collection(KernelThreadsCollection.Name)]
public class ActivationTests
{
    public static TheoryData<int, int> Sizes => new() { { 1, 1 }, { 1, 15 }, { 1, 33 }, { 2, 1001 }, { 1, 70001 }, { 2, 70001 } };

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Gelu_matches_reference(int threads, int len)
    {
        var rnd = new Random(len);
        float[] x = Random(rnd, len, 9f), dy = Random(rnd, len), y = new float[len], yr = new float[len];
        float[] dx = Random(rnd, len), dxR = (float[])dx.Clone();
        using (Threads(threads))
        {
            Gelu.Forward(x, y);
            Gelu.Backward(x, dy, dx);
        }
        GeluReference.Forward(x, yr);
        GeluReference.Backward(x, dy, dxR);
        AssertClose(yr, y, 1e-5, 1e-6, "y");
        // The derivative cancels two terms of size ~0.1 near x = -2.5, so its float error is absolute, not relative.
        AssertClose(dxR, dx, 1e-5, 5e-6, "dx");
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Silu_matches_reference(int threads, int len)
    {
        var rnd = new Random(len + 1);
        float[] x = Random(rnd, len, 12f), dy = Random(rnd, len), y = new float[len], yr = new float[len];
        float[] dx = Random(rnd, len), dxR = (float[])dx.Clone();
        using (Threads(threads))
        {
            Silu.Forward(x, y);
            Silu.Backward(x, dy, dx);
        }
        SiluReference.Forward(x, yr);
        SiluReference.Backward(x, dy, dxR);
        AssertClose(yr, y, 1e-5, 1e-6, "y");
        AssertClose(dxR, dx, 1e-5, 1e-6, "dx");
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void SwiGlu_matches_reference(int threads, int len)
    {
        var rnd = new Random(len + 2);
        float[] g = Random(rnd, len, 10f), u = Random(rnd, len, 2f), dy = Random(rnd, len), y = new float[len], yr = new float[len];
        float[] dg = Random(rnd, len), du = Random(rnd, len), dgR = (float[])dg.Clone(), duR = (float[])du.Clone();
        using (Threads(threads))
        {
            SwiGlu.Forward(g, u, y);
            SwiGlu.Backward(g, u, dy, dg, du);
        }
        SwiGluReference.Forward(g, u, yr);
        SwiGluReference.Backward(g, u, dy, dgR, duR);
        AssertClose(yr, y, 1e-5, 1e-6, "y");
        AssertClose(dgR, dg, 1e-5, 1e-6, "dgate");
        AssertClose(duR, du, 1e-5, 1e-6, "dup");
    }

    /// <summary>
    /// The backward that writes its gradient (the op's input had none yet) gives bit for bit what adding into zeros
    /// gives, without reading the buffer (NaN there must not leak), at every vector width the machine runs, tails
    /// included; and the accumulating form still adds.
    /// </summary>
    [Theory]
    [MemberData(nameof(KernelWidthTests.Widths), MemberType = typeof(KernelWidthTests))]
    public void Backwards_that_write_equal_adding_into_zeros(string widthName)
    {
        var width = Enum.Parse<KernelWidth>(widthName);
        foreach (int len in new[] { 1, 37, 70001 })
        {
            var rnd = new Random(len + 3);
            float[] x = Random(rnd, len, 9f), u = Random(rnd, len, 2f), dy = Random(rnd, len);
            float[] added = new float[len], written = new float[len];
            Array.Fill(written, float.NaN);
            Gelu.Backward(x, dy, added, width);
            Gelu.Backward(x, dy, written, width, accumulate: false);
            Assert.True(added.AsSpan().SequenceEqual(written), $"gelu {width}: written differs from added into zeros");
            var twice = (float[])added.Clone();
            Gelu.Backward(x, dy, twice, width, accumulate: true);
            for (int i = 0; i < len; i++) Assert.Equal(MathF.FusedMultiplyAdd(1f, added[i], added[i]), twice[i], 1e-6f + 1e-6f * Math.Abs(twice[i]));

            float[] dgAdded = new float[len], duAdded = new float[len], dgWritten = new float[len], duWritten = new float[len];
            Array.Fill(dgWritten, float.NaN);
            Array.Fill(duWritten, float.NaN);
            SwiGlu.Backward(x, u, dy, dgAdded, duAdded, width);
            SwiGlu.Backward(x, u, dy, dgWritten, duWritten, width, accumulateGate: false, accumulateUp: false);
            Assert.True(dgAdded.AsSpan().SequenceEqual(dgWritten), $"swiglu {width}: dgate written differs");
            Assert.True(duAdded.AsSpan().SequenceEqual(duWritten), $"swiglu {width}: dup written differs");
            // one written, the other added to
            var dgMixed = (float[])dgAdded.Clone();
            Array.Fill(duWritten, float.NaN);
            SwiGlu.Backward(x, u, dy, dgMixed, duWritten, width, accumulateGate: true, accumulateUp: false);
            Assert.True(duAdded.AsSpan().SequenceEqual(duWritten), $"swiglu {width}: dup written beside an added dgate differs");
            for (int i = 0; i < len; i++) Assert.Equal(2 * dgAdded[i], dgMixed[i], 1e-6f + 1e-6f * Math.Abs(dgMixed[i]));
        }
    }

    [Fact]
    public void Extreme_inputs_stay_finite()
    {
        float[] x = [-1e4f, -200f, -88f, -87.5f, 87.5f, 88.5f, 200f, 1e4f, 0f, -0f, 1e-30f, -1e-30f, 3f, -3f, 50f, -50f, 100f];
        float[] y = new float[x.Length], dx = new float[x.Length], dy = Enumerable.Repeat(1f, x.Length).ToArray();
        float[] yr = new float[x.Length], dxR = new float[x.Length];
        Gelu.Forward(x, y);
        Gelu.Backward(x, dy, dx);
        GeluReference.Forward(x, yr);
        GeluReference.Backward(x, dy, dxR);
        AssertClose(yr, y, 1e-6, 1e-6, "gelu y");
        AssertClose(dxR, dx, 1e-6, 1e-6, "gelu dx");
        Array.Clear(dx);
        Array.Clear(dxR);
        Silu.Forward(x, y);
        Silu.Backward(x, dy, dx);
        SiluReference.Forward(x, yr);
        SiluReference.Backward(x, dy, dxR);
        AssertClose(yr, y, 1e-6, 1e-6, "silu y");
        AssertClose(dxR, dx, 1e-6, 1e-6, "silu dx");
    }

    [Fact]
    public void Backwards_match_finite_differences()
    {
        var rnd = new Random(21);
        int len = 37;
        float[] x = Random(rnd, len, 4f), u = Random(rnd, len, 2f), w = Random(rnd, len);
        float[] Run(Action<float[]> forward)
        {
            var y = new float[len];
            forward(y);
            return y;
        }
        var dx = new float[len];
        Gelu.Backward(x, w, dx);
        CheckGradient(x, () => Run(y => Gelu.Forward(x, y)), w, dx, "gelu dx", h: 1e-3f);
        dx = new float[len];
        Silu.Backward(x, w, dx);
        CheckGradient(x, () => Run(y => Silu.Forward(x, y)), w, dx, "silu dx", h: 1e-3f);
        float[] dg = new float[len], du = new float[len];
        SwiGlu.Backward(x, u, w, dg, du);
        CheckGradient(x, () => Run(y => SwiGlu.Forward(x, u, y)), w, dg, "swiglu dgate", h: 1e-3f);
        CheckGradient(u, () => Run(y => SwiGlu.Forward(x, u, y)), w, du, "swiglu dup", h: 1e-3f);
    }

    [Theory]
    [InlineData("gelu")]
    [InlineData("silu")]
    public void Unary_matches_pytorch(string name)
    {
        var f = KernelFixtures.Get(name);
        float[] x = f.Floats("x"), y = new float[x.Length], dx = new float[x.Length];
        if (name == "gelu")
        {
            Gelu.Forward(x, y);
            Gelu.Backward(x, f.Floats("dy"), dx);
        }
        else
        {
            Silu.Forward(x, y);
            Silu.Backward(x, f.Floats("dy"), dx);
        }
        AssertClose(f.Floats("y"), y, 1e-4, 1e-5, "y");
        AssertClose(f.Floats("dx"), dx, 1e-4, 1e-5, "dx");
    }

    [Fact]
    public void SwiGlu_matches_pytorch()
    {
        var f = KernelFixtures.Get("swiglu");
        float[] g = f.Floats("gate"), u = f.Floats("up"), y = new float[g.Length], dg = new float[g.Length], du = new float[g.Length];
        SwiGlu.Forward(g, u, y);
        SwiGlu.Backward(g, u, f.Floats("dy"), dg, du);
        AssertClose(f.Floats("y"), y, 1e-4, 1e-5, "y");
        AssertClose(f.Floats("dgate"), dg, 1e-4, 1e-5, "dgate");
        AssertClose(f.Floats("dup"), du, 1e-4, 1e-5, "dup");
    }
}
