// One tensor-name table per file family, used in both directions: loaders find a model's weights by these names
// (ModelBuilders.Build) and Quill writes its checkpoints under them (TransformerModel's parameter names), so what
// Quill writes, Quill and other tools read back under the same names.
//   Hf      Hugging Face Llama / Mistral / Qwen2 / Phi-3 (model.layers.{i}.self_attn.q_proj.weight, ...); Quill's
//           own checkpoints of every RoPE architecture.
//   NanoGpt nanoGPT / Quill GPT-2 (transformer.h.{i}.attn.c_attn.weight, ...); HF GPT-2 uses the same names with
//           or without the "transformer." prefix (NanoGptWithout), and stores its Conv1D matrices [in, out].
//   Gguf    llama.cpp (blk.{i}.attn_q.weight, token_embd.weight, ...), per the GGUF spec's tensor naming.
// llama2.c files have no names (fixed offsets: Formats.Llama2c). Slots a family cannot hold return null.
//   HfMixtral / HfQwenMoe  Hugging Face Mixtral (block_sparse_moe.gate, block_sparse_moe.experts.{e}.w1/w3/w2) and
//           Qwen3-MoE (mlp.gate, mlp.experts.{e}.gate_proj/up_proj/down_proj): the Llama names plus the experts, one
//           tensor per expert (ExpertName fills in e); GGUF holds each layer's experts as one 3-D tensor
//           (ffn_gate_exps / ffn_up_exps / ffn_down_exps [E, F, C] outermost first) and the router as ffn_gate_inp.
//   HfOlmo2 Hugging Face OLMo 2: no input norms; post_attention_layernorm / post_feedforward_layernorm on the outputs.
//   HfGemma Hugging Face Gemma 2 / 3: the Llama names, except that post_attention_layernorm is the norm of the
//           attention output and the MLP's input norm is pre_feedforward_layernorm (+ post_feedforward_layernorm).
// Does not handle: other families' names (Falcon, GPT-NeoX, ...).
namespace Quill.Models;

/// <summary>A weight of the model, independent of any file's name for it.</summary>
public enum WeightSlot
{
    TokenEmbedding, PositionEmbedding, FinalNorm, FinalNormBias, Head,
    AttnNorm, AttnNormBias, Q, K, V, Qkv, QBias, KBias, VBias, QkvBias, O, OBias,
    MlpNorm, MlpNormBias, Gate, Up, GateUp, UpBias, Down, DownBias,
    QNorm, KNorm, // Qwen3, Gemma 3: per-head RMSNorm weights of q and k, [head_dim]
    AttnPostNorm, MlpPostNorm, // Gemma 2, 3: RMSNorms of the attention and MLP outputs before the residual add
    Router, ExpertGate, ExpertUp, ExpertDown, // mixtures of experts: router [E, C]; each expert's SwiGLU (HF: one tensor per expert, "{e}" in the name; GGUF: one 3-D tensor)
}

/// <summary>Maps weight slots to tensor names for one file family.</summary>
public sealed class TensorNames
{
    private readonly Func<WeightSlot, string?> global;
    private readonly Func<WeightSlot, string?> layer;
    private readonly string layerPrefix;

    private TensorNames(string family, string layerPrefix, Func<WeightSlot, string?> global, Func<WeightSlot, string?> layer)
    {
        Family = family;
        this.layerPrefix = layerPrefix;
        this.global = global;
        this.layer = layer;
    }

    /// <summary>The family's name, for messages.</summary>
    public string Family { get; }

    /// <summary>The name of a model-wide slot (embeddings, final norm, head), or null if the family has none.</summary>
    public string? Name(WeightSlot slot) => global(slot);

    /// <summary>The name of layer i's slot, or null if the family has none.</summary>
    public string? Name(WeightSlot slot, int i) => layer(slot) is { } s ? layerPrefix.Replace("{i}", i.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal) + s : null;

    /// <summary>
    /// The name of expert e's tensor of a mixture slot in layer i: HF families name one tensor per expert; for GGUF,
    /// which stacks the experts in one 3-D tensor, this is that tensor's name (<see cref="PerExpert"/> is false).
    /// </summary>
    public string? ExpertName(WeightSlot slot, int i, int e) => Name(slot, i)?.Replace("{e}", e.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);

    /// <summary>True when the family stores one tensor per expert (HF), false when one 3-D tensor holds them all (GGUF).</summary>
    public bool PerExpert => Name(WeightSlot.ExpertGate, 0)?.Contains("{e}", StringComparison.Ordinal) == true;

