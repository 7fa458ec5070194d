// Assembles LayerWeights from tensor names, for the naming schemes Quill meets: Hugging Face Llama / Mistral / Qwen2
// (model.layers.{i}.self_attn.q_proj.weight, ...; Quill's own Llama checkpoints use the same names) and Phi-3 (the
// same, with q|k|v fused in self_attn.qkv_proj and gate|up in mlp.gate_up_proj, split by row views), GPT-2 (nanoGPT
// and Quill: transformer.h.{i}.attn.c_attn.weight stored [out, in]; HF: the same names with or without the
// "transformer." prefix, Conv1D weights stored [in, out], transposed here into pinned copies), and GGUF
// (blk.{i}.attn_q.weight, ...; fused attn_qkv and a fused gate|up ffn_up as Phi-3 writes them are split by row
// views, without copying).
// Does not handle: renaming schemes of other families (Falcon, GPT-NeoX, Gemma, ...).
// Glossary: C width, F MLP width, V vocabulary.
namespace Quill.Inference;

/// <summary>Builds layer weights from named tensors.</summary>
internal static class ModelBuilders
{
    /// <summary>A Llama-family model with HF names (biases optional, lm_head optional = tied; Phi-3's fused qkv / gate|up).</summary>
    public static InferenceModel HfLlama(WeightSource src, ModelSpec spec, List<IDisposable> owners, bool tied)
    {
        var layers = new LayerWeights[spec.Layers];
        for (int i = 0; i < spec.Layers; i++)
        {
            string p = $"model.layers.{i}.";
            WeightMatrix? wqkv = src.OptionalMatrix(p + "self_attn.qkv_proj.weight");
            var (gate, up) = src.OptionalMatrix(p + "mlp.gate_up_proj.weight") is { } fused
                ? SplitGateUp(src, fused, spec)
                : (src.Matrix(p + "mlp.gate_proj.weight"), src.Matrix(p + "mlp.up_proj.weight"));
            layers[i] = new LayerWeights
            {
                AttnNorm = src.Floats(p + "input_layernorm.weight"),
                Wqkv = wqkv,
                Wq = wqkv == null ? src.Matrix(p + "self_attn.q_proj.weight") : null,
                Wk = wqkv == null ? src.Matrix(p + "self_attn.k_proj.weight") : null,
                Wv = wqkv == null ? src.Matrix(p + "self_attn.v_proj.weight") : null,
                QkvBias = ConcatOptional(src, spec, p + "self_attn.q_proj.bias", p + "self_attn.k_proj.bias", p + "self_attn.v_proj.bias"),
                Wo = src.Matrix(p + "self_attn.o_proj.weight"),
                MlpNorm = src.Floats(p + "post_attention_layernorm.weight"),
                Gate = gate,
                Up = up,
                Down = src.Matrix(p + "mlp.down_proj.weight"),
            };
        }
        var embed = src.Matrix("model.embed_tokens.weight");
        var head = tied || !src.Contains("lm_head.weight") ? embed : src.Matrix("lm_head.weight");
        return new InferenceModel(spec, embed, null, layers, src.Floats("model.norm.weight"), null, head, owners, src.Path);
    }

    /// <summary>A GPT-2 model with nanoGPT / HF names; HF Conv1D ([in, out]) weights are transposed into copies.</summary>
    public static InferenceModel Gpt2(WeightSource src, ModelSpec spec, List<IDisposable> owners, bool tied)
    {
        string pre = src.Contains("transformer.wte.weight") ? "transformer." : "";
        int c = spec.Dim;
        // HF GPT-2 stores Conv1D weights [in, out]: c_attn is [C, 3C] there, [3C, C] in nanoGPT / Quill files
        bool conv1d = src.Get(pre + "h.0.attn.c_attn.weight").Shape is [var r0, var c0] && r0 == c && c0 == 3 * c;
        var layers = new LayerWeights[spec.Layers];
        for (int i = 0; i < spec.Layers; i++)
        {
            string p = $"{pre}h.{i}.";
            layers[i] = new LayerWeights
            {
                AttnNorm = src.Floats(p + "ln_1.weight"),
                AttnNormBias = src.OptionalFloats(p + "ln_1.bias"),
                Wqkv = OutIn(src, p + "attn.c_attn.weight", 3 * c, c, conv1d),
                QkvBias = src.OptionalFloats(p + "attn.c_attn.bias"),
                Wo = OutIn(src, p + "attn.c_proj.weight", c, c, conv1d),
                WoBias = src.OptionalFloats(p + "attn.c_proj.bias"),
                MlpNorm = src.Floats(p + "ln_2.weight"),
                MlpNormBias = src.OptionalFloats(p + "ln_2.bias"),
                Up = OutIn(src, p + "mlp.c_fc.weight", spec.Hidden, c, conv1d),
                UpBias = src.OptionalFloats(p + "mlp.c_fc.bias"),
                Down = OutIn(src, p + "mlp.c_proj.weight", c, spec.Hidden, conv1d),
                DownBias = src.OptionalFloats(p + "mlp.c_proj.bias"),
            };
        }
        var wte = src.Matrix(pre + "wte.weight");
        var head = tied || !src.Contains("lm_head.weight") ? wte : src.Matrix("lm_head.weight");
        return new InferenceModel(spec, wte, src.Floats(pre + "wpe.weight"), layers, src.Floats(pre + "ln_f.weight"),
            src.OptionalFloats(pre + "ln_f.bias"), head, owners, src.Path);
    }

