// Tensors over memory they do not own, and frozen weights of any element type in LinearOp: a quantized (Q8_0,
// Q4_0) or half (F16) weight viewed in place gives the same output and the same input gradient as its dequantized
// f32 copy, the input gradient passes a finite-difference check, and asking to train such a weight is refused.
// Frozen norm scales and biases (a base under a LoRA adapter) get no gradient buffer while the input's gradient
// stays exact.
using Quill.Autograd;
using Quill.Autograd.Ops;
using Quill.Quantization;
using Quill.Tensors;

namespace Quill.Tests.Autograd;

public sealed class FrozenWeightTests
{
    private static float[] Random(int n, ulong seed, double std = 1.0)
    {
        var v = new float[n];
        new Rng(seed).FillNormal(v, std);
        return v;
    }

    [Theory]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_0)]
    [InlineData(GgmlType.F16)]
    public void A_frozen_block_typed_weight_runs_and_backpropagates_like_its_dequantized_copy(GgmlType type)
    {
        const int n = 16, inF = 64, outF = 48; // n > WeightMatrix.SmallM: the GEMM path, exact up to summation order
        var wq = WeightMatrix.Quantize("w", Random(outF * inF, 1, 0.1), outF, inF, type);
        var frozen = wq.AsTensor();
        frozen.Name = "w";
        Assert.Equal(type, frozen.DType);
        Assert.False(frozen.RequiresGrad);
        var dense = Tensor.FromArray(wq.ToFloats(), outF, inF);
        var bias = Tensor.FromArray(Random(outF, 2), outF);
        float[] xv = Random(n * inF, 3);
        int[] targets = [.. Enumerable.Range(0, n).Select(i => (i * 7) % outF)];

        (float[] Y, float[] Dx, float Loss) Run(Tensor w)
        {
            var g = new Graph();
            var x = Tensor.FromArray(xv, n, inF);
            x.RequiresGrad = true;
            var y = LinearOp.Forward(g, x, w, bias);
            var loss = CrossEntropyOp.Forward(g, y, targets);
            float l = loss.Item();
            var yv = y.ToArray();
            g.Backward(loss);
            return (yv, x.Grad!.ToArray(), l);
        }

        var q = Run(frozen);
        var d = Run(dense);
        for (int i = 0; i < q.Y.Length; i++) Assert.True(Math.Abs(q.Y[i] - d.Y[i]) <= 1e-5f * (1 + Math.Abs(d.Y[i])), $"y[{i}] {q.Y[i]} vs {d.Y[i]}");
        for (int i = 0; i < q.Dx.Length; i++) Assert.True(Math.Abs(q.Dx[i] - d.Dx[i]) <= 1e-6f + 1e-5f * Math.Abs(d.Dx[i]), $"dx[{i}] {q.Dx[i]} vs {d.Dx[i]}");

        // finite differences on a few inputs through the quantized weight
        double LossAt(int i, float delta)
        {
            var g = new Graph(recording: false);
            var xs = (float[])xv.Clone();
            xs[i] += delta;
            return CrossEntropyOp.Forward(g, LinearOp.Forward(g, Tensor.FromArray(xs, n, inF), frozen, bias), targets).Item();
        }
        foreach (int i in new[] { 0, 77, 500, n * inF - 1 })
        {
            double fd = (LossAt(i, 1e-2f) - LossAt(i, -1e-2f)) / 2e-2;
            Assert.True(Math.Abs(fd - q.Dx[i]) <= 2e-3 + 2e-2 * Math.Abs(fd), $"dx[{i}]: analytic {q.Dx[i]} vs finite difference {fd}");
        }
    }

    [Fact]
    public void Training_a_block_typed_weight_is_refused()
    {
        var w = WeightMatrix.Quantize("w", Random(32 * 32, 4), 32, 32, GgmlType.Q8_0).AsTensor();
        w.RequiresGrad = true;
        var e = Assert.Throws<InvalidOperationException>(() => LinearOp.Forward(new Graph(), Tensor.FromArray(Random(2 * 32, 5), 2, 32), w, null));
        Assert.Contains("can only be frozen", e.Message);
    }

    [Fact]
    public unsafe void A_tensor_views_foreign_memory_without_copying()
    {
        float[] data = GC.AllocateArray<float>(12, pinned: true);
        for (int i = 0; i < 12; i++) data[i] = i;
        var t = Tensor.FromMemory((nint)System.Runtime.CompilerServices.Unsafe.AsPointer(ref data[0]), GgmlType.F32, [3, 4], data);
        Assert.True(t.IsForeign);
        Assert.Equal(6f, t[1, 2]);
        data[6] = 42f;
        Assert.Equal(42f, t.Span[6]); // a view, not a copy
        Assert.Equal([8f, 9f, 10f, 11f], t.Narrow(0, 2, 1).ToArray());
        Assert.Throws<InvalidOperationException>(() => t.Memory);

        var q = WeightMatrix.Quantize("q", Random(4 * 64, 6), 4, 64, GgmlType.Q8_0);
        var qt = q.AsTensor();
        Assert.Throws<InvalidOperationException>(() => qt.Span.Length);
        Assert.Equal(q.ToFloats().AsSpan(128, 64).ToArray(), qt.Narrow(0, 2, 1).ToArray()); // whole rows of blocks
        Assert.Throws<InvalidOperationException>(() => qt.Narrow(1, 0, 32));
        Assert.Equal(q.ToFloats(), WeightMatrix.View(qt).ToFloats());
    }

    [Fact]
    public void Frozen_norm_scales_get_no_gradient_buffer_and_the_input_gradient_stays_exact()
    {
        var rng = new Rng(31);
        var x = GradCheck.Random(rng, 1, 3, 7);
        x.Name = "x";
        var gamma = GradCheck.Random(rng, 1, 7);
        var beta = GradCheck.Random(rng, 1, 7);
        gamma.RequiresGrad = false;
        beta.RequiresGrad = false;
        GradCheck.Check(g => LayerNormOp.Forward(g, x, gamma, beta, 1e-5f), [x]);
        GradCheck.Check(g => RmsNormOp.Forward(g, x, gamma, 1e-5f), [x]);
        Assert.Null(gamma.Grad);
        Assert.Null(beta.Grad);

        // and a frozen input with a trainable scale: the scale's gradient only
        var frozenX = GradCheck.Random(rng, 1, 3, 7);
        frozenX.RequiresGrad = false;
        var trained = GradCheck.Random(rng, 1, 7);
        trained.Name = "gamma";
        GradCheck.Check(g => RmsNormOp.Forward(g, frozenX, trained, 1e-5f), [trained]);
        Assert.Null(frozenX.Grad);
    }
}
