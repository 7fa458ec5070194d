// GPT-2: learned token and position embeddings, pre-LayerNorm blocks of causal self-attention (fused qkv) and a
// GELU MLP, a final LayerNorm, and an output head tied to the token embedding (unless tie_embeddings is false).
// Parameter names follow nanoGPT (transformer.h.{i}.attn.c_attn.weight, ...), weights stored [out, in].
// Glossary: B batch, T time, C channels (n_embd), H heads, D head size, V vocab, L layers.
using Quill.Autograd;
using Quill.Autograd.Ops;
using Quill.Tensors;

namespace Quill.Models;

/// <summary>The GPT-2 architecture.</summary>
public sealed class GptModel : LanguageModel
{
    private readonly Tensor wte, wpe, lnfW, lmHead;
    private readonly Tensor? lnfB;
    private readonly Layer[] layers;

    internal GptModel(ModelConfig config) : base(config)
    {
        int c = config.NEmbd, h = config.Hidden;
        bool bias = config.HasBias;
        wte = Parameters.Add("transformer.wte.weight", config.VocabSize, c);
        wpe = Parameters.Add("transformer.wpe.weight", config.BlockSize, c);
        layers = new Layer[config.NLayer];
        for (int i = 0; i < config.NLayer; i++)
        {
            string p = $"transformer.h.{i}.";
            layers[i] = new Layer(
                Parameters.Add(p + "ln_1.weight", c), bias ? Parameters.Add(p + "ln_1.bias", c) : null,
                Parameters.Add(p + "attn.c_attn.weight", 3 * c, c), bias ? Parameters.Add(p + "attn.c_attn.bias", 3 * c) : null,
                Parameters.Add(p + "attn.c_proj.weight", c, c), bias ? Parameters.Add(p + "attn.c_proj.bias", c) : null,
                Parameters.Add(p + "ln_2.weight", c), bias ? Parameters.Add(p + "ln_2.bias", c) : null,
                Parameters.Add(p + "mlp.c_fc.weight", h, c), bias ? Parameters.Add(p + "mlp.c_fc.bias", h) : null,
                Parameters.Add(p + "mlp.c_proj.weight", c, h), bias ? Parameters.Add(p + "mlp.c_proj.bias", c) : null);
        }
        lnfW = Parameters.Add("transformer.ln_f.weight", c);
        lnfB = bias ? Parameters.Add("transformer.ln_f.bias", c) : null;
        lmHead = config.Tied ? wte : Parameters.Add("lm_head.weight", config.VocabSize, c);
    }

    public override Tensor Forward(Graph g, int[] tokens, int b, int t, ulong dropoutSeed = 0)
    {
        ArgumentNullException.ThrowIfNull(g);
        CheckInput(tokens, b, t);
        var cfg = Config;
        float eps = cfg.NormEps, p = cfg.Dropout;
        var x = EmbeddingOp.Forward(g, wte, tokens, b, t);              // [B, T, C]
        x = PositionAddOp.Forward(g, x, wpe);
        x = DropoutOp.Forward(g, x, p, Rng.Mix(dropoutSeed, 0));
        for (int i = 0; i < layers.Length; i++)
        {
            var l = layers[i];
            var h = LayerNormOp.Forward(g, x, l.Ln1W, l.Ln1B, eps);
            var qkv = LinearOp.Forward(g, h, l.AttnW, l.AttnB);             // [B, T, 3C]
            var a = AttentionOp.Forward(g, qkv, cfg.NHead, cfg.NHead, cfg.HeadDim, null); // [B, T, C]
            a = LinearOp.Forward(g, a, l.ProjW, l.ProjB);
            a = DropoutOp.Forward(g, a, p, Rng.Mix(dropoutSeed, (ulong)i, 1));
            x = AddOp.Forward(g, x, a);
            h = LayerNormOp.Forward(g, x, l.Ln2W, l.Ln2B, eps);
            h = LinearOp.Forward(g, h, l.FcW, l.FcB);                       // [B, T, 4C]
            h = GeluOp.Forward(g, h);
            h = LinearOp.Forward(g, h, l.Fc2W, l.Fc2B);                     // [B, T, C]
            h = DropoutOp.Forward(g, h, p, Rng.Mix(dropoutSeed, (ulong)i, 2));
            x = AddOp.Forward(g, x, h);
        }
        x = LayerNormOp.Forward(g, x, lnfW, lnfB, eps);
        return LinearOp.Forward(g, x, lmHead, null);                     // [B, T, V]
    }

    private sealed record Layer(Tensor Ln1W, Tensor? Ln1B, Tensor AttnW, Tensor? AttnB, Tensor ProjW, Tensor? ProjB,
        Tensor Ln2W, Tensor? Ln2B, Tensor FcW, Tensor? FcB, Tensor Fc2W, Tensor? Fc2B);
}