    /// <summary>A GGUF llama-shaped or gpt2 model (names blk.{i}.*).</summary>
    public static InferenceModel Gguf(WeightSource src, ModelSpec spec, List<IDisposable> owners)
    {
        var layers = new LayerWeights[spec.Layers];
        bool gpt2 = spec.Family == ModelFamily.Gpt2;
        for (int i = 0; i < spec.Layers; i++)
        {
            string p = $"blk.{i}.";
            WeightMatrix? wqkv = src.OptionalMatrix(p + "attn_qkv.weight");
            float[]? qkvBias = wqkv != null ? src.OptionalFloats(p + "attn_qkv.bias")
                : ConcatOptional(src, spec, p + "attn_q.bias", p + "attn_k.bias", p + "attn_v.bias");
            WeightMatrix up = src.Matrix(p + "ffn_up.weight");
            WeightMatrix? gate = gpt2 ? null : src.OptionalMatrix(p + "ffn_gate.weight");
            if (!gpt2 && gate == null) (gate, up) = SplitGateUp(src, up, spec); // Phi-3: gate and up stacked in one [2F, C] ffn_up
            layers[i] = new LayerWeights
            {
                AttnNorm = src.Floats(p + "attn_norm.weight"),
                AttnNormBias = src.OptionalFloats(p + "attn_norm.bias"),
                Wqkv = wqkv,
                Wq = wqkv == null ? src.Matrix(p + "attn_q.weight") : null,
                Wk = wqkv == null ? src.Matrix(p + "attn_k.weight") : null,
                Wv = wqkv == null ? src.Matrix(p + "attn_v.weight") : null,
                QkvBias = qkvBias,
                Wo = src.Matrix(p + "attn_output.weight"),
                WoBias = src.OptionalFloats(p + "attn_output.bias"),
                MlpNorm = src.Floats(p + "ffn_norm.weight"),
                MlpNormBias = src.OptionalFloats(p + "ffn_norm.bias"),
                Gate = gate,
                Up = up,
                UpBias = src.OptionalFloats(p + "ffn_up.bias"),
                Down = src.Matrix(p + "ffn_down.weight"),
                DownBias = src.OptionalFloats(p + "ffn_down.bias"),
            };
        }
        var embed = src.Matrix("token_embd.weight");
        var head = src.OptionalMatrix("output.weight") ?? embed;
        return new InferenceModel(spec, embed, gpt2 ? src.Floats("position_embd.weight") : null, layers,
            src.Floats("output_norm.weight"), src.OptionalFloats("output_norm.bias"), head, owners, src.Path);
    }

    /// <summary>A fused [2F, C] gate|up matrix (Phi-3) as two row views: gate rows first, then up.</summary>
    private static (WeightMatrix Gate, WeightMatrix Up) SplitGateUp(WeightSource src, WeightMatrix fused, ModelSpec spec)
    {
        int f = spec.Hidden;
        if (fused.Rows != 2 * f)
            throw new InvalidFileException($"{src.Path}: no separate gate projection, and tensor '{fused.Name}' has {fused.Rows} rows, not the {2 * f} of a fused gate|up for an MLP of width {f}.");
        return (fused.SliceRows(fused.Name + "[gate]", 0, f), fused.SliceRows(fused.Name + "[up]", f, f));
    }

    /// <summary>q|k|v biases concatenated, or null when the model has none (all three absent).</summary>
    private static float[]? ConcatOptional(WeightSource src, ModelSpec spec, string q, string k, string v)
    {
        bool any = src.Contains(q) || src.Contains(k) || src.Contains(v);
        if (!any) return null;
        var all = new float[spec.QkvDim];
        if (src.Contains(q)) src.Floats(q).AsSpan().CopyTo(all);
        if (src.Contains(k)) src.Floats(k).AsSpan().CopyTo(all.AsSpan(spec.QDim));
        if (src.Contains(v)) src.Floats(v).AsSpan().CopyTo(all.AsSpan(spec.QDim + spec.KvDim));
        return all;
    }

    /// <summary>A matrix meant as [rows, cols]; when transposed (HF Conv1D) the stored [cols, rows] is transposed into a copy.</summary>
    private static WeightMatrix OutIn(WeightSource src, string name, int rows, int cols, bool transposed)
    {
        var v = src.Get(name);
        if (!transposed && v.Shape is [var r, var k] && r == rows && k == cols) return src.Matrix(name);
        if (transposed && v.Shape is [var r2, var k2] && r2 == cols && k2 == rows)
        {
            float[] t = src.Floats(name), w = new float[t.Length];
            for (int i = 0; i < cols; i++)
            {
                for (int j = 0; j < rows; j++) w[j * cols + i] = t[i * rows + j];
            }
            return WeightMatrix.FromFloats(name, w, rows, cols);
        }
        throw new InvalidFileException($"{src.Path}: tensor '{name}' has shape [{string.Join(", ", v.Shape)}], expected {(transposed ? $"[{cols}, {rows}]" : $"[{rows}, {cols}]")}.");
    }
}
