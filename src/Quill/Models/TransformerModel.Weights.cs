// TransformerModel to and from the inference engine's ModelWeights: FromWeights (a trainable f32 copy of loaded
// weights, dequantizing), QuantizedBase (a frozen QLoRA base viewing the weights' memory in its block type, or
// quantized in memory from a float base) and ToWeights (views of the parameters, no matrix copied).
using Quill.Quantization;
using Quill.Tensors;

namespace Quill.Models;

public sealed partial class TransformerModel
{
    /// <summary>A trainable f32 copy of loaded weights, with the given config (from ModelConfig.FromSpec).</summary>
    internal static TransformerModel FromWeights(ModelWeights w, ModelConfig config)
    {
        var spec = w.Spec;
        var m = new TransformerModel(config, spec);
        Copy(w.TokenEmbedding, m.embed);
        for (int i = 0; i < spec.Layers; i++)
        {
            var src = w.Layers[i];
            var l = m.layers[i];
            float[] qkv = src.Wqkv?.ToFloats() ?? [.. src.Wq!.ToFloats(), .. src.Wk!.ToFloats(), .. src.Wv!.ToFloats()];
            int off = 0;
            foreach (var p in l.Qkv)
            {
                qkv.AsSpan(off, p.Length).CopyTo(p.Span);
                off += p.Length;
            }
            Copy(src.Wo, l.Wo);
            if (l.Gate != null) Copy(src.Gate!, l.Gate);
            if (l.Up != null) Copy(src.Up!, l.Up);
            if (l.Down != null) Copy(src.Down!, l.Down);
            if (src.Experts is { } x)
            {
                Copy(x.Router, l.Router!);
                for (int e = 0; e < x.Count; e++)
                {
                    Copy(x.Gate[e], l.ExpertGate![e]);
                    Copy(x.Up[e], l.ExpertUp![e]);
                    Copy(x.Down[e], l.ExpertDown![e]);
                }
            }
            w.ReleaseResidentPages(); // the layer is copied: its file pages need not stay resident
        }
        if (!spec.TiedEmbeddings) Copy(w.Classifier, m.head);
        m.CopyVectors(w);
        w.ReleaseResidentPages();
        return m;
    }

