// Finite-difference checks of every autograd op as the models use it (shapes, strides, fused buffers, RoPE,
// grouped-query attention, ignored targets), on top of the per-kernel checks.
using Quill.Autograd;
using Quill.Autograd.Ops;
using Quill.Kernels;
using Quill.Tensors;

namespace Quill.Tests.Autograd;

public class OpGradientTests
{
    private readonly Rng rng = new(11);

    [Fact]
    public void Linear_with_several_weights_and_biases()
    {
        var x = GradCheck.Random(rng, 1, 2, 3, 5);
        x.Name = "x";
        var w1 = GradCheck.Random(rng, 0.5, 4, 5);
        var w2 = GradCheck.Random(rng, 0.5, 3, 5);
        var b1 = GradCheck.Random(rng, 0.5, 4);
        var b2 = GradCheck.Random(rng, 0.5, 3);
        (w1.Name, w2.Name, b1.Name, b2.Name) = ("w1", "w2", "b1", "b2");
        GradCheck.Check(g => LinearOp.Forward(g, x, [w1, w2], [b1, b2]), [x, w1, w2, b1, b2]);
    }

    [Fact]
    public void Gather_rows()
    {
        var x = GradCheck.Random(rng, 1, 2, 4, 5);
        x.Name = "x";
        GradCheck.Check(g => GatherRowsOp.Forward(g, x, [6, 1, 2, 7]), [x]);
        Assert.Throws<ArgumentException>(() => GatherRowsOp.Forward(new Graph(), x, [8]));
    }

    [Fact]
    public void Layer_norm_and_rms_norm()
    {
        var x = GradCheck.Random(rng, 1, 3, 7);
        var gamma = GradCheck.Random(rng, 1, 7);
        var beta = GradCheck.Random(rng, 1, 7);
        GradCheck.Check(g => LayerNormOp.Forward(g, x, gamma, beta, 1e-5f), [x, gamma, beta]);
        GradCheck.Check(g => RmsNormOp.Forward(g, x, gamma, 1e-5f), [x, gamma]);
    }

    [Fact]
    public void Add_shares_its_gradient_with_both_inputs_and_a_write_copies_it_apart_first()
    {
        // Both inputs of an add take over its output's gradient. Here h's other reader (gelu(h)) was recorded after
        // the other input's producer (gelu(b)), so its backward adds into h's gradient while gelu(b) has yet to read
        // the shared buffer: the graph must copy it apart first, or gelu(b)'s backward reads h's sum.
        var a = GradCheck.Random(rng, 1, 3, 5);
        var b = GradCheck.Random(rng, 1, 3, 5);
        GradCheck.Check(g =>
        {
            var h = GeluOp.Forward(g, a);          // not a leaf, so the add's gradient becomes its gradient
            var gb = GeluOp.Forward(g, b);
            var gh = GeluOp.Forward(g, h);
            return AddOp.Forward(g, AddOp.Forward(g, h, gb), gh);
        }, [a, b]);
    }

    [Fact]
    public void Gelu_swiglu_add_and_dropout()
    {
        var a = GradCheck.Random(rng, 1, 4, 6);
        var b = GradCheck.Random(rng, 1, 4, 6);
        GradCheck.Check(g => GeluOp.Forward(g, a), [a]);
        GradCheck.Check(g => SwiGluOp.Forward(g, a, b), [a, b]);
        GradCheck.Check(g => AddOp.Forward(g, a, b), [a, b]);
        GradCheck.Check(g => AddOp.Forward(g, a, a), [a]);
        // Dropout is checked through its recorded mask: the forward used by the checker must draw the same mask,
        // so it runs in a recording graph with the same seed.
        var y = DropoutOp.Forward(new Graph(), a, 0.3f, 99);
        int dropped = 0;
        for (int i = 0; i < y.Length; i++) if (y.Span[i] == 0f) dropped++;
        Assert.InRange(dropped, 1, y.Length - 1);
    }

    [Fact]
    public void Embedding_and_positions()
    {
        var table = GradCheck.Random(rng, 1, 9, 4);
        var wpe = GradCheck.Random(rng, 1, 5, 4);
        int[] tokens = [1, 8, 1, 0, 3, 3];
        GradCheck.Check(g => PositionAddOp.Forward(g, EmbeddingOp.Forward(g, table, tokens, 2, 3), wpe), [table, wpe]);
    }

    [Theory]
    [InlineData(4, 4, false)]
    [InlineData(4, 2, true)]
    [InlineData(2, 1, true)]
    public void Attention_with_fused_qkv_gqa_and_rope(int hq, int hkv, bool useRope)
    {
        int d = 4, b = 2, t = 5;
        var qkv = GradCheck.Random(rng, 1, b, t, (hq + 2 * hkv) * d);
        var rope = useRope ? new RopeTables(8, d, 10000, RopeStyle.Half) : null;
        // The op rotates q and k in place, so the checker's forward works on a copy of qkv each time.
        GradCheck.Check(g => AttentionOp.Forward(g, Copy(g, qkv), hq, hkv, d, rope), [qkv]);
    }

    [Fact]
    public void Attention_with_a_window_packed_documents_softcap_and_scale()
    {
        int hq = 2, hkv = 1, d = 4, b = 2, t = 6;
        var qkv = GradCheck.Random(rng, 1, b, t, (hq + 2 * hkv) * d);
        var rope = new RopeTables(8, d, 10000, RopeStyle.Half);
        var mask = AttentionMask.Documents(AttentionMask.StartsFromSegments([0, 0, 0, 0, 1, 1, 0, 1, 1, 1, 1, 1], b, t), b, t, window: 3, softcap: 1.5f);
        GradCheck.Check(g => AttentionOp.Forward(g, Copy(g, qkv), hq, hkv, d, rope, mask, scale: 0.8f), [qkv]);
    }

    [Fact]
    public void Cross_entropy_ignores_negative_targets()
    {
        var logits = GradCheck.Random(rng, 2, 4, 6);
        int[] targets = [2, -1, 5, 0];
        GradCheck.Check(g => CrossEntropyOp.Forward(g, logits, targets), [logits]);
        var g2 = new Graph();
        logits.Grad = null;
        var loss = CrossEntropyOp.Forward(g2, logits, targets);
        g2.Backward(loss);
        for (int j = 0; j < 6; j++) Assert.Equal(0f, logits.Grad!.Span[6 + j]); // the ignored row gets no gradient
    }

    /// <summary>A differentiable copy (identity op) so in-place ops can be re-run on fresh data.</summary>
    private static Tensor Copy(Graph g, Tensor x)
    {
        var zero = g.NewTensor(x.Shape, zero: true);
        return AddOp.Forward(g, x, zero);
    }
}
