// Dropout: optimized vs reference mask (bitwise), thread-count independence, drop rate, backward reuses the mask,
// p = 0 and p = 1 edges, bad p.
using Quill.Kernels;
using static Quill.Tests.Kernels.KernelTestUtil;

namespace Quill.Tests.Kernels;

[Collection(KernelThreadsCollection.Name)]
public class DropoutTests
{
    [Theory]
    [InlineData(1, 37, 0.1f)]
    [InlineData(1, 100003, 0.3f)]
    [InlineData(2, 100003, 0.3f)]
    [InlineData(2, 70000, 0.9f)]
    public void Matches_reference_bitwise(int threads, int len, float p)
    {
        var rnd = new Random(len);
        float[] x = Random(rnd, len, 1f, 2f), y = new float[len], yr = new float[len];
        float[] dy = Random(rnd, len), dx = Random(rnd, len), dxR = (float[])dx.Clone();
        using (Threads(threads))
        {
            Dropout.Forward(x, y, 42UL, p);
            Dropout.Backward(dy, dx, 42UL, p);
        }
        DropoutReference.Forward(x, yr, 42UL, p);
        DropoutReference.Backward(dy, dxR, 42UL, p);
        Assert.Equal(yr, y);
        Assert.Equal(dxR, dx);
    }

    [Fact]
    public void Drops_about_p_and_backward_uses_the_same_mask()
    {
        int len = 200000;
        float p = 0.25f;
        float[] x = Enumerable.Repeat(1f, len).ToArray(), y = new float[len], dx = new float[len];
        Dropout.Forward(x, y, 7UL, p);
        Dropout.Backward(x, dx, 7UL, p);
        Assert.Equal(y, dx);
        int dropped = y.Count(v => v == 0f);
        Assert.InRange(dropped / (double)len, p - 0.01, p + 0.01);
        Assert.All(y.Where(v => v != 0f), v => Assert.Equal(1f / (1f - p), v));
        var other = new float[len];
        Dropout.Forward(x, other, 8UL, p);
        Assert.NotEqual(y, other);
    }

    [Fact]
    public void Edge_probabilities()
    {
        float[] x = Random(new Random(1), 50, 1f, 3f), y = new float[50], dx = Enumerable.Repeat(1f, 50).ToArray();
        Dropout.Forward(x, y, 3UL, 0f);
        Assert.Equal(x, y);
        Dropout.Forward(x, y, 3UL, 1f);
        Assert.All(y, v => Assert.Equal(0f, v));
        Dropout.Backward(x, dx, 3UL, 1f);
        Assert.All(dx, v => Assert.Equal(1f, v));
        Assert.Throws<InvalidConfigException>(() => Dropout.Forward(x, y, 3UL, 1.5f));
        Assert.Throws<InvalidConfigException>(() => Dropout.Forward(x, y, 3UL, float.NaN));
    }
}
