// CrossEntropy: optimized vs reference (ignored rows, 1 and 2 threads, V = 50304), central differences, PyTorch
// fixture (mean over non-ignored rows), out-of-range targets.
using Quill.Kernels;
using static Quill.Tests.Kernels.KernelTestUtil;

namespace Quill.Tests.Kernels;

[Collection(KernelThreadsCollection.Name)]
public class CrossEntropyTests
{
    [Theory]
    [InlineData(1, 3, 1)]
    [InlineData(1, 7, 29)]
    [InlineData(2, 5, 50304)]
    [InlineData(1, 40, 2001)]
    [InlineData(2, 40, 2001)]
    public void Matches_reference(int threads, int n, int v)
    {
        var rnd = new Random(n + v);
        float[] logits = Random(rnd, n * v, 8f);
        int[] targets = Enumerable.Range(0, n).Select(i => i % 4 == 2 ? -1 : rnd.Next(v)).ToArray();
        float[] lse = new float[n], lseR = new float[n], d = Random(rnd, n * v), dR = new float[n * v];
        double loss;
        using (Threads(threads))
        {
            loss = CrossEntropy.Forward(logits, targets, lse, n, v);
            CrossEntropy.Backward(logits, targets, lse, 0.25f, d, n, v);
        }
        double lossR = CrossEntropyReference.Forward(logits, targets, lseR, n, v);
        CrossEntropyReference.Backward(logits, targets, lseR, 0.25f, dR, n, v);
        AssertClose(lossR, loss, 1e-6, 1e-6, "loss");
        AssertClose(lseR, lse, 1e-6, 1e-6, "lse");
        AssertClose(dR, d, 1e-5, 1e-9, "dlogits");
        for (int i = 0; i < n; i++)
        {
            if (targets[i] < 0) Assert.All(d.AsSpan(i * v, v).ToArray(), g => Assert.Equal(0f, g));
        }
    }

    [Fact]
    public void Backward_matches_finite_differences()
    {
        int n = 3, v = 17;
        var rnd = new Random(8);
        float[] logits = Random(rnd, n * v, 3f);
        int[] targets = [5, -1, 16];
        double Loss() => CrossEntropy.Forward(logits, targets, new float[n], n, v);
        var d = new float[n * v];
        var lse = new float[n];
        CrossEntropy.Forward(logits, targets, lse, n, v);
        CrossEntropy.Backward(logits, targets, lse, 1f, d, n, v);
        const float h = 1e-2f;
        for (int i = 0; i < logits.Length; i++)
        {
            float x = logits[i];
            logits[i] = x + h;
            double lp = Loss();
            logits[i] = x - h;
            double lm = Loss();
            logits[i] = x;
            AssertClose((lp - lm) / (2 * h), d[i], 2e-2, 1e-3, $"dlogits[{i}]");
        }
    }

    [Fact]
    public void Matches_pytorch_mean_loss()
    {
        var f = KernelFixtures.Get("cross_entropy");
        int n = f.Int("n"), v = f.Int("v");
        float[] logits = f.Floats("logits"), lse = new float[n], d = new float[n * v];
        int[] targets = f.Ints("targets");
        int count = targets.Count(t => t >= 0);
        double sum = CrossEntropy.Forward(logits, targets, lse, n, v);
        CrossEntropy.Backward(logits, targets, lse, 1f / count, d, n, v);
        AssertClose(f.Double("loss"), sum / count, 1e-5, 1e-6, "loss");
        AssertClose(f.Floats("dlogits"), d, 1e-4, 1e-5, "dlogits");
    }

    [Fact]
    public void Targets_beyond_the_vocabulary_throw_quill_exception()
    {
        float[] logits = new float[3 * 5], lse = new float[3];
        int[] targets = [0, 5, 1];
        var e = Assert.Throws<QuillException>(() => CrossEntropy.Forward(logits, targets, lse, 3, 5));
        Assert.Contains("token id 5 at position 1", e.Message, StringComparison.Ordinal);
        Assert.Contains("5 tokens", e.Message, StringComparison.Ordinal);
        Assert.Throws<QuillException>(() => CrossEntropy.Backward(logits, targets, lse, 1f, new float[15], 3, 5));
    }
}
