// Finite-difference checking of autograd ops: the scalar L = sum(y * w) for a fixed random w is differentiated by
// the graph and by central differences of the forward pass; they must agree within float tolerance.
using Quill.Autograd;
using Quill.Tensors;

namespace Quill.Tests.Autograd;

internal static class GradCheck
{
    /// <summary>L = sum(y * w): a scalar whose gradient with respect to y is w.</summary>
    public static Tensor WeightedSum(Graph g, Tensor y, float[] w)
    {
        var loss = g.NewTensor([1]);
        double s = 0;
        var ys = y.Span;
        for (int i = 0; i < ys.Length; i++) s += (double)ys[i] * w[i];
        loss.Span[0] = (float)s;
        if (g.Recording && y.RequiresGrad)
        {
            loss.RequiresGrad = true;
            g.Record(new SumNode(y, w, loss));
        }
        return loss;
    }

    private sealed class SumNode(Tensor y, float[] w, Tensor loss) : Node
    {
        public override void Backward(Graph g)
        {
            var dy = g.GradOf(y).Span;
            float seed = loss.Grad!.Span[0];
            for (int i = 0; i < dy.Length; i++) dy[i] += seed * w[i];
        }
    }

    public static Tensor Random(Rng rng, double std, params int[] shape)
    {
        var t = new Tensor(shape) { RequiresGrad = true };
        rng.FillNormal(t.Span, std);
        return t;
    }

    /// <summary>
    /// Checks d(sum(f(inputs) * w))/d(input) for every element of every input (or a sample of maxPerInput). The
    /// differenced forward runs in an inference graph, or in a recording one when recordForward (ops whose training
    /// forward differs, such as dropout with a fixed seed).
    /// </summary>
    public static void Check(Func<Graph, Tensor> forward, Tensor[] inputs, int seed = 5, float eps = 1e-2f, double rtol = 2e-2, double atol = 2e-3, int maxPerInput = 40, bool recordForward = false)
    {
        var rng = new Rng((ulong)seed);
        float[]? w = null;
        double Loss()
        {
            var g = new Graph(recording: recordForward);
            var y = forward(g);
            w ??= MakeW(rng, y.Length);
            double s = 0;
            var ys = y.Span;
            for (int i = 0; i < ys.Length; i++) s += (double)ys[i] * w[i];
            return s;
        }
        Loss();
        foreach (var x in inputs) x.Grad = new Tensor(x.Shape);
        var graph = new Graph();
        var loss = WeightedSum(graph, forward(graph), w!);
        graph.Backward(loss);
        foreach (var x in inputs)
        {
            var data = x.Span;
            var grad = x.Grad!.Span.ToArray();
            int step = Math.Max(1, data.Length / maxPerInput);
            for (int i = 0; i < data.Length; i += step)
            {
                float orig = data[i];
                data[i] = orig + eps;
                double up = Loss();
                data[i] = orig - eps;
                double down = Loss();
                data[i] = orig;
                double numeric = (up - down) / (2 * eps);
                if (!(Math.Abs(numeric - grad[i]) <= atol + rtol * Math.Abs(numeric)))
                    Assert.Fail($"{x.Name}[{i}]: analytic {grad[i]}, numeric {numeric}");
            }
        }
    }

    private static float[] MakeW(Rng rng, int n)
    {
        var w = new float[n];
        rng.FillNormal(w, 1.0);
        return w;
    }
}
