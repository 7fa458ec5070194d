// Writes a model as a GGUF file llama.cpp runs: the twin of GgufModelLoader. Architectures:
// - gpt2 (learned positions, LayerNorm with biases, GELU MLP, biases everywhere): token_embd, position_embd,
//   blk.N.attn_norm(+bias), attn_qkv(+bias), attn_output(+bias), ffn_norm(+bias), ffn_up(+bias), ffn_down(+bias),
//   output_norm(+bias), output (left out when tied: llama.cpp then reuses token_embd).
// - llama (RoPE, RMSNorm, SwiGLU; Quill's llama and mistral, and any RoPE model without MLP or output biases):
//   llama.cpp's llama rotates adjacent pairs (interleaved), so q and k rows (and q/k biases) of a model that pairs
//   dims by halves (Hugging Face, Quill's default) are permuted per head into interleaved order: interleaved row 2i
//   = half row i, 2i + 1 = half row i + d/2 (d the rotary dims). Llama 3 scaling becomes the rope_freqs tensor of
//   per-pair divisors; linear scaling rope.scaling.type linear.
// - qwen2 (half pairing, q/k/v biases): written as qwen2, unpermuted (llama.cpp runs qwen2 with NeoX pairing).
// - qwen3 (half pairing, per-head q/k RMSNorm attn_q_norm / attn_k_norm, no biases): written as qwen3, unpermuted.
// - gemma2 / gemma3 (post-norms, GeGLU, scaled embedding, local and global layers; gemma3 with q/k norms): written
//   unpermuted with post_attention_norm / post_ffw_norm, norms as gamma (llama.cpp's converter adds HF's 1 too),
//   attention.sliding_window, gemma2's soft-caps; llama.cpp derives the score scale from the head size, so a model
//   whose scale differs (other than llama.cpp's 27B rule) is refused.
// Matrices go to the requested type (a TensorTypePlan says which, e.g. llama.cpp's Q4_K_M mix); a matrix whose
// rows are not whole blocks of it falls back to Q8_0, F16 or F32; norms, biases and rope_freqs stay F32. A tensor
// already stored in the target type is copied byte for byte; others are converted row by row as the file is
// written (GgufWriter's producers), so the model is never held twice. Given an importance matrix, the block types
// that use one (WeightedQuant) quantize each matrix with its entry's mean squared inputs as column weights, as
// llama-quantize --imatrix does; matrices without an entry (token_embd, output) quantize as without. The tokenizer goes in as tokenizer.ggml.*
// (Tokenization.VocabularyExport decides the form; "none" when it has none) with the chat template and stop ids.
// A PEFT LoRA adapter is written as llama.cpp's GGUF LoRA adapter (WriteLoraAdapter).
// - mixtures of experts: Mixtral as llama with llama.expert_count / expert_used_count, Qwen3-MoE as qwen3moe (+
//   expert_feed_forward_length); router ffn_gate_inp (F32), experts as 3-D ffn_gate_exps / ffn_up_exps /
//   ffn_down_exps (ne [cols, rows, E]); both of llama.cpp's graphs renormalize the chosen weights, so a mixture that
//   does not (Qwen3-MoE with norm_topk_prob false) is refused.
// - olmo2 (no input norms, post_attention_norm / post_ffw_norm, whole-width attn_q_norm / attn_k_norm): unpermuted,
//   untied, head size width / heads (llama.cpp derives it).
// - LongRoPE (Phi-3.5 / Phi-4) as phi3: fused attn_qkv and ffn_up (gate rows, then up), rope_factors_long /
//   rope_factors_short, phi3.rope.scaling.attn_factor and .original_context_length (as llama.cpp's converter).
// Does not handle: phi3 without LongRoPE (written as llama, permuted), partial rotary on half-paired llama models with biases, a sliding window on
// llama (llama.cpp's llama has none: the context written is capped to the window, within which the two agree).
using Quill.Formats.Gguf;
using Quill.Kernels;
using Quill.Models;
using Quill.Quantization;
using Quill.Tensors;
using Quill.Tokenization;

namespace Quill.Inference;

/// <summary>One tensor written, for progress.</summary>
public readonly record struct ExportProgress(int Done, int Total, string Tensor, long BytesWritten);

