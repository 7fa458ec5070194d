// Writes a model as a Hugging Face folder transformers opens: config.json, model.safetensors (F32, F16 or BF16;
// above 5 GB split into model-0000i-of-0000n.safetensors with model.safetensors.index.json), tokenizer.json,
// tokenizer_config.json (special tokens, add_bos_token, chat_template) and generation_config.json (bos / eos ids).
// - gpt2 (learned positions): GPT2LMHeadModel's names with "transformer.", Conv1D matrices stored [in, out]
//   (transposed), n_inner, gelu_new; lm_head.weight only when untied.
// - RoPE models: llama / mistral / qwen2 (model_type from the spec's arch; Quill's other RoPE models as llama), the
//   HF names, q and k rows in Hugging Face's half pairing (an interleaved model's rows are permuted back: the
//   inverse of GgufExport.RowOrder), Llama 3 / linear rope_scaling, head_dim, attention_bias (a Llama with q/k/v
//   biases gets a zero o_proj bias, as attention_bias implies one).
// The tokenizer: byte-level BPE as HfTokenizerJson writes it; SentencePiece and char tokenizers as a
// SentencePiece-style BPE (VocabularyExport describes a char vocabulary as one); others leave tokenizer.json out
// and say so. Each file is written atomically and tensors are converted one at a time as they are written.
// - OLMo 2 (Olmo2ForCausalLM): post_attention_layernorm / post_feedforward_layernorm, no input norms.
// - mixtures of experts: Mixtral (MixtralForCausalLM, block_sparse_moe) or, with q/k norms, Qwen3-MoE
//   (Qwen3MoeForCausalLM, mlp.experts), one tensor per expert.
// Does not handle: block-quantized output (HF holds floats: use GGUF), phi3, per-pair rope_freqs without Llama 3
// parameters (a GGUF-only form), partial rotary outside phi3, MLP or output biases on RoPE models.
using System.Text.Json.Nodes;
using Quill.Formats.SafeTensors;
using Quill.Kernels;
using Quill.Models;
using Quill.Tensors;
using Quill.Tokenization;

namespace Quill.Inference;

/// <summary>Writes Hugging Face model folders.</summary>
public static class HfExport
{
    /// <summary>Shard size above which model.safetensors is split (transformers' default max_shard_size).</summary>
    public const long DefaultShardBytes = 5_000_000_000;

