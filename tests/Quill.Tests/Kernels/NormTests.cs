// LayerNorm and RmsNorm: optimized vs reference (1 and 2 threads, odd sizes), central differences, PyTorch fixtures.
using Quill.Kernels;
using static Quill.Tests.Kernels.KernelTestUtil;

namespace Quill.Tests.Kernels;

[Collection(KernelThreadsCollection.Name)]
public class NormTests
{
    [Theory]
    [InlineData(1, 3, 1, true)]
    [InlineData(1, 7, 33, true)]
    [InlineData(2, 5, 17, false)]
    [InlineData(1, 1100, 61, true)]
    [InlineData(2, 1100, 61, true)]
    [InlineData(2, 300, 389, false)]
    public void LayerNorm_matches_reference(int threads, int n, int c, bool bias)
    {
        var rnd = new Random(n * 31 + c);
        float[] x = Random(rnd, n * c, 2f, 0.3f), gamma = Random(rnd, c, 1f, 1f), beta = bias ? Random(rnd, c) : [];
        float[] dy = Random(rnd, n * c);
        float[] y = new float[n * c], mean = new float[n], rstd = new float[n];
        float[] yr = new float[n * c], meanR = new float[n], rstdR = new float[n];
        float[] dx = Random(rnd, n * c), dg = Random(rnd, c), db = bias ? Random(rnd, c) : [];
        float[] dxR = (float[])dx.Clone(), dgR = (float[])dg.Clone(), dbR = (float[])db.Clone();
        using (Threads(threads))
        {
            LayerNorm.Forward(x, gamma, beta, y, mean, rstd, n, c, 1e-5f);
            LayerNorm.Backward(dy, x, gamma, mean, rstd, dx, dg, db, n, c);
        }
        LayerNormReference.Forward(x, gamma, beta, yr, meanR, rstdR, n, c, 1e-5f);
        LayerNormReference.Backward(dy, x, gamma, meanR, rstdR, dxR, dgR, dbR, n, c);
        AssertClose(yr, y, 1e-5, 1e-5, "y");
        AssertClose(meanR, mean, 1e-5, 1e-6, "mean");
        AssertClose(rstdR, rstd, 1e-5, 1e-6, "rstd");
        AssertClose(dxR, dx, 1e-4, 1e-5, "dx");
        AssertClose(dgR, dg, 1e-4, 1e-4, "dgamma");
        AssertClose(dbR, db, 1e-4, 1e-4, "dbeta");
    }

    [Fact]
    public void LayerNorm_results_do_not_depend_on_thread_count()
    {
        int n = 700, c = 200;
        var rnd = new Random(5);
        float[] x = Random(rnd, n * c), gamma = Random(rnd, c), beta = Random(rnd, c), dy = Random(rnd, n * c);
        float[] Run(int threads)
        {
            float[] y = new float[n * c], mean = new float[n], rstd = new float[n], dx = new float[n * c], dg = new float[c], db = new float[c];
            using (Threads(threads))
            {
                LayerNorm.Forward(x, gamma, beta, y, mean, rstd, n, c, 1e-5f);
                LayerNorm.Backward(dy, x, gamma, mean, rstd, dx, dg, db, n, c);
            }
            return [.. y, .. dx, .. dg, .. db];
        }
        Assert.Equal(Run(1), Run(2));
    }

    [Fact]
    public void LayerNorm_backward_matches_finite_differences()
    {
        int n = 3, c = 21;
        var rnd = new Random(11);
        float[] x = Random(rnd, n * c, 1.5f), gamma = Random(rnd, c, 0.5f, 1f), beta = Random(rnd, c), w = Random(rnd, n * c);
        float[] Forward()
        {
            float[] y = new float[n * c];
            LayerNorm.Forward(x, gamma, beta, y, new float[n], new float[n], n, c, 1e-5f);
            return y;
        }
        float[] mean = new float[n], rstd = new float[n], dx = new float[n * c], dg = new float[c], db = new float[c];
        LayerNorm.Forward(x, gamma, beta, new float[n * c], mean, rstd, n, c, 1e-5f);
        LayerNorm.Backward(w, x, gamma, mean, rstd, dx, dg, db, n, c);
        CheckGradient(x, Forward, w, dx, "dx");
        CheckGradient(gamma, Forward, w, dg, "dgamma");
        CheckGradient(beta, Forward, w, db, "dbeta");
    }