/// <summary>What an export wrote.</summary>
/// <param name="Path">The file or folder written.</param>
/// <param name="Architecture">The architecture as the format names it (gpt2, llama, qwen2, ...).</param>
/// <param name="Bytes">Bytes written.</param>
/// <param name="Tensors">Tensors written.</param>
/// <param name="TensorTypes">How many tensors of each type.</param>
/// <param name="TokenizerNote">Why no tokenizer was written, or null when one was.</param>
/// <param name="WeightError">||W' - W|| / ||W|| over the matrices converted to another type (0 when none was).</param>
/// <param name="ImportanceWeighted">Matrices quantized with importance weights (an importance matrix given).</param>
public sealed record ExportReport(string Path, string Architecture, long Bytes, int Tensors, IReadOnlyDictionary<GgmlType, int> TensorTypes, string? TokenizerNote, double WeightError = 0, int ImportanceWeighted = 0);

/// <summary>Writes GGUF files from any model Quill loads.</summary>
public static class GgufExport
{
    /// <summary>llama.cpp's general.file_type for a whole-file type (llama_ftype).</summary>
    public static uint FileType(GgmlType type) => type switch
    {
        GgmlType.F32 => 0,
        GgmlType.F16 => 1,
        GgmlType.Q4_0 => 2,
        GgmlType.Q4_1 => 3,
        GgmlType.Q8_0 => 7,
        GgmlType.Q5_0 => 8,
        GgmlType.Q5_1 => 9,
        GgmlType.Q4_K => 15,
        GgmlType.Q5_K => 17,
        GgmlType.Q6_K => 18,
        GgmlType.BF16 => 32,
        _ => throw new InvalidConfigException($"GGUF export to {type} is not supported; use f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k or q6_k."),
    };

