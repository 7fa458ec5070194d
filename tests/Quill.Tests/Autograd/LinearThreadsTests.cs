// LinearOp on enough rows that its bias fill (forward) and bias gradient (backward) split across threads: the results
// match a double-precision reference and are the same bit for bit on one and two threads.
using Quill.Autograd;
using Quill.Autograd.Ops;
using Quill.Kernels;
using Quill.Tensors;
using Quill.Tests.Kernels;

namespace Quill.Tests.Autograd;

[Collection(KernelThreadsCollection.Name)]
public class LinearThreadsTests
{
    private const int N = 4100, In = 8, Out1 = 40, Out2 = 27, Out = Out1 + Out2;

    [Fact]
    public void Bias_rows_and_bias_gradient_split_across_threads_match_the_reference_and_one_thread()
    {
        var rnd = new Random(5);
        float[] xv = KernelTestUtil.Random(rnd, N * In), w1v = KernelTestUtil.Random(rnd, Out1 * In, 0.5f),
            w2v = KernelTestUtil.Random(rnd, Out2 * In, 0.5f), b1v = KernelTestUtil.Random(rnd, Out1),
            b2v = KernelTestUtil.Random(rnd, Out2);
        int[] targets = [.. Enumerable.Range(0, N).Select(i => i * 7 % Out)];

        (float[] Y, float[] Db1, float[] Db2) Run(int threads)
        {
            using var scope = KernelTestUtil.Threads(threads);
            var g = new Graph();
            var x = Tensor.FromArray(xv, N, In);
            var w1 = Tensor.FromArray(w1v, Out1, In);
            var w2 = Tensor.FromArray(w2v, Out2, In);
            var b1 = Tensor.FromArray(b1v, Out1);
            var b2 = Tensor.FromArray(b2v, Out2);
            foreach (var t in new[] { w1, w2, b1, b2 }) t.RequiresGrad = true;
            var y = LinearOp.Forward(g, x, [w1, w2], [b1, b2]);
            var yv = y.ToArray();
            g.Backward(CrossEntropyOp.Forward(g, y, targets));
            return (yv, b1.Grad!.ToArray(), b2.Grad!.ToArray());
        }

        var one = Run(1);
        var two = Run(2);
        Assert.Equal(one.Y, two.Y);
        Assert.Equal(one.Db1, two.Db1);
        Assert.Equal(one.Db2, two.Db2);

        // reference: y = x W^T + b; the bias gradient of the mean cross-entropy is the column sum of (softmax - onehot) / N
        var y = new double[N * Out];
        var db = new double[Out];
        for (int r = 0; r < N; r++)
        {
            for (int o = 0; o < Out; o++)
            {
                bool first = o < Out1;
                double s = first ? b1v[o] : b2v[o - Out1];
                for (int i = 0; i < In; i++) s += xv[r * In + i] * (first ? w1v[o * In + i] : w2v[(o - Out1) * In + i]);
                y[r * Out + o] = s;
            }
            double max = Enumerable.Range(0, Out).Max(o => y[r * Out + o]);
            double z = Enumerable.Range(0, Out).Sum(o => Math.Exp(y[r * Out + o] - max));
            for (int o = 0; o < Out; o++) db[o] += (Math.Exp(y[r * Out + o] - max) / z - (o == targets[r] ? 1 : 0)) / N;
        }
        KernelTestUtil.AssertClose(y.Select(v => (float)v).ToArray(), two.Y, 1e-5, 1e-5, "y");
        KernelTestUtil.AssertClose(db.Take(Out1).Select(v => (float)v).ToArray(), two.Db1, 1e-4, 2e-6, "db1");
        KernelTestUtil.AssertClose(db.Skip(Out1).Select(v => (float)v).ToArray(), two.Db2, 1e-4, 2e-6, "db2");
    }
}
