// Softmax: optimized vs reference (1 and 2 threads, odd sizes), central differences, PyTorch fixture.
using Quill.Kernels;
using static Quill.Tests.Kernels.KernelTestUtil;

namespace Quill.Tests.Kernels;

[Collection(KernelThreadsCollection.Name)]
public class SoftmaxTests
{
    [Theory]
    [InlineData(1, 3, 1)]
    [InlineData(1, 5, 37)]
    [InlineData(2, 4, 1000)]
    [InlineData(1, 700, 101)]
    [InlineData(2, 700, 101)]
    public void Matches_reference(int threads, int rows, int cols)
    {
        var rnd = new Random(rows + cols);
        float[] x = Random(rnd, rows * cols, 20f), dy = Random(rnd, rows * cols);
        float[] y = new float[rows * cols], yr = new float[rows * cols];
        float[] dx = Random(rnd, rows * cols), dxR = (float[])dx.Clone();
        using (Threads(threads))
        {
            Softmax.Forward(x, y, rows, cols);
            Softmax.Backward(y, dy, dx, rows, cols);
        }
        SoftmaxReference.Forward(x, yr, rows, cols);
        SoftmaxReference.Backward(yr, dy, dxR, rows, cols);
        AssertClose(yr, y, 1e-5, 1e-7, "y");
        AssertClose(dxR, dx, 1e-4, 1e-6, "dx");
    }

    [Fact]
    public void Backward_matches_finite_differences()
    {
        int rows = 2, cols = 23;
        var rnd = new Random(3);
        float[] x = Random(rnd, rows * cols, 2f), w = Random(rnd, rows * cols);
        float[] Forward()
        {
            var y = new float[rows * cols];
            Softmax.Forward(x, y, rows, cols);
            return y;
        }
        var dx = new float[rows * cols];
        Softmax.Backward(Forward(), w, dx, rows, cols);
        CheckGradient(x, Forward, w, dx, "dx", h: 1e-2f, rel: 2e-2, abs: 5e-4);
    }

    [Fact]
    public void Matches_pytorch()
    {
        var f = KernelFixtures.Get("softmax");
        int rows = f.Int("rows"), cols = f.Int("cols");
        float[] y = new float[rows * cols], dx = new float[rows * cols];
        Softmax.Forward(f.Floats("x"), y, rows, cols);
        Softmax.Backward(y, f.Floats("dy"), dx, rows, cols);
        AssertClose(f.Floats("y"), y, 1e-4, 1e-5, "y");
        AssertClose(f.Floats("dx"), dx, 1e-4, 1e-5, "dx");
    }
}