    [Fact]
    public void LayerNorm_matches_pytorch()
    {
        var f = KernelFixtures.Get("layer_norm");
        int n = f.Int("n"), c = f.Int("c");
        float[] y = new float[n * c], mean = new float[n], rstd = new float[n], dx = new float[n * c], dg = new float[c], db = new float[c];
        LayerNorm.Forward(f.Floats("x"), f.Floats("gamma"), f.Floats("beta"), y, mean, rstd, n, c, (float)f.Double("eps"));
        LayerNorm.Backward(f.Floats("dy"), f.Floats("x"), f.Floats("gamma"), mean, rstd, dx, dg, db, n, c);
        AssertClose(f.Floats("y"), y, 1e-4, 1e-5, "y");
        AssertClose(f.Floats("mean"), mean, 1e-4, 1e-5, "mean");
        AssertClose(f.Floats("rstd"), rstd, 1e-4, 1e-5, "rstd");
        AssertClose(f.Floats("dx"), dx, 1e-4, 1e-5, "dx");
        AssertClose(f.Floats("dgamma"), dg, 1e-4, 1e-5, "dgamma");
        AssertClose(f.Floats("dbeta"), db, 1e-4, 1e-5, "dbeta");
    }

    [Theory]
    [InlineData(1, 2, 1)]
    [InlineData(1, 9, 47)]
    [InlineData(1, 1100, 61)]
    [InlineData(2, 1100, 61)]
    [InlineData(2, 300, 389)]
    public void RmsNorm_matches_reference(int threads, int n, int c)
    {
        var rnd = new Random(n * 17 + c);
        float[] x = Random(rnd, n * c, 2f), gamma = Random(rnd, c, 1f, 1f), dy = Random(rnd, n * c);
        float[] y = new float[n * c], rstd = new float[n], yr = new float[n * c], rstdR = new float[n];
        float[] dx = Random(rnd, n * c), dg = Random(rnd, c);
        float[] dxR = (float[])dx.Clone(), dgR = (float[])dg.Clone();
        using (Threads(threads))
        {
            RmsNorm.Forward(x, gamma, y, rstd, n, c, 1e-6f);
            RmsNorm.Backward(dy, x, gamma, rstd, dx, dg, n, c);
        }
        RmsNormReference.Forward(x, gamma, yr, rstdR, n, c, 1e-6f);
        RmsNormReference.Backward(dy, x, gamma, rstdR, dxR, dgR, n, c);
        AssertClose(yr, y, 1e-5, 1e-5, "y");
        AssertClose(rstdR, rstd, 1e-5, 1e-6, "rstd");
        AssertClose(dxR, dx, 1e-4, 1e-5, "dx");
        AssertClose(dgR, dg, 1e-4, 1e-4, "dgamma");
    }

    [Fact]
    public void RmsNorm_backward_matches_finite_differences()
    {
        int n = 3, c = 19;
        var rnd = new Random(12);
        float[] x = Random(rnd, n * c, 1.5f), gamma = Random(rnd, c, 0.5f, 1f), w = Random(rnd, n * c);
        float[] Forward()
        {
            float[] y = new float[n * c];
            RmsNorm.Forward(x, gamma, y, new float[n], n, c, 1e-6f);
            return y;
        }
        float[] rstd = new float[n], dx = new float[n * c], dg = new float[c];
        RmsNorm.Forward(x, gamma, new float[n * c], rstd, n, c, 1e-6f);
        RmsNorm.Backward(w, x, gamma, rstd, dx, dg, n, c);
        CheckGradient(x, Forward, w, dx, "dx");
        CheckGradient(gamma, Forward, w, dg, "dgamma");
    }

    [Fact]
    public void RmsNorm_matches_pytorch()
    {
        var f = KernelFixtures.Get("rms_norm");
        int n = f.Int("n"), c = f.Int("c");
        float[] y = new float[n * c], rstd = new float[n], dx = new float[n * c], dg = new float[c];
        RmsNorm.Forward(f.Floats("x"), f.Floats("gamma"), y, rstd, n, c, (float)f.Double("eps"));
        RmsNorm.Backward(f.Floats("dy"), f.Floats("x"), f.Floats("gamma"), rstd, dx, dg, n, c);
        AssertClose(f.Floats("y"), y, 1e-4, 1e-5, "y");
        AssertClose(f.Floats("rstd"), rstd, 1e-4, 1e-5, "rstd");
        AssertClose(f.Floats("dx"), dx, 1e-4, 1e-5, "dx");
        AssertClose(f.Floats("dgamma"), dg, 1e-4, 1e-5, "dgamma");
    }
}
