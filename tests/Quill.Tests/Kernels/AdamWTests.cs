// AdamW: optimized vs reference (bitwise, tails, 1 and 2 threads) and three steps against torch.optim.AdamW, bit for bit
// (foreach=False), including a gradScale step.
using Quill.Kernels;
using static Quill.Tests.Kernels.KernelTestUtil;

namespace Quill.Tests.Kernels;

[Collection(KernelThreadsCollection.Name)]
public class AdamWTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(1, 45)]
    [InlineData(1, 100003)]
    [InlineData(2, 100003)]
    public void Matches_reference_bitwise(int threads, int len)
    {
        var rnd = new Random(len);
        float[] p = Random(rnd, len), m = Random(rnd, len, 0.1f), v = Random(rnd, len, 0.01f, 0.01f);
        float[] pr = (float[])p.Clone(), mr = (float[])m.Clone(), vr = (float[])v.Clone();
        for (int step = 1; step <= 2; step++)
        {
            float[] g = Random(rnd, len);
            using (Threads(threads)) AdamW.Step(p, g, m, v, 3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, step, 0.7f);
            AdamWReference.Step(pr, g, mr, vr, 3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, step, 0.7f);
        }
        Assert.Equal(pr, p);
        Assert.Equal(mr, m);
        Assert.Equal(vr, v);
    }

    [Fact]
    public void Matches_pytorch_three_steps()
    {
        var f = KernelFixtures.Get("adamw");
        float[] p = f.Floats("param0");
        float[] m = new float[p.Length], v = new float[p.Length];
        float lr = (float)f.Double("lr"), b1 = (float)f.Double("beta1"), b2 = (float)f.Double("beta2");
        float eps = (float)f.Double("eps"), wd = (float)f.Double("weightDecay");
        var grads = f.GetProperty("grads").EnumerateArray().ToArray();
        var scales = f.GetProperty("gradScales").EnumerateArray().ToArray();
        var ps = f.GetProperty("params").EnumerateArray().ToArray();
        var ms = f.GetProperty("m").EnumerateArray().ToArray();
        var vs = f.GetProperty("v").EnumerateArray().ToArray();
        for (int s = 0; s < grads.Length; s++)
        {
            float[] g = grads[s].EnumerateArray().Select(e => (float)e.GetDouble()).ToArray();
            AdamW.Step(p, g, m, v, lr, b1, b2, eps, wd, s + 1, (float)scales[s].GetDouble());
            AssertClose(ps[s].EnumerateArray().Select(e => (float)e.GetDouble()).ToArray(), p, 0, 0, $"param after step {s + 1}");
            AssertClose(ms[s].EnumerateArray().Select(e => (float)e.GetDouble()).ToArray(), m, 0, 0, $"m after step {s + 1}");
            AssertClose(vs[s].EnumerateArray().Select(e => (float)e.GetDouble()).ToArray(), v, 0, 0, $"v after step {s + 1}");
        }
    }
}
