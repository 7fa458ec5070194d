// Finite-difference checks of LowRankAddOp as the LoRA models use it: on top of a LinearOp output, into one column
// block of a fused q|k|v buffer or over a whole output, with the base weight frozen or not, with and without
// dropout; and the forward against a plain loop.
using Quill.Autograd;
using Quill.Autograd.Ops;
using Quill.Tensors;

namespace Quill.Tests.Autograd;

public class LowRankAddOpTests
{
    private readonly Rng rng = new(23);

    private Tensor Named(string name, double std, params int[] shape)
    {
        var t = GradCheck.Random(rng, std, shape);
        t.Name = name;
        return t;
    }

    [Theory]
    [InlineData(0, false)]  // the q block of q|k|v, base weights trained too
    [InlineData(4, true)]   // the k block, frozen base (the LoRA case)
    [InlineData(7, true)]   // the v block
    public void Gradients_into_a_column_block_of_a_fused_output(int column, bool frozenBase)
    {
        var x = Named("x", 1, 2, 3, 5);
        var wq = Named("wq", 0.5, 4, 5);
        var wk = Named("wk", 0.5, 3, 5);
        var wv = Named("wv", 0.5, 3, 5);
        int outF = column switch { 0 => 4, 4 => 3, _ => 3 };
        var a = Named("A", 0.5, 2, 5);
        var b = Named("B", 0.5, outF, 2);
        Tensor[] inputs = frozenBase ? [x, a, b] : [x, wq, wk, wv, a, b];
        if (frozenBase)
        {
            foreach (var w in new[] { wq, wk, wv }) w.RequiresGrad = false;
        }
        GradCheck.Check(g =>
        {
            var y = LinearOp.Forward(g, x, [wq, wk, wv], null);
            LowRankAddOp.Forward(g, y, column, x, a, b, 1.7f);
            return y;
        }, inputs);
    }

    [Fact]
    public void Gradients_when_only_the_adapter_trains()
    {
        // frozen input and weight: LinearOp records nothing and the op alone makes y trainable
        var x = Named("x", 1, 6, 5);
        x.RequiresGrad = false;
        var w = Named("w", 0.5, 4, 5);
        w.RequiresGrad = false;
        var a = Named("A", 0.5, 3, 5);
        var b = Named("B", 0.5, 4, 3);
        GradCheck.Check(g =>
        {
            var y = LinearOp.Forward(g, x, w, null);
            LowRankAddOp.Forward(g, y, 0, x, a, b, 0.5f);
            return y;
        }, [a, b]);
    }

    [Fact]
    public void Gradients_with_dropout_follow_the_seeded_mask()
    {
        var x = Named("x", 1, 4, 6);
        var w = Named("w", 0.5, 5, 6);
        w.RequiresGrad = false;
        var a = Named("A", 0.5, 2, 6);
        var b = Named("B", 0.5, 5, 2);
        GradCheck.Check(g =>
        {
            var y = LinearOp.Forward(g, x, w, null);
            LowRankAddOp.Forward(g, y, 0, x, a, b, 2f, dropout: 0.4f, seed: 77);
            return y;
        }, [x, a, b], recordForward: true);
    }

    [Fact]
    public void Forward_equals_a_plain_loop_and_dropout_is_off_in_inference()
    {
        int n = 3, inF = 4, r = 2, outF = 3, total = 8, column = 2;
        var x = Named("x", 1, n, inF);
        var a = Named("A", 1, r, inF);
        var b = Named("B", 1, outF, r);
        var y = Named("y", 1, n, total);
        float[] before = y.ToArray();
        LowRankAddOp.Forward(new Graph(recording: false), y, column, x, a, b, 0.75f, dropout: 0.5f, seed: 3);
        for (int i = 0; i < n; i++)
        {
            for (int c = 0; c < total; c++)
            {
                double want = before[i * total + c];
                if (c >= column && c < column + outF)
                {
                    for (int k = 0; k < r; k++)
                    {
                        double u = 0;
                        for (int j = 0; j < inF; j++) u += x.Span[i * inF + j] * a.Span[k * inF + j];
                        want += 0.75 * u * b.Span[(c - column) * r + k];
                    }
                }
                Assert.Equal(want, y.Span[i * total + c], 1e-5);
            }
        }
    }

    [Fact]
    public void A_block_that_does_not_fit_is_refused()
    {
        var x = Named("x", 1, 2, 4);
        var a = Named("A", 1, 2, 4);
        var b = Named("B", 1, 3, 2);
        var y = Named("y", 1, 2, 4);
        Assert.Throws<ArgumentException>(() => LowRankAddOp.Forward(new Graph(), y, 2, x, a, b, 1f));
    }
}