    /// <summary>Hugging Face names of Mixtral.</summary>
    public static TensorNames HfMixtral { get; } = new("Hugging Face", "model.layers.{i}.", HfGlobal, s => s switch
    {
        WeightSlot.Router => "block_sparse_moe.gate.weight",
        WeightSlot.ExpertGate => "block_sparse_moe.experts.{e}.w1.weight",
        WeightSlot.ExpertUp => "block_sparse_moe.experts.{e}.w3.weight",
        WeightSlot.ExpertDown => "block_sparse_moe.experts.{e}.w2.weight",
        _ => HfLayer(s),
    });

    /// <summary>Hugging Face names of Qwen3-MoE.</summary>
    public static TensorNames HfQwenMoe { get; } = new("Hugging Face", "model.layers.{i}.", HfGlobal, s => s switch
    {
        WeightSlot.Router => "mlp.gate.weight",
        WeightSlot.ExpertGate => "mlp.experts.{e}.gate_proj.weight",
        WeightSlot.ExpertUp => "mlp.experts.{e}.up_proj.weight",
        WeightSlot.ExpertDown => "mlp.experts.{e}.down_proj.weight",
        _ => HfLayer(s),
    });

    /// <summary>Hugging Face names of the Llama family (and Quill's checkpoints of RoPE models).</summary>
    public static TensorNames Hf { get; } = new("Hugging Face", "model.layers.{i}.", HfGlobal, HfLayer);

    /// <summary>Hugging Face names of Gemma 2 and 3 (and Quill's checkpoints of models with post-norms).</summary>
    public static TensorNames HfGemma { get; } = new("Hugging Face", "model.layers.{i}.", HfGlobal, s => s switch
    {
        WeightSlot.AttnPostNorm => "post_attention_layernorm.weight",
        WeightSlot.MlpNorm => "pre_feedforward_layernorm.weight",
        WeightSlot.MlpPostNorm => "post_feedforward_layernorm.weight",
        _ => HfLayer(s),
    });

    /// <summary>Hugging Face names of OLMo 2: no input norms; post_attention_layernorm and post_feedforward_layernorm
    /// normalize the attention and MLP outputs; q_norm / k_norm span the whole projection.</summary>
    public static TensorNames HfOlmo2 { get; } = new("Hugging Face", "model.layers.{i}.", HfGlobal, s => s switch
    {
        WeightSlot.AttnNorm or WeightSlot.MlpNorm => null,
        WeightSlot.AttnPostNorm => "post_attention_layernorm.weight",
        WeightSlot.MlpPostNorm => "post_feedforward_layernorm.weight",
        _ => HfLayer(s),
    });

    /// <summary>The Hugging Face table for a spec: Gemma's or OLMo 2's when it has post-norms, Mixtral's or Qwen3-MoE's for experts.</summary>
    public static TensorNames ForHf(ModelSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return spec.PostNorms ? spec.PreNorms ? HfGemma : HfOlmo2 : spec.IsMoe ? spec.Arch == "qwen3moe" ? HfQwenMoe : HfMixtral : Hf;
    }

    private static string? HfGlobal(WeightSlot s) => s switch
    {
        WeightSlot.TokenEmbedding => "model.embed_tokens.weight",
        WeightSlot.FinalNorm => "model.norm.weight",
        WeightSlot.Head => "lm_head.weight",
        _ => null,
    };

    private static string? HfLayer(WeightSlot s) => s switch
    {
        WeightSlot.AttnNorm => "input_layernorm.weight",
        WeightSlot.Q => "self_attn.q_proj.weight",
        WeightSlot.K => "self_attn.k_proj.weight",
        WeightSlot.V => "self_attn.v_proj.weight",
        WeightSlot.Qkv => "self_attn.qkv_proj.weight",
        WeightSlot.QBias => "self_attn.q_proj.bias",
        WeightSlot.KBias => "self_attn.k_proj.bias",
        WeightSlot.VBias => "self_attn.v_proj.bias",
        WeightSlot.O => "self_attn.o_proj.weight",
        WeightSlot.OBias => "self_attn.o_proj.bias",
        WeightSlot.MlpNorm => "post_attention_layernorm.weight",
        WeightSlot.Gate => "mlp.gate_proj.weight",
        WeightSlot.Up => "mlp.up_proj.weight",
        WeightSlot.GateUp => "mlp.gate_up_proj.weight",
        WeightSlot.UpBias => "mlp.up_proj.bias",
        WeightSlot.Down => "mlp.down_proj.weight",
        WeightSlot.DownBias => "mlp.down_proj.bias",
        WeightSlot.QNorm => "self_attn.q_norm.weight",
        WeightSlot.KNorm => "self_attn.k_norm.weight",
        _ => null,
    };

