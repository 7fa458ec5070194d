// Token embedding lookup and GPT-2's learned position embedding, forward and backward side by side. The token
// table may be a frozen tensor of any element type viewing foreign memory (a QLoRA base: a Q4_0 / Q8_0 / F16 GGUF
// table, tied to the head or not): the lookup dequantizes only the B * T rows it reads, so the table is never widened
// to an f32 copy. Only an F32 table can be trained.
// Glossary: B batch, T time, C channels, V vocab.
using Quill.Kernels;
using Quill.Tensors;

namespace Quill.Autograd.Ops;

/// <summary>y [B, T, C] = table[tokens].</summary>
public static class EmbeddingOp
{
    /// <param name="g">The graph.</param>
    /// <param name="table">[V, C] embedding table.</param>
    /// <param name="tokens">[B * T] token ids; an id outside the vocabulary raises QuillException.</param>
    /// <param name="b">Batch size B.</param>
    /// <param name="t">Sequence length T.</param>
    public static Tensor Forward(Graph g, Tensor table, int[] tokens, int b, int t)
    {
        ArgumentNullException.ThrowIfNull(g);
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(tokens);
        int c = table.Dim(1);
        var y = g.NewTensor([b, t, c]);
        if (table.DType == Quantization.GgmlType.F32)
        {
            Embedding.Forward(tokens.AsSpan(0, b * t), table.Span, y.Span, c);
        }
        else
        {
            if (table.RequiresGrad) throw new InvalidOperationException($"embedding {table.Name} is {table.DType}: a table stored in a block or half type can only be frozen.");
            var ids = tokens.AsSpan(0, b * t);
            Embedding.CheckShapes(ids, table.Dim(0) * c, c);
            var rows = WeightMatrix.View(table);
            var ys = y.Span;
            for (int i = 0; i < ids.Length; i++) rows.ReadRow(ids[i], ys.Slice(i * c, c)); // dequantize the rows read
        }
        if (g.NeedsGrad(table))
        {
            y.RequiresGrad = true;
            g.Record(new Node(table, tokens.AsSpan(0, b * t).ToArray(), y), y);
        }
        return y;
    }

    private sealed class Node(Tensor table, int[] tokens, Tensor y) : Autograd.Node
    {
        public override void Backward(Graph g)
        {
            if (y.Grad != null) Embedding.Backward(tokens, y.Grad.Span, g.GradOf(table).Span, table.Dim(1));
        }
    }
}

/// <summary>
/// y [B, T, C] = x + wpe[0..T) (learned absolute positions); with docStarts [B * T] (packed rows) token i of row b
/// takes wpe[i - docStarts[b, i]]: positions restart at each document.
/// </summary>
public static class PositionAddOp
{
    public static Tensor Forward(Graph g, Tensor x, Tensor wpe, int[]? docStarts = null)
    {
        ArgumentNullException.ThrowIfNull(g);
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(wpe);
        int b = x.Dim(0), t = x.Dim(1), c = x.Dim(2);
        if (t > wpe.Dim(0)) throw new InvalidConfigException($"sequence of {t} tokens is longer than the model's context of {wpe.Dim(0)}; shorten the input or raise block_size.");
        if (docStarts != null && docStarts.Length != b * t) throw new ArgumentException($"docStarts holds {docStarts.Length} values, not B * T = {b * t}.", nameof(docStarts));
        var y = g.NewTensor(x.Shape);
        var xs = x.Span;
        var ys = y.Span;
        var table = wpe.Span;
        if (docStarts == null)
        {
            var pos = table.Slice(0, t * c);
            for (int i = 0; i < b; i++) Elementwise.Add(xs.Slice(i * t * c, t * c), pos, ys.Slice(i * t * c, t * c));
        }
        else
        {
            for (int r = 0; r < b * t; r++)
            {
                int p = r % t - docStarts[r];
                Elementwise.Add(xs.Slice(r * c, c), table.Slice(p * c, c), ys.Slice(r * c, c));
            }
        }
        if (g.NeedsGrad(x, wpe))
        {
            y.RequiresGrad = true;
            g.Record(new Node(x, wpe, y, docStarts), y);
        }
        return y;
    }

    private sealed class Node(Tensor x, Tensor wpe, Tensor y, int[]? docStarts) : Autograd.Node
    {
        public override void Backward(Graph g)
        {
            if (y.Grad == null) return;
            var dy = y.Grad.Span;
            if (x.RequiresGrad) g.AccumulateGrad(x, y.Grad, canAlias: true);
            if (!wpe.RequiresGrad) return;
            int b = x.Dim(0), t = x.Dim(1), c = x.Dim(2), tc = t * c;
            if (docStarts == null)
            {
                var dpos = g.GradOf(wpe).Span.Slice(0, tc);
                for (int i = 0; i < b; i++) Elementwise.AddInPlace(dpos, dy.Slice(i * tc, tc));
                return;
            }
            var dtable = g.GradOf(wpe).Span;
            for (int r = 0; r < b * t; r++) Elementwise.AddInPlace(dtable.Slice((r % t - docStarts[r]) * c, c), dy.Slice(r * c, c));
        }
    }
}