    /// <summary>The llama.cpp architecture a spec is written as, or a QuillException saying why it has none.</summary>
    public static string ArchitectureOf(ModelSpec spec, string source)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Positions == PositionKind.Learned)
        {
            if (spec.Norm != NormKind.LayerNorm || spec.Mlp != MlpKind.Gelu || !spec.NormBias || !spec.QkvBias || !spec.OutBias || !spec.MlpBias)
                throw new QuillException($"{source}: a learned-position model is written as llama.cpp's gpt2, which needs LayerNorm with biases, a GELU MLP and biases on every projection; this model lacks some, so GGUF cannot express it.");
            return "gpt2";
        }
        if (spec.PostNorms && !spec.PreNorms)
        {
            if (spec.Mlp != MlpKind.SwiGlu || !spec.QkNormWhole || spec.QkvBias || spec.OutBias || spec.MlpBias || spec.EmbedScale || spec.IsMoe || spec.TiedEmbeddings
                || spec.RopeStyle != RopeStyle.Half || spec.EffectiveRotaryDim != spec.HeadDim || spec.HeadDim * spec.Heads != spec.Dim || spec.SlidingWindow > 0
                || spec.LongRope != null || spec.AttentionScale != 0 || spec.AttnSoftcap != 0 || spec.FinalSoftcap != 0)
                throw new QuillException($"{source}: norms only after attention and the MLP are written as llama.cpp's olmo2, which needs SwiGLU, whole-width q/k norms, no biases, an untied head, whole-head NeoX RoPE, head size width / heads and no window; GGUF export cannot express this model.");
            return "olmo2";
        }
        if (spec.PostNorms) return GemmaArchitecture(spec, source);
        if (spec.IsMoe && !spec.NormTopK)
            throw new QuillException($"{source}: llama.cpp's llama and qwen3moe renormalize the chosen experts' weights and this mixture does not (norm_topk_prob false); GGUF export cannot express this model.");
        if (spec.IsMoe && spec.QkNorm && (spec.QkvBias || spec.RopeStyle != RopeStyle.Half || spec.EffectiveRotaryDim != spec.HeadDim))
            throw new QuillException($"{source}: a mixture of experts with q/k norms is written as llama.cpp's qwen3moe, which has no q/k/v biases and rotates whole heads in halves; GGUF export cannot express this model.");
        if (spec.Norm != NormKind.RmsNorm || spec.Mlp != MlpKind.SwiGlu || spec.NormBias || spec.EmbedScale || spec.AttnSoftcap != 0 || spec.FinalSoftcap != 0 || spec.AttentionScale != 0)
            throw new QuillException($"{source}: a RoPE model is written as llama.cpp's llama or qwen2, which need RMSNorm and a SwiGLU MLP; GGUF export cannot express this model.");
        if (spec.MlpBias || spec.OutBias)
            throw new QuillException($"{source}: MLP or attention-output biases on a RoPE model have no llama.cpp architecture Quill writes; GGUF export cannot express this model.");
        if (spec.QkNorm)
        {
            if (spec.QkvBias || spec.RopeStyle != RopeStyle.Half || spec.EffectiveRotaryDim != spec.HeadDim)
                throw new QuillException($"{source}: q/k norms are written as llama.cpp's qwen3, which has no q/k/v biases and rotates whole heads in halves; GGUF export cannot express this model.");
            return spec.IsMoe ? "qwen3moe" : "qwen3";
        }
        if (spec.LongRope != null)
        {
            if (spec.QkvBias || spec.QkNorm || spec.IsMoe || spec.RopeStyle != RopeStyle.Half)
                throw new QuillException($"{source}: LongRoPE is written as llama.cpp's phi3, which has no q/k/v biases, q/k norms or experts and pairs dims by halves; GGUF export cannot express this model.");
            return "phi3";
        }
        if (spec.IsMoe && spec.QkvBias) throw new QuillException($"{source}: a mixture of experts is written as llama.cpp's llama (Mixtral), which has no q/k/v biases; GGUF export cannot express this model.");
        if (spec.QkvBias && spec.RopeStyle == RopeStyle.Half) return "qwen2";
        if (spec.RopeStyle == RopeStyle.Half && spec.EffectiveRotaryDim != spec.HeadDim && spec.QkvBias)
            throw new QuillException($"{source}: partial rotary with q/k/v biases cannot be written for llama.cpp.");
        return "llama";
    }

    private static string GemmaArchitecture(ModelSpec s, string source)
    {
        void Fail(string why) => throw new QuillException($"{source}: {why}; GGUF export cannot express this model.");
        if (s.Norm != NormKind.RmsNorm || s.Mlp != MlpKind.GeGlu || !s.EmbedScale || s.QkvBias || s.OutBias || s.MlpBias || s.NormBias
            || s.RopeStyle != RopeStyle.Half || s.EffectiveRotaryDim != s.HeadDim || !s.TiedEmbeddings || s.RopeScaling != null || s.RopeFreqFactors != null)
            Fail("post-norms are written as llama.cpp's gemma2 / gemma3, which need RMSNorm, GeGLU, the scaled embedding, tied embeddings, whole-head NeoX RoPE and no biases");
        string arch = s.QkNorm ? "gemma3" : "gemma2";
        bool patternOk = arch == "gemma2" ? s.SlidingPattern == 2 && s.RopeThetaLocal == 0 && s.RopeLinearFactor == 1
            : s.SlidingPattern == 6 && s.RopeThetaLocal == 10000 && s.AttnSoftcap == 0 && s.FinalSoftcap == 0;
        if (!patternOk || s.SlidingWindow < 1)
            Fail($"llama.cpp's {arch} fixes its layer pattern ({(arch == "gemma2" ? "every other layer global" : "every sixth layer global, local RoPE base 10000, no soft-caps")}) and needs a window");
        bool big = arch == "gemma2" ? s.Layers == 46 : s.Layers == 62;
        float theirs = big ? 1f / MathF.Sqrt(s.Dim / s.Heads) : 1f / MathF.Sqrt(s.HeadDim);
        if (Math.Abs(s.EffectiveAttentionScale - theirs) > 1e-6f * theirs)
            Fail($"llama.cpp's {arch} scales scores by {theirs:g6} (from the head size), this model by {s.EffectiveAttentionScale:g6}");
        return arch;
    }

    /// <summary>
    /// Writes <paramref name="model"/> to <paramref name="path"/> with matrices as <paramref name="plan"/> says
    /// (atomically: a failure leaves no file), weighting the quantization error by <paramref name="importance"/>
    /// where it has an entry for a matrix. Returns what was written.
    /// </summary>
    public static ExportReport Write(InferenceModel model, string path, TensorTypePlan plan, IProgress<ExportProgress>? progress = null,
        ImportanceMatrix? importance = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        model.RefusingAdapter("export it");
        ArgumentNullException.ThrowIfNull(plan);
        var w = model.Weights;
        var s = w.Spec;
        string arch = ArchitectureOf(s, model.Source);
        bool permute = arch == "llama" && s.RopeStyle == RopeStyle.Half;
        bool gemma = arch is "gemma2" or "gemma3";
        // llama.cpp's llama has no sliding window: within the window both compute the same, so the context stops there
        int context = !gemma && s.SlidingWindow > 0 ? Math.Min(s.MaxContext, s.SlidingWindow) : s.MaxContext;
        var g = new GgufWriter()
            .SetString("general.architecture", arch)
            .SetString("general.name", Path.GetFileNameWithoutExtension(Path.GetFullPath(model.Source).TrimEnd('/')))
            .SetUInt32("general.file_type", plan.FileType)
            .SetUInt32(arch + ".context_length", (uint)context)
            .SetUInt32(arch + ".embedding_length", (uint)s.Dim)
            .SetUInt32(arch + ".block_count", (uint)s.Layers)
            .SetUInt32(arch + ".feed_forward_length", (uint)s.Hidden)
            .SetUInt32(arch + ".attention.head_count", (uint)s.Heads)
            .SetUInt32(arch + ".attention.head_count_kv", (uint)s.KvHeads);
        if (GgmlTypeInfo.BlockSize(plan.Default) > 1) g.SetUInt32("general.quantization_version", 2);
        if (arch == "gpt2")
        {
            g.SetFloat32("gpt2.attention.layer_norm_epsilon", s.NormEps);
        }
        else
        {
            g.SetFloat32(arch + ".attention.layer_norm_rms_epsilon", s.NormEps)
             .SetFloat32(arch + ".rope.freq_base", (float)s.RopeTheta)
             .SetUInt32(arch + ".rope.dimension_count", (uint)s.EffectiveRotaryDim)
             .SetUInt32(arch + ".vocab_size", (uint)s.VocabSize);
            if (s.HeadDim * s.Heads != s.Dim || gemma)
                g.SetUInt32(arch + ".attention.key_length", (uint)s.HeadDim).SetUInt32(arch + ".attention.value_length", (uint)s.HeadDim);
            if (gemma) g.SetUInt32(arch + ".attention.sliding_window", (uint)s.SlidingWindow);
            if (s.IsMoe) g.SetUInt32(arch + ".expert_count", (uint)s.Experts).SetUInt32(arch + ".expert_used_count", (uint)s.ExpertsUsed);
            if (arch == "qwen3moe") g.SetUInt32("qwen3moe.expert_feed_forward_length", (uint)s.Hidden);
            if (arch == "gemma2")
                g.SetFloat32("gemma2.attn_logit_softcapping", s.AttnSoftcap).SetFloat32("gemma2.final_logit_softcapping", s.FinalSoftcap);
            if (s.RopeLinearFactor != 1.0)
                g.SetString(arch + ".rope.scaling.type", "linear").SetFloat32(arch + ".rope.scaling.factor", (float)s.RopeLinearFactor);
            if (s.LongRope is { } lr)
                g.SetFloat32(arch + ".rope.scaling.attn_factor", (float)lr.AttentionFactor).SetUInt32(arch + ".rope.scaling.original_context_length", (uint)lr.OriginalMaxPositions);
        }
        string? note = WriteTokenizer(g, model);

        var names = TensorNames.Gguf;
        var counts = new Dictionary<GgmlType, int>();
        var error = new ErrorSum();
        var tensors = new List<string>();
        int weighted = 0;
        void Matrix(string name, WeightSlot slot, int layer, WeightMatrix m, int permuteHeads = 0)
        {
            GgmlType t = plan.TypeFor(slot, layer, s.Layers, m.Cols, w.Tied);
            counts[t] = counts.GetValueOrDefault(t) + 1;
            tensors.Add(name);
            float[]? imp = importance?.Mean(name);
            if (imp != null && imp.Length != m.Cols)
                throw new InvalidConfigException($"the importance matrix's {name} has {imp.Length} values but the model's matrix has {m.Cols} input columns; it was made for another model.");
            if (imp != null && WeightedQuant.UsesWeights(t) && m.Type != t) weighted++;
            g.AddTensor(name, t, [m.Cols, m.Rows], () => Convert(m, t, permuteHeads > 0 ? RowOrder(s, permuteHeads) : null, error, imp));
        }
        void Vector(string name, float[] v, long[]? dims = null)
        {
            counts[GgmlType.F32] = counts.GetValueOrDefault(GgmlType.F32) + 1;
            tensors.Add(name);
            g.AddTensor(name, dims ?? [v.Length], v);
        }
        void Stacked2D(string name, WeightSlot slot, int layer, params WeightMatrix[] parts)
        {
            // row blocks of one fused matrix, stacked when the file is written (an f32 copy of one layer's parts)
            int cols = parts[0].Cols, rows = parts.Sum(p => p.Rows);
            GgmlType t = plan.TypeFor(slot, layer, s.Layers, cols, w.Tied);
            counts[t] = counts.GetValueOrDefault(t) + 1;
            tensors.Add(name);
            g.AddTensor(name, t, [cols, rows], () => Convert(WeightMatrix.FromFloats(name, [.. parts.SelectMany(p => p.ToFloats())], rows, cols), t, null, error));
        }
        void Stacked(string name, WeightSlot slot, int layer, WeightMatrix[] experts)
        {
            var m0 = experts[0];
            GgmlType t = plan.TypeFor(slot, layer, s.Layers, m0.Cols, w.Tied);
            counts[t] = counts.GetValueOrDefault(t) + 1;
            tensors.Add(name);
            g.AddTensor(name, t, [m0.Cols, m0.Rows, experts.Length], () =>
            {
                long each = GgmlTypeInfo.RowBytes(t, m0.Cols) * m0.Rows;
                var all = new byte[checked(each * experts.Length)];
                for (int e = 0; e < experts.Length; e++) Convert(experts[e], t, null, error).Span.CopyTo(all.AsSpan((int)(e * each)));
                return all;
            });
        }
        string N(WeightSlot slot, int i = -1) => (i < 0 ? names.Name(slot) : names.Name(slot, i))!;

        Matrix(N(WeightSlot.TokenEmbedding), WeightSlot.TokenEmbedding, -1, w.TokenEmbedding);
        if (w.PositionEmbedding is { } pos) g.AddTensor(N(WeightSlot.PositionEmbedding), [s.Dim, s.MaxContext], pos.AsMemory(0, s.MaxContext * s.Dim));
        if (s.RopeScaling is { } l3 && s.RopeFreqFactors == null) Vector("rope_freqs.weight", Llama3Divisors(s, l3));
        if (s.RopeFreqFactors is { } rf) Vector("rope_freqs.weight", rf);
        if (s.LongRope is { } lrf)
        {
            Vector("rope_factors_long.weight", lrf.LongFactors);
            Vector("rope_factors_short.weight", lrf.ShortFactors);
        }
        Vector(N(WeightSlot.FinalNorm), w.FinalNorm);
        if (w.FinalNormBias is { } fnb) Vector(N(WeightSlot.FinalNormBias), fnb);
        if (!w.Tied) Matrix(N(WeightSlot.Head), WeightSlot.Head, -1, w.Classifier);
        for (int i = 0; i < s.Layers; i++)
        {
            var l = w.Layers[i];
            if (l.AttnNorm is { } an) Vector(N(WeightSlot.AttnNorm, i), an);
            if (l.AttnNormBias is { } anb) Vector(N(WeightSlot.AttnNormBias, i), anb);
            if (arch == "gpt2")
            {
                Matrix(N(WeightSlot.Qkv, i), WeightSlot.Qkv, i, Fused(l));
                Vector(N(WeightSlot.QkvBias, i), l.QkvBias!);
            }
            else if (arch == "phi3")
            {
                var (q, k, v) = Split(l, s);
                Stacked2D(N(WeightSlot.Qkv, i), WeightSlot.Qkv, i, q, k, v); // attn_qkv: q|k|v rows, unpermuted (NeoX)
            }
            else
            {
                var (q, k, v) = Split(l, s);
                Matrix(N(WeightSlot.Q, i), WeightSlot.Q, i, q, permute ? s.Heads : 0);
                Matrix(N(WeightSlot.K, i), WeightSlot.K, i, k, permute ? s.KvHeads : 0);
                Matrix(N(WeightSlot.V, i), WeightSlot.V, i, v);
                if (l.QkvBias is { } b)
                {
                    float[] qb = b[..s.QDim], kb = b[s.QDim..(s.QDim + s.KvDim)], vb = b[(s.QDim + s.KvDim)..];
                    Vector(N(WeightSlot.QBias, i), permute ? PermuteVector(qb, RowOrder(s, s.Heads)) : qb);
                    Vector(N(WeightSlot.KBias, i), permute ? PermuteVector(kb, RowOrder(s, s.KvHeads)) : kb);
                    Vector(N(WeightSlot.VBias, i), vb);
                }
            }
            if (l.QNorm is { } qn) Vector(N(WeightSlot.QNorm, i), qn);
            if (l.KNorm is { } kn) Vector(N(WeightSlot.KNorm, i), kn);
            Matrix(N(WeightSlot.O, i), WeightSlot.O, i, l.Wo);
            if (l.WoBias is { } ob) Vector(N(WeightSlot.OBias, i), ob);
            if (l.AttnPostNorm is { } apn) Vector(N(WeightSlot.AttnPostNorm, i), apn);
            if (l.MlpNorm is { } mn) Vector(N(WeightSlot.MlpNorm, i), mn);
            if (l.MlpNormBias is { } mnb) Vector(N(WeightSlot.MlpNormBias, i), mnb);
            if (l.Experts is { } x)
            {
                // the router stays F32 (llama-quantize leaves ffn_gate_inp alone); each kind of expert matrix is one
                // 3-D tensor [E, rows, cols] of the type its dense twin would get
                Vector(N(WeightSlot.Router, i), x.Router.ToFloats(), [x.Router.Cols, x.Router.Rows]);
                Stacked(N(WeightSlot.ExpertGate, i), WeightSlot.Gate, i, x.Gate);
                Stacked(N(WeightSlot.ExpertUp, i), WeightSlot.Up, i, x.Up);
                Stacked(N(WeightSlot.ExpertDown, i), WeightSlot.Down, i, x.Down);
            }
            if (arch == "phi3")
            {
                Stacked2D(N(WeightSlot.GateUp, i), WeightSlot.Up, i, l.Gate!, l.Up!); // ffn_up [2F, C]: gate rows, then up
                Matrix(N(WeightSlot.Down, i), WeightSlot.Down, i, l.Down!);
                continue;
            }
            if (l.Gate is { } gate) Matrix(N(WeightSlot.Gate, i), WeightSlot.Gate, i, gate);
            if (l.Up is { } up) Matrix(N(WeightSlot.Up, i), WeightSlot.Up, i, up);
            if (l.UpBias is { } ub) Vector(N(WeightSlot.UpBias, i), ub);
            if (l.Down is { } down) Matrix(N(WeightSlot.Down, i), WeightSlot.Down, i, down);
            if (l.DownBias is { } db) Vector(N(WeightSlot.DownBias, i), db);
            if (l.MlpPostNorm is { } mpn) Vector(N(WeightSlot.MlpPostNorm, i), mpn);
        }
        int done = 0;
        g.Written = (name, bytes) => progress?.Report(new ExportProgress(++done, tensors.Count, name, bytes));
        g.Write(path);
        return new ExportReport(Path.GetFullPath(path), arch, new FileInfo(path).Length, tensors.Count, counts, note, error.Relative, weighted);
    }

    /// <summary>
    /// Writes the PEFT LoRA adapter in <paramref name="adapterFolder"/> (trained on <paramref name="baseModel"/>) as
    /// llama.cpp's GGUF LoRA adapter: general.type "adapter", adapter.type "lora", adapter.lora.alpha set so that
    /// llama.cpp's alpha / r is the adapter's scaling (alpha sqrt(r) for rsLoRA), and per adapted projection
    /// "NAME.lora_a" [r, in] and "NAME.lora_b" [out, r] in F32 under the base's GGUF tensor names; lora_b rows of q
    /// and k are permuted as GgufExport permutes the base's, so the adapter fits the base Quill exports.
    /// </summary>
    public static ExportReport WriteLoraAdapter(InferenceModel baseModel, string adapterFolder, string path)
    {
        ArgumentNullException.ThrowIfNull(baseModel);
        var s = baseModel.Spec;
        string arch = ArchitectureOf(s, baseModel.Source);
        bool permute = arch == "llama" && s.RopeStyle == RopeStyle.Half;
        var lm = LanguageModel.FromWeights(baseModel.Weights);
        var adapter = lm.LoadLora(adapterFolder);
        var g = new GgufWriter()
            .SetString("general.architecture", arch)
            .SetString("general.type", "adapter")
            .SetString("general.name", Path.GetFileName(Path.GetFullPath(adapterFolder).TrimEnd('/')))
            .SetString("adapter.type", "lora")
            .SetFloat32("adapter.lora.alpha", adapter.Scaling * adapter.Config.Rank);
        foreach (var m in adapter.Modules)
        {
            string name = TensorNames.Gguf.Name(m.Slot, m.Layer)!;
            int r = m.A.Shape[0], inDim = m.A.Shape[1], outDim = m.B.Shape[0];
            float[] b = m.B.Span.ToArray();
            if (permute && m.Slot is WeightSlot.Q or WeightSlot.K)
                b = PermuteRows(b, r, RowOrder(s, m.Slot == WeightSlot.Q ? s.Heads : s.KvHeads));
            g.AddTensor(name + ".lora_a", [inDim, r], m.A.Span.ToArray());
            g.AddTensor(name + ".lora_b", [r, outDim], b);
        }
        g.Write(path);
        return new ExportReport(Path.GetFullPath(path), arch, new FileInfo(path).Length, 2 * adapter.Modules.Count,
            new Dictionary<GgmlType, int> { [GgmlType.F32] = 2 * adapter.Modules.Count }, null);
    }

    private static float[] PermuteRows(float[] m, int cols, int[] order)
    {
        var o = new float[m.Length];
        for (int r = 0; r < order.Length; r++) m.AsSpan(order[r] * cols, cols).CopyTo(o.AsSpan(r * cols));
        return o;
    }

    /// <summary>
    /// The row order that turns half-paired q or k rows into llama.cpp's interleaved pairs: new row r takes old row
    /// order[r] (per head of D rows, within the rotary dims d: 2i from i, 2i + 1 from i + d/2).
    /// </summary>
    public static int[] RowOrder(ModelSpec spec, int heads)
    {
        ArgumentNullException.ThrowIfNull(spec);
        int d = spec.HeadDim, rd = spec.EffectiveRotaryDim;
        var order = new int[heads * d];
        for (int h = 0; h < heads; h++)
        {
            for (int j = 0; j < d; j++) order[h * d + j] = h * d + j;
            for (int i = 0; i < rd / 2; i++)
            {
                order[h * d + 2 * i] = h * d + i;
                order[h * d + 2 * i + 1] = h * d + i + rd / 2;
            }
        }
        return order;
    }

    /// <summary>The inverse of an order (old row -> new row), to undo a permutation.</summary>
    public static int[] Inverse(int[] order)
    {
        ArgumentNullException.ThrowIfNull(order);
        var inv = new int[order.Length];
        for (int r = 0; r < order.Length; r++) inv[order[r]] = r;
        return inv;
    }

    private static float[] PermuteVector(float[] v, int[] order)
    {
        var o = new float[v.Length];
        for (int r = 0; r < v.Length; r++) o[r] = v[order[r]];
        return o;
    }

    /// <summary>
    /// The matrix's rows (reordered when an order is given) in <paramref name="type"/>: its own bytes when the type
    /// matches and no reordering is asked, else converted row by row over the worker pool (with importance
    /// weights per column when given).
    /// </summary>
    internal static ReadOnlyMemory<byte> Convert(WeightMatrix m, GgmlType type, int[]? order, ErrorSum? error = null, float[]? importance = null)
    {
        long rowOut = GgmlTypeInfo.RowBytes(type, m.Cols);
        var data = new byte[checked(rowOut * m.Rows)];
        if (m.Type == type)
        {
            var src = m.Bytes;
            for (int r = 0; r < m.Rows; r++)
                src.Slice((int)((order?[r] ?? r) * rowOut), (int)rowOut).CopyTo(data.AsSpan((int)(r * rowOut), (int)rowOut));
            return data;
        }
        KernelThreads.ParallelFor(m.Rows, 16, (r0, r1) =>
        {
            float[] row = new float[m.Cols], back = new float[m.Cols];
            double err = 0, norm = 0;
            for (int r = r0; r < r1; r++)
            {
                m.ReadRow(order?[r] ?? r, row);
                var bytes = data.AsSpan((int)(r * rowOut), (int)rowOut);
                if (importance != null) WeightedQuant.QuantizeRow(type, row, importance, bytes);
                else GgmlQuant.Quantize(type, row, bytes);
                if (error == null) continue;
                GgmlQuant.Dequantize(type, bytes, back);
                for (int c = 0; c < row.Length; c++)
                {
                    double d = back[c] - row[c];
                    err += d * d;
                    norm += (double)row[c] * row[c];
                }
            }
            error?.Add(err, norm);
        });
        return data;
    }

    /// <summary>Squared error and squared norm summed over threads.</summary>
    internal sealed class ErrorSum
    {
        private readonly object gate = new();
        private double err, norm;

        public void Add(double e, double n)
        {
            lock (gate)
            {
                err += e;
                norm += n;
            }
        }

        /// <summary>sqrt(sum err / sum norm).</summary>
        public double Relative => norm > 0 ? Math.Sqrt(err / norm) : 0;
    }

    private static WeightMatrix Fused(LayerWeights l)
    {
        if (l.Wqkv != null) return l.Wqkv;
        // q, k and v of a gpt2-like model held apart: stack them as one f32 matrix
        var q = l.Wq!.ToFloats();
        var k = l.Wk!.ToFloats();
        var v = l.Wv!.ToFloats();
        return WeightMatrix.FromFloats("attn_qkv", [.. q, .. k, .. v], l.Wq.Rows + l.Wk.Rows + l.Wv.Rows, l.Wq.Cols);
    }

    private static (WeightMatrix Q, WeightMatrix K, WeightMatrix V) Split(LayerWeights l, ModelSpec s)
    {
        if (l.Wq != null) return (l.Wq, l.Wk!, l.Wv!);
        var f = l.Wqkv!;
        return (f.SliceRows(f.Name + "[q]", 0, s.QDim), f.SliceRows(f.Name + "[k]", s.QDim, s.KvDim), f.SliceRows(f.Name + "[v]", s.QDim + s.KvDim, s.KvDim));
    }

    /// <summary>Llama 3 scaling as llama.cpp's rope_freqs: per pair, the unscaled frequency over the scaled one.</summary>
    private static float[] Llama3Divisors(ModelSpec s, Llama3RopeScaling l3)
    {
        int rd = s.EffectiveRotaryDim;
        var f = new float[rd / 2];
        for (int i = 0; i < f.Length; i++)
        {
            double freq = Math.Pow(s.RopeTheta, -2.0 * i / rd);
            f[i] = (float)(freq / RopeFrequencies.ScaleLlama3(freq, l3));
        }
        return f;
    }

    /// <summary>Writes tokenizer.ggml.* and the chat template; returns a note when the tokenizer could not be written.</summary>
    private static string? WriteTokenizer(GgufWriter g, InferenceModel model)
    {
        if (model.ChatTemplate is { } tpl) g.SetString("tokenizer.chat_template", tpl);
        string? note = null;
        VocabularyDescription? d = null;
        if (model.Tokenizer == null) note = "the model has no tokenizer";
        else d = VocabularyExport.Describe(model.Tokenizer, model.Spec.VocabSize, model.Source, out note);
        if (d == null)
        {
            g.SetString("tokenizer.ggml.model", "none");
            return note;
        }
        GgufVocab.Write(g, d, model.AddBos);
        foreach (int id in model.ExtraStopIds)
        {
            if (id != d.EosId) g.SetUInt32("tokenizer.ggml.eot_token_id", (uint)id);
        }
        return null;
    }
}