    /// <summary>nanoGPT's GPT-2 names (Quill's GPT-2 checkpoints), with the "transformer." prefix.</summary>
    public static TensorNames NanoGpt { get; } = Gpt2Names("transformer.");

    /// <summary>Hugging Face GPT-2 files that drop the "transformer." prefix.</summary>
    public static TensorNames NanoGptWithoutPrefix { get; } = Gpt2Names("");

    /// <summary>llama.cpp's GGUF names.</summary>
    public static TensorNames Gguf { get; } = new("GGUF", "blk.{i}.", s => s switch
    {
        WeightSlot.TokenEmbedding => "token_embd.weight",
        WeightSlot.PositionEmbedding => "position_embd.weight",
        WeightSlot.FinalNorm => "output_norm.weight",
        WeightSlot.FinalNormBias => "output_norm.bias",
        WeightSlot.Head => "output.weight",
        _ => null,
    }, s => s switch
    {
        WeightSlot.AttnNorm => "attn_norm.weight",
        WeightSlot.AttnNormBias => "attn_norm.bias",
        WeightSlot.Q => "attn_q.weight",
        WeightSlot.K => "attn_k.weight",
        WeightSlot.V => "attn_v.weight",
        WeightSlot.Qkv => "attn_qkv.weight",
        WeightSlot.QBias => "attn_q.bias",
        WeightSlot.KBias => "attn_k.bias",
        WeightSlot.VBias => "attn_v.bias",
        WeightSlot.QkvBias => "attn_qkv.bias",
        WeightSlot.O => "attn_output.weight",
        WeightSlot.OBias => "attn_output.bias",
        WeightSlot.MlpNorm => "ffn_norm.weight",
        WeightSlot.MlpNormBias => "ffn_norm.bias",
        WeightSlot.Gate => "ffn_gate.weight",
        WeightSlot.Up => "ffn_up.weight",
        WeightSlot.GateUp => "ffn_up.weight", // Phi-3: gate and up stacked in one [2F, C] ffn_up
        WeightSlot.UpBias => "ffn_up.bias",
        WeightSlot.Down => "ffn_down.weight",
        WeightSlot.DownBias => "ffn_down.bias",
        WeightSlot.QNorm => "attn_q_norm.weight",
        WeightSlot.KNorm => "attn_k_norm.weight",
        WeightSlot.AttnPostNorm => "post_attention_norm.weight",
        WeightSlot.MlpPostNorm => "post_ffw_norm.weight",
        WeightSlot.Router => "ffn_gate_inp.weight",
        WeightSlot.ExpertGate => "ffn_gate_exps.weight",
        WeightSlot.ExpertUp => "ffn_up_exps.weight",
        WeightSlot.ExpertDown => "ffn_down_exps.weight",
        _ => null,
    });

    private static TensorNames Gpt2Names(string prefix) => new("GPT-2", prefix + "h.{i}.", s => s switch
    {
        WeightSlot.TokenEmbedding => prefix + "wte.weight",
        WeightSlot.PositionEmbedding => prefix + "wpe.weight",
        WeightSlot.FinalNorm => prefix + "ln_f.weight",
        WeightSlot.FinalNormBias => prefix + "ln_f.bias",
        WeightSlot.Head => "lm_head.weight",
        _ => null,
    }, s => s switch
    {
        WeightSlot.AttnNorm => "ln_1.weight",
        WeightSlot.AttnNormBias => "ln_1.bias",
        WeightSlot.Qkv => "attn.c_attn.weight",
        WeightSlot.QkvBias => "attn.c_attn.bias",
        WeightSlot.O => "attn.c_proj.weight",
        WeightSlot.OBias => "attn.c_proj.bias",
        WeightSlot.MlpNorm => "ln_2.weight",
        WeightSlot.MlpNormBias => "ln_2.bias",
        WeightSlot.Up => "mlp.c_fc.weight",
        WeightSlot.UpBias => "mlp.c_fc.bias",
        WeightSlot.Down => "mlp.c_proj.weight",
        WeightSlot.DownBias => "mlp.c_proj.bias",
        _ => null,
    });

    /// <summary>The table Quill's own checkpoints use for a spec: nanoGPT for learned positions (GPT-2), else HF's.</summary>
    public static TensorNames ForQuillCheckpoint(ModelSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return spec.Positions == PositionKind.Learned ? NanoGpt : ForHf(spec);
    }
}