    /// <summary>
    /// A frozen QLoRA base over loaded weights (see LanguageModel.QuantizedBase): block-typed matrices are viewed in
    /// place; when no layer matrix is block-typed (an F32 / F16 / BF16 base), the layer matrices and the head (the
    /// table itself when tied) are quantized to <paramref name="floatType"/> in memory, row by row, where their rows
    /// are whole blocks, and viewed as stored otherwise; an untied token embedding is viewed as stored. Norms,
    /// biases and positions are small f32 copies. Every parameter is frozen. The weights must stay undisposed while
    /// the model is used; the mapped pages of converted matrices are dropped from resident memory as it goes.
    /// </summary>
    internal static TransformerModel QuantizedBase(ModelWeights w, ModelConfig config, GgmlType floatType)
    {
        var spec = w.Spec;
        if (spec.IsMoe) throw new InvalidConfigException($"{w.Source}: QLoRA on a mixture of experts is not supported yet; use LoRA (an f32 base) or a full fine-tune.");
        int block = GgmlTypeInfo.BlockSize(floatType);
        bool quantize = !w.Layers.SelectMany(l => l.Matrices()).Any(x => GgmlTypeInfo.IsBlockType(x.Type));
        if (quantize && !w.Layers.SelectMany(l => l.Matrices()).Any(x => x.Cols % block == 0))
            throw new InvalidConfigException($"{w.Source}: no weight matrix has rows of whole {floatType} blocks ({block} values; the rows hold {spec.Dim}, {spec.QDim} or {spec.Hidden}), so QLoRA would quantize nothing; use another type or LoRA.");
        var done = new Dictionary<WeightMatrix, Tensor>(ReferenceEqualityComparer.Instance);
        Tensor View(WeightMatrix x, bool convert)
        {
            if (done.TryGetValue(x, out var t)) return t;
            var v = convert && quantize && !GgmlTypeInfo.IsBlockType(x.Type) && x.Cols % block == 0 ? x.ConvertTo(floatType) : x;
            if (!ReferenceEquals(v, x)) w.ReleaseResidentPages(); // converted: the float pages need not stay resident
            t = v.AsTensor();
            done[x] = t;
            return t;
        }
        Tensor Qkv(LayerWeights l, WeightSlot slot)
        {
            if (slot == WeightSlot.Qkv) return l.Wqkv != null ? View(l.Wqkv, true) : Concat(View(l.Wq!, true), View(l.Wk!, true), View(l.Wv!, true));
            if (l.Wqkv == null) return View(slot == WeightSlot.Q ? l.Wq! : slot == WeightSlot.K ? l.Wk! : l.Wv!, true);
            var all = View(l.Wqkv, true); // a fused source under a split model (phi3): row views
            return slot == WeightSlot.Q ? all.Narrow(0, 0, spec.QDim) : slot == WeightSlot.K ? all.Narrow(0, spec.QDim, spec.KvDim) : all.Narrow(0, spec.QDim + spec.KvDim, spec.KvDim);
        }
        Tensor? Provide(WeightSlot slot, int i)
        {
            if (i < 0) return slot == WeightSlot.TokenEmbedding ? View(w.TokenEmbedding, convert: spec.TiedEmbeddings) : View(w.Classifier, true);
            var l = w.Layers[i];
            return slot switch
            {
                WeightSlot.Qkv or WeightSlot.Q or WeightSlot.K or WeightSlot.V => Qkv(l, slot),
                WeightSlot.O => View(l.Wo, true),
                WeightSlot.Gate => View(l.Gate!, true),
                WeightSlot.Up => View(l.Up!, true),
                WeightSlot.Down => View(l.Down!, true),
                _ => null,
            };
        }
        var m = new TransformerModel(config, spec, Provide);
        m.CopyVectors(w);
        foreach (var p in m.Parameters) ParameterSet.Freeze(p);
        return m;
    }

    /// <summary>q, k and v of one type as one fused [QkvDim, C] tensor of that type (a pinned copy of their bytes).</summary>
    private static Tensor Concat(params Tensor[] parts)
    {
        if (parts.Any(p => p.DType != parts[0].DType))
            throw new InvalidFileException($"{parts[0].Name}: q, k and v are stored in different types ({string.Join(", ", parts.Select(p => p.DType))}); a fused c_attn needs one.");
        byte[] all = GC.AllocateUninitializedArray<byte>(parts.Sum(p => p.Bytes.Length), pinned: true);
        int off = 0;
        foreach (var p in parts)
        {
            p.Bytes.CopyTo(all.AsSpan(off));
            off += p.Bytes.Length;
        }
        unsafe
        {
            return Tensor.FromMemory((nint)System.Runtime.CompilerServices.Unsafe.AsPointer(ref all[0]), parts[0].DType, [parts.Sum(p => p.Dim(0)), parts[0].Dim(1)], all);
        }
    }

    /// <summary>Copies the norms, biases and learned positions of w into this model's (owned, f32) parameters.</summary>
    private void CopyVectors(ModelWeights w)
    {
        if (positions != null) w.PositionEmbedding.AsSpan(0, positions.Length).CopyTo(positions.Span);
        for (int i = 0; i < layers.Length; i++)
        {
            var src = w.Layers[i];
            var l = layers[i];
            src.AttnNorm?.CopyTo(l.AttnNorm!.Span);
            src.AttnNormBias?.CopyTo(l.AttnNormBias!.Span);
            if (src.QkvBias != null)
            {
                int off = 0;
                foreach (var p in l.QkvBias!)
                {
                    src.QkvBias.AsSpan(off, p!.Length).CopyTo(p.Span);
                    off += p.Length;
                }
            }
            src.QNorm?.CopyTo(l.QNorm!.Span);
            src.KNorm?.CopyTo(l.KNorm!.Span);
            src.WoBias?.CopyTo(l.WoBias!.Span);
            src.AttnPostNorm?.CopyTo(l.AttnPostNorm!.Span);
            src.MlpPostNorm?.CopyTo(l.MlpPostNorm!.Span);
            src.MlpNorm?.CopyTo(l.MlpNorm!.Span);
            src.MlpNormBias?.CopyTo(l.MlpNormBias!.Span);
            src.UpBias?.CopyTo(l.UpBias!.Span);
            src.DownBias?.CopyTo(l.DownBias!.Span);
        }
        w.FinalNorm.CopyTo(finalNorm.Span);
        w.FinalNormBias?.CopyTo(finalNormBias!.Span);
    }

