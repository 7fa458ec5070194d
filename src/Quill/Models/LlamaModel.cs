// Llama: token embedding, pre-RMSNorm blocks of grouped-query causal self-attention with rotary position
// embedding and a SwiGLU MLP, a final RMSNorm and an untied output head (unless tie_embeddings is true). No biases.
// Parameter names follow Hugging Face (model.layers.{i}.self_attn.q_proj.weight, ...), weights stored [out, in].
// Glossary: B batch, T time, C channels, Hq query heads, Hkv key/value heads, D head size, F MLP hidden, V vocab.
using Quill.Autograd;
using Quill.Autograd.Ops;
using Quill.Tensors;

namespace Quill.Models;

/// <summary>The Llama architecture.</summary>
public sealed class LlamaModel : LanguageModel
{
    private readonly Tensor embed, norm, lmHead;
    private readonly Layer[] layers;
    private readonly RopeTables rope;

    internal LlamaModel(ModelConfig config) : base(config)
    {
        int c = config.NEmbd, f = config.Hidden, kv = config.KvHeads * config.HeadDim;
        embed = Parameters.Add("model.embed_tokens.weight", config.VocabSize, c);
        layers = new Layer[config.NLayer];
        for (int i = 0; i < config.NLayer; i++)
        {
            string p = $"model.layers.{i}.";
            layers[i] = new Layer(
                Parameters.Add(p + "input_layernorm.weight", c),
                Parameters.Add(p + "self_attn.q_proj.weight", c, c),
                Parameters.Add(p + "self_attn.k_proj.weight", kv, c),
                Parameters.Add(p + "self_attn.v_proj.weight", kv, c),
                Parameters.Add(p + "self_attn.o_proj.weight", c, c),
                Parameters.Add(p + "post_attention_layernorm.weight", c),
                Parameters.Add(p + "mlp.gate_proj.weight", f, c),
                Parameters.Add(p + "mlp.up_proj.weight", f, c),
                Parameters.Add(p + "mlp.down_proj.weight", c, f));
        }
        norm = Parameters.Add("model.norm.weight", c);
        lmHead = config.Tied ? embed : Parameters.Add("lm_head.weight", config.VocabSize, c);
        rope = new RopeTables(config.BlockSize, config.HeadDim, config.RopeTheta, config.Rope);
    }

    public override Tensor Forward(Graph g, int[] tokens, int b, int t, ulong dropoutSeed = 0)
    {
        ArgumentNullException.ThrowIfNull(g);
        CheckInput(tokens, b, t);
        var cfg = Config;
        float eps = cfg.NormEps, p = cfg.Dropout;
        var x = EmbeddingOp.Forward(g, embed, tokens, b, t);               // [B, T, C]
        for (int i = 0; i < layers.Length; i++)
        {
            var l = layers[i];
            var h = RmsNormOp.Forward(g, x, l.AttnNorm, eps);
            var qkv = LinearOp.Forward(g, h, [l.Wq, l.Wk, l.Wv], null);      // [B, T, (Hq + 2 Hkv) D]
            var a = AttentionOp.Forward(g, qkv, cfg.NHead, cfg.KvHeads, cfg.HeadDim, rope); // [B, T, C]
            a = LinearOp.Forward(g, a, l.Wo, null);
            a = DropoutOp.Forward(g, a, p, Rng.Mix(dropoutSeed, (ulong)i, 1));
            x = AddOp.Forward(g, x, a);
            h = RmsNormOp.Forward(g, x, l.MlpNorm, eps);
            var gate = LinearOp.Forward(g, h, l.Gate, null);                // [B, T, F]
            var up = LinearOp.Forward(g, h, l.Up, null);                    // [B, T, F]
            var m = SwiGluOp.Forward(g, gate, up);
            m = LinearOp.Forward(g, m, l.Down, null);                        // [B, T, C]
            m = DropoutOp.Forward(g, m, p, Rng.Mix(dropoutSeed, (ulong)i, 2));
            x = AddOp.Forward(g, x, m);
        }
        x = RmsNormOp.Forward(g, x, norm, eps);
        return LinearOp.Forward(g, x, lmHead, null);                       // [B, T, V]
    }

    private sealed record Layer(Tensor AttnNorm, Tensor Wq, Tensor Wk, Tensor Wv, Tensor Wo, Tensor MlpNorm,
        Tensor Gate, Tensor Up, Tensor Down);
}
