// Elementwise helpers: optimized vs reference (tails, 1 and 2 threads), and SumRows / SumOfSquares independent of
// the thread count.
using Quill.Kernels;
using static Quill.Tests.Kernels.KernelTestUtil;

namespace Quill.Tests.Kernels;

[Collection(KernelThreadsCollection.Name)]
public class ElementwiseTests
{
    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(1, 3, 19)]
    [InlineData(2, 9, 33)]
    [InlineData(1, 600, 131)]
    [InlineData(2, 600, 131)]
    public void Matches_reference(int threads, int n, int c)
    {
        var rnd = new Random(n * c);
        int len = n * c;
        float[] a = Random(rnd, len), b = Random(rnd, len), bias = Random(rnd, c);
        float[] y = new float[len], yr = new float[len];
        float[] acc = Random(rnd, len), accR = (float[])acc.Clone();
        float[] db = Random(rnd, c), dbR = (float[])db.Clone();
        double sq;
        using (Threads(threads))
        {
            Elementwise.Add(a, b, y);
            Elementwise.AddInPlace(acc, a);
            Elementwise.Scale(acc, 0.37f);
            Elementwise.AddBiasRows(acc, bias, n, c);
            Elementwise.SumRows(b, db, n, c);
            sq = Elementwise.SumOfSquares(a);
        }
        ElementwiseReference.Add(a, b, yr);
        ElementwiseReference.AddInPlace(accR, a);
        ElementwiseReference.Scale(accR, 0.37f);
        ElementwiseReference.AddBiasRows(accR, bias, n, c);
        ElementwiseReference.SumRows(b, dbR, n, c);
        double sqR = ElementwiseReference.SumOfSquares(a);
        Assert.Equal(yr, y);
        Assert.Equal(accR, acc);
        AssertClose(dbR, db, 1e-5, 1e-5, "dbias");
        AssertClose(sqR, sq, 1e-12, 0, "sum of squares");
    }

    [Fact]
    public void Reductions_do_not_depend_on_thread_count()
    {
        var rnd = new Random(99);
        int n = 900, c = 300;
        float[] x = Random(rnd, 300001, 5f), dy = Random(rnd, n * c);
        (double, float[]) Run(int threads)
        {
            var db = new float[c];
            using (Threads(threads))
            {
                Elementwise.SumRows(dy, db, n, c);
                return (Elementwise.SumOfSquares(x), db);
            }
        }
        var (s1, d1) = Run(1);
        var (s2, d2) = Run(2);
        Assert.Equal(s1, s2);
        Assert.Equal(d1, d2);
    }
}