    private static void Copy(WeightMatrix src, Tensor dst)
    {
        for (int r = 0; r < src.Rows; r++) src.ReadRow(r, dst.Span.Slice(r * src.Cols, src.Cols));
    }

    /// <summary>
    /// The parameters as ModelWeights for the inference engine: matrices, norms, norm biases and positions are views
    /// of the parameter storage (training further changes what the engine sees); the q|k|v bias of a model with
    /// separate q, k, v biases is concatenated into a copy (take a new view after training on). A model carrying a
    /// LoRA adapter is refused (the engine runs no adapter): merge it first (MergeLora).
    /// </summary>
    public override ModelWeights ToWeights()
    {
        if (lora != null) throw new InvalidConfigException("the model carries a LoRA adapter, which the inference engine does not run; merge it first (MergeLora) and run the merged model.");
        return BaseWeights();
    }

    private ModelWeights BaseWeights()
    {
        var s = Spec;
        var ls = new LayerWeights[layers.Length];
        for (int i = 0; i < layers.Length; i++)
        {
            var l = layers[i];
            bool fused = l.Qkv.Length == 1;
            ls[i] = new LayerWeights
            {
                AttnNorm = l.AttnNorm?.Storage,
                AttnNormBias = l.AttnNormBias?.Storage,
                Wqkv = fused ? WeightMatrix.View(l.Qkv[0]) : null,
                Wq = fused ? null : WeightMatrix.View(l.Qkv[0]),
                Wk = fused ? null : WeightMatrix.View(l.Qkv[1]),
                Wv = fused ? null : WeightMatrix.View(l.Qkv[2]),
                QkvBias = l.QkvBias == null ? null : fused ? l.QkvBias[0]!.Storage : [.. l.QkvBias.SelectMany(b => b!.ToArray())],
                QNorm = l.QNorm?.Storage,
                KNorm = l.KNorm?.Storage,
                Wo = WeightMatrix.View(l.Wo),
                WoBias = l.WoBias?.Storage,
                AttnPostNorm = l.AttnPostNorm?.Storage,
                MlpPostNorm = l.MlpPostNorm?.Storage,
                MlpNorm = l.MlpNorm?.Storage,
                MlpNormBias = l.MlpNormBias?.Storage,
                Gate = l.Gate == null ? null : WeightMatrix.View(l.Gate),
                Up = l.Up == null ? null : WeightMatrix.View(l.Up),
                UpBias = l.UpBias?.Storage,
                Down = l.Down == null ? null : WeightMatrix.View(l.Down),
                DownBias = l.DownBias?.Storage,
                Experts = l.Router == null ? null : new ExpertWeights(WeightMatrix.View(l.Router),
                    [.. l.ExpertGate!.Select(WeightMatrix.View)], [.. l.ExpertUp!.Select(WeightMatrix.View)], [.. l.ExpertDown!.Select(WeightMatrix.View)]),
            };
        }
        var e = WeightMatrix.View(embed);
        var h = ReferenceEquals(head, embed) ? e : WeightMatrix.View(head);
        return new ModelWeights(s, e, positions?.Storage, ls, finalNorm.Storage, finalNormBias?.Storage, h, [], "model in memory");
    }
}