    /// <summary>Writes <paramref name="model"/> into folder <paramref name="dir"/> as <paramref name="dtype"/>; returns a report.</summary>
    public static ExportReport Write(InferenceModel model, string dir, SafeTensorDtype dtype, IProgress<ExportProgress>? progress = null, long shardBytes = DefaultShardBytes)
    {
        ArgumentNullException.ThrowIfNull(model);
        model.RefusingAdapter("export it");
        ArgumentNullException.ThrowIfNull(dir);
        if (dtype is not (SafeTensorDtype.F32 or SafeTensorDtype.F16 or SafeTensorDtype.BF16))
            throw new InvalidConfigException($"--dtype {SafeTensorDtypes.HeaderName(dtype).ToLowerInvariant()}: Hugging Face safetensors hold f32, f16 or bf16; use --format gguf for quantized types.");
        var w = model.Weights;
        var s = w.Spec;
        bool gpt2 = s.Positions == PositionKind.Learned;
        string arch = gpt2 ? "gpt2" : s.PostNorms && !s.PreNorms ? "olmo2" : s.PostNorms ? (s.QkNorm ? "gemma3_text" : "gemma2") : s.IsMoe ? MoeModelType(s, model.Source)
            : s.QkNorm ? "qwen3" : s.Arch is "mistral" or "qwen2" ? s.Arch : "llama";
        Check(s, gpt2, model.Source);
        if (File.Exists(dir)) throw new QuillException($"{dir} is a file; --out for --format hf names a folder.");
        Directory.CreateDirectory(dir);

        var tensors = gpt2 ? Gpt2Tensors(w) : RopeTensors(w, arch);
        int size = dtype == SafeTensorDtype.F32 ? 4 : 2;
        var shards = new List<List<DeferredSafeTensor>> { new() };
        long current = 0, total = 0;
        foreach (var t in tensors)
        {
            long bytes = t.Shape.Aggregate(1L, (a, b) => a * b) * size;
            if (current > 0 && current + bytes > shardBytes)
            {
                shards.Add([]);
                current = 0;
            }
            shards[^1].Add(t);
            current += bytes;
            total += bytes;
        }
        int done = 0;
        var weightMap = new JsonObject();
        for (int i = 0; i < shards.Count; i++)
        {
            string file = shards.Count == 1 ? "model.safetensors" : $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            var counted = shards[i].Select(t => t with
            {
                Produce = () =>
                {
                    var data = t.Produce();
                    progress?.Report(new ExportProgress(++done, tensors.Count, t.Name, 0));
                    return data;
                },
            });
            SafeTensorsWriter.WriteDeferred(Path.Combine(dir, file), counted, new Dictionary<string, string> { ["format"] = "pt" }, dtype);
            foreach (var t in shards[i]) weightMap[t.Name] = file;
        }
        if (shards.Count > 1)
        {
            var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = total }, ["weight_map"] = weightMap };
            AtomicFile.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"), index.ToJsonString(Indented));
        }
        else
        {
            File.Delete(Path.Combine(dir, "model.safetensors.index.json"));
        }
        string? note = WriteTokenizer(model, dir);
        var (bos, eos) = SpecialIds(model);
        AtomicFile.WriteAllText(Path.Combine(dir, "config.json"), Config(s, w.Tied, arch, dtype, bos, eos).ToJsonString(Indented));
        var gen = new JsonObject { ["_from_model_config"] = true };
        if (bos >= 0) gen["bos_token_id"] = bos;
        var stops = new List<int>();
        if (eos >= 0) stops.Add(eos);
        stops.AddRange(model.ExtraStopIds.Where(id => id != eos));
        if (stops.Count == 1) gen["eos_token_id"] = stops[0];
        else if (stops.Count > 1) gen["eos_token_id"] = new JsonArray([.. stops.Select(x => (JsonNode)x)]);
        AtomicFile.WriteAllText(Path.Combine(dir, "generation_config.json"), gen.ToJsonString(Indented));
        long written = Directory.EnumerateFiles(dir).Sum(f => new FileInfo(f).Length);
        var types = new Dictionary<Quantization.GgmlType, int>
        {
            [dtype switch { SafeTensorDtype.F16 => Quantization.GgmlType.F16, SafeTensorDtype.BF16 => Quantization.GgmlType.BF16, _ => Quantization.GgmlType.F32 }] = tensors.Count,
        };
        return new ExportReport(Path.GetFullPath(dir), arch, written, tensors.Count, types, note);
    }

    private static readonly System.Text.Json.JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>A mixture of experts is written as Mixtral (renormalized gates, no q/k norms) or Qwen3-MoE (q/k norms).</summary>
    private static string MoeModelType(ModelSpec s, string source)
    {
        if (s.QkNorm) return "qwen3_moe";
        if (!s.NormTopK || s.QkvBias)
            throw new QuillException($"{source}: a mixture of experts without q/k norms is written as Mixtral, which renormalizes the chosen experts' weights and has no q/k/v biases; the Hugging Face format Quill writes cannot express this model.");
        return "mixtral";
    }

    private static void Check(ModelSpec s, bool gpt2, string source)
    {
        void Fail(string why) => throw new QuillException($"{source}: {why}; the Hugging Face format Quill writes cannot express this model.");
        if (gpt2)
        {
            if (s.Norm != NormKind.LayerNorm || s.Mlp != MlpKind.Gelu || !s.NormBias || !s.QkvBias || !s.OutBias || !s.MlpBias)
                Fail("GPT-2 needs LayerNorm with biases, a GELU MLP and biases on every projection");
            return;
        }
        if (s.PostNorms && !s.PreNorms)
        {
            if (s.Mlp != MlpKind.SwiGlu || !s.QkNormWhole || s.EmbedScale || s.QkvBias || s.NormWeightOffset != 0 || s.IsMoe)
                Fail("norms only after attention and the MLP are written as OLMo 2, which needs SwiGLU, whole-width q/k norms and no biases");
        }
        else if (s.PostNorms)
        {
            if (s.Norm != NormKind.RmsNorm || s.Mlp != MlpKind.GeGlu || !s.EmbedScale || s.NormWeightOffset != 1 || s.QkvBias)
                Fail("post-norms are written as Gemma, which needs RMSNorm (1 + w), GeGLU, the scaled embedding and no biases");
            if (s.QkNorm ? s.SlidingPattern < 1 || s.AttnSoftcap != 0 || s.FinalSoftcap != 0 : s.SlidingPattern != 2 || s.RopeThetaLocal != 0)
                Fail("Gemma 2 alternates local and global layers (pattern 2, one RoPE base); Gemma 3 has a pattern and no soft-caps");
        }
        else if (s.Norm != NormKind.RmsNorm || s.Mlp != MlpKind.SwiGlu || s.EmbedScale || s.AttnSoftcap != 0 || s.FinalSoftcap != 0 || s.AttentionScale != 0)
        {
            Fail("a RoPE model needs RMSNorm and a SwiGLU MLP");
        }
        if (s.MlpBias || s.OutBias) Fail("MLP or attention-output biases");
        if (s.EffectiveRotaryDim != s.HeadDim) Fail("partial rotary dims");
        if (s.RopeFreqFactors != null && s.RopeScaling == null) Fail("per-pair rope_freqs divisors (a GGUF form of Llama 3 scaling without its parameters)");
        if (s.RopeScaling != null && s.RopeLinearFactor != 1.0) Fail("both Llama 3 and linear RoPE scaling");
    }

    private static JsonObject Config(ModelSpec s, bool tied, string arch, SafeTensorDtype dtype, int bos, int eos)
    {
        string torchDtype = dtype switch { SafeTensorDtype.F16 => "float16", SafeTensorDtype.BF16 => "bfloat16", _ => "float32" };
        JsonObject c;
        if (arch == "gpt2")
        {
            c = new JsonObject
            {
                ["architectures"] = new JsonArray("GPT2LMHeadModel"),
                ["model_type"] = "gpt2",
                ["vocab_size"] = s.VocabSize,
                ["n_positions"] = s.MaxContext,
                ["n_ctx"] = s.MaxContext,
                ["n_embd"] = s.Dim,
                ["n_layer"] = s.Layers,
                ["n_head"] = s.Heads,
                ["n_inner"] = s.Hidden,
                ["activation_function"] = "gelu_new",
                ["layer_norm_epsilon"] = s.NormEps,
            };
        }
        else
        {
            string cls = arch switch
            {
                "mistral" => "MistralForCausalLM", "qwen2" => "Qwen2ForCausalLM", "qwen3" => "Qwen3ForCausalLM",
                "gemma2" => "Gemma2ForCausalLM", "gemma3_text" => "Gemma3ForCausalLM", "mixtral" => "MixtralForCausalLM",
                "qwen3_moe" => "Qwen3MoeForCausalLM", "olmo2" => "Olmo2ForCausalLM", _ => "LlamaForCausalLM",
            };
            c = new JsonObject
            {
                ["architectures"] = new JsonArray(cls),
                ["model_type"] = arch,
                ["vocab_size"] = s.VocabSize,
                ["hidden_size"] = s.Dim,
                ["intermediate_size"] = s.Hidden,
                ["num_hidden_layers"] = s.Layers,
                ["num_attention_heads"] = s.Heads,
                ["num_key_value_heads"] = s.KvHeads,
                ["head_dim"] = s.HeadDim,
                ["max_position_embeddings"] = s.MaxContext,
                ["rms_norm_eps"] = s.NormEps,
                ["rope_theta"] = s.RopeTheta,
                ["hidden_act"] = s.Mlp == MlpKind.GeGlu ? "gelu_pytorch_tanh" : "silu",
            };
            if (s.IsGemma)
            {
                // Gemma: query_pre_attn_scalar is the inverse square of the score scale; layers slide but every n-th
                c["hidden_activation"] = "gelu_pytorch_tanh";
                c["query_pre_attn_scalar"] = Math.Round(1.0 / ((double)s.EffectiveAttentionScale * s.EffectiveAttentionScale), 3);
                c["sliding_window"] = s.SlidingWindow > 0 ? s.SlidingWindow : s.MaxContext;
                c["attention_bias"] = false;
                if (arch == "gemma2")
                {
                    c["attn_logit_softcapping"] = s.AttnSoftcap > 0 ? s.AttnSoftcap : null;
                    c["final_logit_softcapping"] = s.FinalSoftcap > 0 ? s.FinalSoftcap : null;
                }
                else
                {
                    c["sliding_window_pattern"] = s.SlidingPattern;
                    c["layer_types"] = new JsonArray([.. Enumerable.Range(0, s.Layers).Select(i => (JsonNode)((i + 1) % s.SlidingPattern == 0 ? "full_attention" : "sliding_attention"))]);
                    c["rope_local_base_freq"] = s.RopeThetaLocal > 0 ? s.RopeThetaLocal : s.RopeTheta;
                    c["attn_logit_softcapping"] = null;
                    c["final_logit_softcapping"] = null;
                }
            }
            if (arch == "llama")
            {
                c["attention_bias"] = s.QkvBias;
                c["mlp_bias"] = false;
            }
            if (arch == "mistral") c["sliding_window"] = s.SlidingWindow > 0 ? s.SlidingWindow : null;
            if (arch is "qwen2" or "qwen3") c["use_sliding_window"] = false;
            if (arch is "qwen3" or "qwen3_moe" or "olmo2") c["attention_bias"] = s.QkvBias;
            if (arch == "mixtral")
            {
                c["num_local_experts"] = s.Experts;
                c["num_experts_per_tok"] = s.ExpertsUsed;
                c["sliding_window"] = s.SlidingWindow > 0 ? s.SlidingWindow : null;
                c["router_aux_loss_coef"] = 0.0;
            }
            if (arch == "qwen3_moe")
            {
                c["num_experts"] = s.Experts;
                c["num_experts_per_tok"] = s.ExpertsUsed;
                c["moe_intermediate_size"] = s.Hidden;
                c["norm_topk_prob"] = s.NormTopK;
                c["decoder_sparse_step"] = 1;
                c["mlp_only_layers"] = new JsonArray();
                c["use_sliding_window"] = false;
            }
            if (s.RopeScaling is { } l3)
            {
                c["rope_scaling"] = new JsonObject
                {
                    ["rope_type"] = "llama3", ["factor"] = l3.Factor, ["low_freq_factor"] = l3.LowFreqFactor,
                    ["high_freq_factor"] = l3.HighFreqFactor, ["original_max_position_embeddings"] = l3.OriginalMaxPositions,
                };
            }
            else if (s.RopeLinearFactor != 1.0)
            {
                c["rope_scaling"] = new JsonObject { ["rope_type"] = "linear", ["type"] = "linear", ["factor"] = s.RopeLinearFactor };
            }
        }
        c["tie_word_embeddings"] = tied;
        if (bos >= 0) c["bos_token_id"] = bos;
        if (eos >= 0) c["eos_token_id"] = eos;
        c["torch_dtype"] = torchDtype;
        return c;
    }

    private static (int Bos, int Eos) SpecialIds(InferenceModel model) => model.Tokenizer is { } t ? (t.BosId, t.EosId) : (-1, -1);

    private static DeferredSafeTensor Floats(string name, float[] v) => new(name, [v.Length], () => v);

    private static DeferredSafeTensor Matrix(string name, WeightMatrix m, int[]? order = null, bool transpose = false) =>
        new(name, transpose ? [m.Cols, m.Rows] : [m.Rows, m.Cols], () =>
        {
            float[] f = m.Type == Quantization.GgmlType.F32 && order == null && !transpose ? m.Floats.ToArray() : m.ToFloats();
            if (order != null)
            {
                var o = new float[f.Length];
                for (int r = 0; r < m.Rows; r++) f.AsSpan(order[r] * m.Cols, m.Cols).CopyTo(o.AsSpan(r * m.Cols));
                f = o;
            }
            if (transpose)
            {
                var t = new float[f.Length];
                for (int r = 0; r < m.Rows; r++)
                {
                    for (int c = 0; c < m.Cols; c++) t[c * m.Rows + r] = f[r * m.Cols + c];
                }
                f = t;
            }
            return f;
        });

    private static List<DeferredSafeTensor> Gpt2Tensors(ModelWeights w)
    {
        var s = w.Spec;
        var n = TensorNames.NanoGpt;
        var list = new List<DeferredSafeTensor>
        {
            Matrix(n.Name(WeightSlot.TokenEmbedding)!, w.TokenEmbedding),
            new(n.Name(WeightSlot.PositionEmbedding)!, [s.MaxContext, s.Dim], () => w.PositionEmbedding.AsMemory(0, s.MaxContext * s.Dim)),
        };
        for (int i = 0; i < s.Layers; i++)
        {
            var l = w.Layers[i];
            var qkv = l.Wqkv ?? WeightMatrix.FromFloats("c_attn", [.. l.Wq!.ToFloats(), .. l.Wk!.ToFloats(), .. l.Wv!.ToFloats()], s.QkvDim, s.Dim);
            list.Add(Floats(n.Name(WeightSlot.AttnNorm, i)!, l.AttnNorm!));
            list.Add(Floats(n.Name(WeightSlot.AttnNormBias, i)!, l.AttnNormBias!));
            list.Add(Matrix(n.Name(WeightSlot.Qkv, i)!, qkv, transpose: true));
            list.Add(Floats(n.Name(WeightSlot.QkvBias, i)!, l.QkvBias!));
            list.Add(Matrix(n.Name(WeightSlot.O, i)!, l.Wo, transpose: true));
            list.Add(Floats(n.Name(WeightSlot.OBias, i)!, l.WoBias!));
            list.Add(Floats(n.Name(WeightSlot.MlpNorm, i)!, l.MlpNorm!));
            list.Add(Floats(n.Name(WeightSlot.MlpNormBias, i)!, l.MlpNormBias!));
            list.Add(Matrix(n.Name(WeightSlot.Up, i)!, l.Up!, transpose: true));
            list.Add(Floats(n.Name(WeightSlot.UpBias, i)!, l.UpBias!));
            list.Add(Matrix(n.Name(WeightSlot.Down, i)!, l.Down!, transpose: true));
            list.Add(Floats(n.Name(WeightSlot.DownBias, i)!, l.DownBias!));
        }
        list.Add(Floats(n.Name(WeightSlot.FinalNorm)!, w.FinalNorm));
        list.Add(Floats(n.Name(WeightSlot.FinalNormBias)!, w.FinalNormBias!));
        if (!w.Tied) list.Add(Matrix(n.Name(WeightSlot.Head)!, w.Classifier));
        return list;
    }

    private static List<DeferredSafeTensor> RopeTensors(ModelWeights w, string arch)
    {
        var s = w.Spec;
        var n = TensorNames.ForHf(s);
        // Gemma's files hold each RMSNorm weight as gamma - 1 (its norms multiply by 1 + w)
        float[] Norm(float[] v) => s.NormWeightOffset == 0 ? v : [.. v.Select(x => x - s.NormWeightOffset)];
        bool unpermute = s.RopeStyle == RopeStyle.Interleaved;
        int[]? qOrder = unpermute ? GgufExport.Inverse(GgufExport.RowOrder(s, s.Heads)) : null;
        int[]? kOrder = unpermute ? GgufExport.Inverse(GgufExport.RowOrder(s, s.KvHeads)) : null;
        float[] Reorder(float[] v, int[]? order) => order == null ? v : order.Select(r => v[r]).ToArray();
        var list = new List<DeferredSafeTensor> { Matrix(n.Name(WeightSlot.TokenEmbedding)!, w.TokenEmbedding) };
        for (int i = 0; i < s.Layers; i++)
        {
            var l = w.Layers[i];
            WeightMatrix q = l.Wq ?? l.Wqkv!.SliceRows("q", 0, s.QDim), k = l.Wk ?? l.Wqkv!.SliceRows("k", s.QDim, s.KvDim), v = l.Wv ?? l.Wqkv!.SliceRows("v", s.QDim + s.KvDim, s.KvDim);
            if (l.AttnNorm is { } an) list.Add(Floats(n.Name(WeightSlot.AttnNorm, i)!, Norm(an)));
            list.Add(Matrix(n.Name(WeightSlot.Q, i)!, q, qOrder));
            list.Add(Matrix(n.Name(WeightSlot.K, i)!, k, kOrder));
            list.Add(Matrix(n.Name(WeightSlot.V, i)!, v));
            if (l.QkvBias is { } b)
            {
                list.Add(Floats(n.Name(WeightSlot.QBias, i)!, Reorder(b[..s.QDim], qOrder)));
                list.Add(Floats(n.Name(WeightSlot.KBias, i)!, Reorder(b[s.QDim..(s.QDim + s.KvDim)], kOrder)));
                list.Add(Floats(n.Name(WeightSlot.VBias, i)!, b[(s.QDim + s.KvDim)..]));
            }
            if (l.QNorm is { } qn) list.Add(Floats(n.Name(WeightSlot.QNorm, i)!, Norm(qn)));
            if (l.KNorm is { } kn) list.Add(Floats(n.Name(WeightSlot.KNorm, i)!, Norm(kn)));
            list.Add(Matrix(n.Name(WeightSlot.O, i)!, l.Wo));
            if (l.QkvBias != null && arch == "llama") list.Add(Floats(n.Name(WeightSlot.OBias, i)!, new float[s.Dim]));
            if (l.AttnPostNorm is { } apn) list.Add(Floats(n.Name(WeightSlot.AttnPostNorm, i)!, Norm(apn)));
            if (l.MlpNorm is { } mn) list.Add(Floats(n.Name(WeightSlot.MlpNorm, i)!, Norm(mn)));
            if (l.MlpPostNorm is { } mpn) list.Add(Floats(n.Name(WeightSlot.MlpPostNorm, i)!, Norm(mpn)));
            if (l.Experts is { } x)
            {
                list.Add(Matrix(n.Name(WeightSlot.Router, i)!, x.Router));
                for (int e = 0; e < x.Count; e++)
                {
                    list.Add(Matrix(n.ExpertName(WeightSlot.ExpertGate, i, e)!, x.Gate[e]));
                    list.Add(Matrix(n.ExpertName(WeightSlot.ExpertUp, i, e)!, x.Up[e]));
                    list.Add(Matrix(n.ExpertName(WeightSlot.ExpertDown, i, e)!, x.Down[e]));
                }
                continue;
            }
            list.Add(Matrix(n.Name(WeightSlot.Gate, i)!, l.Gate!));
            list.Add(Matrix(n.Name(WeightSlot.Up, i)!, l.Up!));
            list.Add(Matrix(n.Name(WeightSlot.Down, i)!, l.Down!));
        }
        list.Add(Floats(n.Name(WeightSlot.FinalNorm)!, Norm(w.FinalNorm)));
        if (!w.Tied) list.Add(Matrix(n.Name(WeightSlot.Head)!, w.Classifier));
        return list;
    }

    /// <summary>Writes tokenizer.json and tokenizer_config.json; returns a note when there is no tokenizer.json.</summary>
    private static string? WriteTokenizer(InferenceModel model, string dir)
    {
        string? note = null;
        var tok = model.Tokenizer;
        string json = Path.Combine(dir, "tokenizer.json");
        if (tok is BpeTokenizer { HasMergeList: true } bpe) HfTokenizerJson.Save(bpe, json);
        else if (tok == null) note = "the model has no tokenizer";
        else if (VocabularyExport.Describe(tok, model.Spec.VocabSize, model.Source, out string why) is { Kind: VocabularyKind.SentencePieceBpe } d) HfTokenizerJson.Save(d, json);
        else note = why.Length > 0 ? why : $"a {tok.Family} tokenizer has no tokenizer.json form Quill writes";
        var cfg = new JsonObject
        {
            ["tokenizer_class"] = "PreTrainedTokenizerFast",
            ["model_max_length"] = model.Spec.MaxContext,
            ["clean_up_tokenization_spaces"] = false,
            ["add_bos_token"] = model.AddBos && tok?.BosId >= 0,
            ["add_eos_token"] = false,
        };
        string? Text(int id) => tok != null && id >= 0 ? tok.Decode([id]) : null;
        if (Text(tok?.BosId ?? -1) is { } b) cfg["bos_token"] = b;
        if (Text(tok?.EosId ?? -1) is { } e) cfg["eos_token"] = e;
        if (model.ChatTemplate is { } tpl) cfg["chat_template"] = tpl;
        AtomicFile.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), cfg.ToJsonString(Indented));
        return note;
    }
}
