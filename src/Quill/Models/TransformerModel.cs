// The trainable decoder-only transformer, built from a ModelSpec: every architecture Quill reads (GPT-2, Llama incl.
// Llama 3 scaling, Mistral, Mixtral, Qwen2, Qwen3, Qwen3-MoE, Phi-3 incl. LongRoPE, Gemma 2 and 3, OLMo 2, llama2.c) is
// this one class, its blocks picked by
// the spec's choices:
//   x = embed(tokens) (* sqrt(C): Gemma) (+ learned positions)
//   (packed rows, docStarts given: each token attends only within its document, and its position, learned or RoPE,
//   counts from its document's start, so a document gets what it would get alone in a row)
//   per layer: h = norm(x) (OLMo 2: h = x); qkv = h [Wq|Wk|Wv]^T (+ bias); q, k RMS-normalized per head (Qwen3,
//   Gemma 3) or over their whole width (OLMo 2); a = causal
//   attention (RoPE on q, k with the layer's base; GQA; the layer's sliding window; score scale and soft-cap);
//   x += post_norm(a Wo^T (+ b))   (post_norm: Gemma, OLMo 2, else identity)
//              h = norm(x); x += post_norm(down(act(gate(h)) * up(h)))  (act: silu, or gelu_tanh for Gemma's GeGLU)
//              or x += sum over the top-k experts of w_e down_e(silu(gate_e(h)) * up_e(h))  (Mixtral, Qwen3-MoE)
//              or x += down(gelu_tanh(up(h) + b)) + b
//   logits = norm(x) Head^T  (Head = the embedding when tied; soft-capped by c tanh(z / c): Gemma 2)
// Parameter names come from the file family's name table (TensorNames.ForQuillCheckpoint): nanoGPT for GPT-2 (fused
// c_attn), Hugging Face for the rest (separate q/k/v and gate/up), so checkpoints load in Quill and elsewhere.
// FromWeights makes a trainable f32 copy of loaded weights (dequantizing); QuantizedBase makes a frozen QLoRA base
// whose matrices are frozen tensors viewing the weights' memory in their stored block type (or quantized in memory
// from a float base), which LinearOp and EmbeddingOp run without widening; ToWeights views the parameters as
// ModelWeights for the inference engine, without copying matrices or norms.
// LoRA (AddLora / LoadLora): the base parameters are frozen and each adapted projection's output gets
// scaling * B(A(dropout(x))) added in place right after its LinearOp (LowRankAddOp, into its column block of the
// q|k|v buffer). Without an adapter the forward is the plain one: a null test per group of projections, nothing
// allocated.
// MergeLora folds the adapter into a new model; ToWeights refuses a model that carries one (the engine would run
// the base without it).
// Glossary: B batch, T time, C channels, Hq query heads, Hkv key/value heads, D head size, F MLP hidden, V vocab.
using Quill.Autograd;
using Quill.Autograd.Ops;
using Quill.Kernels;
using Quill.Quantization;
using Quill.Tensors;

namespace Quill.Models;

/// <summary>A transformer whose blocks follow a <see cref="ModelSpec"/>.</summary>
public sealed class TransformerModel : LanguageModel
{
    private readonly Tensor embed, finalNorm, head;
    private readonly Tensor? positions, finalNormBias;
    private readonly Layer[] layers;
    private readonly RopeTables? rope, ropeLocal, ropeShort;
    private readonly AttentionMask?[] masks;
    private readonly TensorNames names;
    private LoraAdapter? lora;

    /// <summary>
    /// A model of the spec with zero-filled parameters; <paramref name="frozen"/>, when given, supplies the matrices
    /// (slot, layer; layer -1 for the embedding and head) as existing tensors added frozen (a QLoRA base), or null
    /// for a slot the model owns.
    /// </summary>
    internal TransformerModel(ModelConfig config, ModelSpec spec, Func<WeightSlot, int, Tensor?>? frozen = null) : base(config, spec)
    {
        spec.Validate(config.Arch);
        names = TensorNames.ForQuillCheckpoint(spec);
        int c = spec.Dim, f = spec.Hidden;
        bool fused = names.Name(WeightSlot.Q, 0) == null; // GPT-2 keeps one c_attn
        string G(WeightSlot s) => names.Name(s)!;
        string N(WeightSlot s, int i) => names.Name(s, i) ?? throw new InvalidOperationException($"{names.Family} names no {s}.");
        var ps = Parameters;
        Tensor M(WeightSlot slot, int i, ParameterKind kind, int rows, int cols, bool residual = false)
        {
            string name = i < 0 ? G(slot) : N(slot, i);
            if (frozen?.Invoke(slot, i) is not { } t) return residual ? ps.AddResidualProjection(name, rows, cols) : ps.Add(name, kind, rows, cols);
            if (t.Rank != 2 || t.Dim(0) != rows || t.Dim(1) != cols)
                throw new InvalidFileException($"{name}: the weight is {Tensor.Describe(t.Shape)} but the spec needs [{rows}, {cols}].");
            return ps.AddFrozen(name, kind, t);
        }
        embed = M(WeightSlot.TokenEmbedding, -1, ParameterKind.Embedding, spec.VocabSize, c);
        if (spec.Positions == PositionKind.Learned) positions = ps.Add(G(WeightSlot.PositionEmbedding), ParameterKind.Embedding, spec.MaxContext, c);
        layers = new Layer[spec.Layers];
        for (int i = 0; i < spec.Layers; i++)
        {
            var l = new Layer();
            if (spec.PreNorms) l.AttnNorm = ps.Add(N(WeightSlot.AttnNorm, i), ParameterKind.Norm, c);
            if (spec.NormBias) l.AttnNormBias = ps.Add(N(WeightSlot.AttnNormBias, i), ParameterKind.Bias, c);
            if (fused)
            {
                l.Qkv = [M(WeightSlot.Qkv, i, ParameterKind.Matrix, spec.QkvDim, c)];
                if (spec.QkvBias) l.QkvBias = [ps.Add(N(WeightSlot.QkvBias, i), ParameterKind.Bias, spec.QkvDim)];
            }
            else
            {
                var q = M(WeightSlot.Q, i, ParameterKind.Matrix, spec.QDim, c);
                var qb = spec.QkvBias ? ps.Add(N(WeightSlot.QBias, i), ParameterKind.Bias, spec.QDim) : null;
                var k = M(WeightSlot.K, i, ParameterKind.Matrix, spec.KvDim, c);
                var kb = spec.QkvBias ? ps.Add(N(WeightSlot.KBias, i), ParameterKind.Bias, spec.KvDim) : null;
                var v = M(WeightSlot.V, i, ParameterKind.Matrix, spec.KvDim, c);
                var vb = spec.QkvBias ? ps.Add(N(WeightSlot.VBias, i), ParameterKind.Bias, spec.KvDim) : null;
                l.Qkv = [q, k, v];
                if (spec.QkvBias) l.QkvBias = [qb, kb, vb];
            }
            if (spec.QkNorm)
            {
                l.QNorm = ps.Add(N(WeightSlot.QNorm, i), ParameterKind.Norm, spec.QNormLength);
                l.KNorm = ps.Add(N(WeightSlot.KNorm, i), ParameterKind.Norm, spec.KNormLength);
            }
            l.Wo = M(WeightSlot.O, i, ParameterKind.Matrix, c, spec.QDim, residual: true);
            if (spec.OutBias) l.WoBias = ps.Add(N(WeightSlot.OBias, i), ParameterKind.Bias, c);
            if (spec.PostNorms) l.AttnPostNorm = ps.Add(N(WeightSlot.AttnPostNorm, i), ParameterKind.Norm, c);
            if (spec.PreNorms) l.MlpNorm = ps.Add(N(WeightSlot.MlpNorm, i), ParameterKind.Norm, c);
            if (spec.NormBias) l.MlpNormBias = ps.Add(N(WeightSlot.MlpNormBias, i), ParameterKind.Bias, c);
            if (spec.IsMoe)
            {
                if (frozen != null) throw new InvalidConfigException($"{config.Arch}: a frozen quantized base of a mixture of experts is not supported; fine-tune it with LoRA on an f32 base or fully.");
                l.Router = M(WeightSlot.Router, i, ParameterKind.Matrix, spec.Experts, c);
                Tensor Expert(WeightSlot slot, int e, int rows, int cols, bool residual = false)
                {
                    string name = names.ExpertName(slot, i, e)!;
                    return residual ? ps.AddResidualProjection(name, rows, cols) : ps.Add(name, ParameterKind.Matrix, rows, cols);
                }
                l.ExpertGate = new Tensor[spec.Experts];
                l.ExpertUp = new Tensor[spec.Experts];
                l.ExpertDown = new Tensor[spec.Experts];
                for (int e = 0; e < spec.Experts; e++)
                {
                    l.ExpertGate[e] = Expert(WeightSlot.ExpertGate, e, f, c);
                    l.ExpertUp[e] = Expert(WeightSlot.ExpertUp, e, f, c);
                    l.ExpertDown[e] = Expert(WeightSlot.ExpertDown, e, c, f, residual: true);
                }
            }
            else
            {
                if (spec.Mlp != MlpKind.Gelu) l.Gate = M(WeightSlot.Gate, i, ParameterKind.Matrix, f, c);
                l.Up = M(WeightSlot.Up, i, ParameterKind.Matrix, f, c);
                l.Down = M(WeightSlot.Down, i, ParameterKind.Matrix, c, f, residual: true);
            }
            if (spec.MlpBias) l.UpBias = ps.Add(N(WeightSlot.UpBias, i), ParameterKind.Bias, f);
            if (spec.MlpBias) l.DownBias = ps.Add(N(WeightSlot.DownBias, i), ParameterKind.Bias, c);
            if (spec.PostNorms) l.MlpPostNorm = ps.Add(N(WeightSlot.MlpPostNorm, i), ParameterKind.Norm, c);
            layers[i] = l;
        }
        finalNorm = ps.Add(G(WeightSlot.FinalNorm), ParameterKind.Norm, c);
        if (spec.NormBias) finalNormBias = ps.Add(G(WeightSlot.FinalNormBias), ParameterKind.Bias, c);
        head = spec.TiedEmbeddings ? embed : M(WeightSlot.Head, -1, ParameterKind.Matrix, spec.VocabSize, c);
        if (spec.UsesRope) rope = RopeFrequencies.Tables(spec, spec.MaxContext);
        if (spec.UsesRope && spec.LongRope is { } lr && spec.MaxContext > lr.OriginalMaxPositions)
            ropeShort = RopeFrequencies.Tables(spec, spec.MaxContext, reach: lr.OriginalMaxPositions); // LongRoPE's short factors
        if (spec.UsesRope && spec.RopeThetaLocal > 0) ropeLocal = RopeFrequencies.LocalTables(spec, spec.MaxContext);
        masks = new AttentionMask?[spec.Layers];
        for (int i = 0; i < spec.Layers; i++)
        {
            if (spec.LayerWindow(i) > 0 || spec.AttnSoftcap > 0) masks[i] = AttentionMask.Create(spec.LayerWindow(i), spec.AttnSoftcap);
        }
    }

    public override Tensor Forward(Graph g, int[] tokens, int b, int t, ulong dropoutSeed = 0, int[]? docStarts = null) =>
        Head(g, Hidden(g, tokens, b, t, dropoutSeed, docStarts));

    public override Tensor Head(Graph g, Tensor hidden)
    {
        var logits = LinearOp.Forward(g, hidden, head, null);                // [..., V]
        return Spec.FinalSoftcap > 0 ? SoftcapOp.Forward(g, logits, Spec.FinalSoftcap) : logits; // Gemma 2
    }

    public override Tensor Hidden(Graph g, int[] tokens, int b, int t, ulong dropoutSeed = 0, int[]? docStarts = null)
    {
        ArgumentNullException.ThrowIfNull(g);
        CheckInput(tokens, b, t);
        var s = Spec;
        var layerMasks = masks;
        if (docStarts != null)
        {
            // packed rows: every layer's mask gains the documents (the layers share the one array)
            var docs = AttentionMask.Documents(docStarts, b, t);
            layerMasks = new AttentionMask?[layers.Length];
            for (int i = 0; i < layers.Length; i++)
                layerMasks[i] = masks[i] is { } m ? AttentionMask.Documents(docs.DocStarts!, b, t, m.Window, m.Softcap) : docs;
        }
        var on = lora is { Enabled: true } adapter ? adapter : null; // an adapter switched off runs the plain base
        float p = Config.Dropout;
        var x = EmbeddingOp.Forward(g, embed, tokens, b, t);                  // [B, T, C]
        if (s.EmbedScale) x = ScaleOp.Forward(g, x, MathF.Sqrt(s.Dim));        // Gemma
        if (positions != null)
        {
            x = PositionAddOp.Forward(g, x, positions, docStarts);
            x = DropoutOp.Forward(g, x, p, Rng.Mix(dropoutSeed, 0));
        }
        for (int i = 0; i < layers.Length; i++)
        {
            g.Mark(i); // backward past here: layer i's gradients (and later layers') are complete
            var l = layers[i];
            var h = l.AttnNorm != null ? Norm(g, x, l.AttnNorm, l.AttnNormBias) : x; // OLMo 2: the stream itself
            var qkv = LinearOp.Forward(g, h, l.Qkv, l.QkvBias);                 // [B, T, (Hq + 2 Hkv) D]
            if (on != null)
            {
                Adapt(g, on, l.LoraQkv, qkv, 0, h, dropoutSeed, i);                 // GPT-2: all of c_attn
                Adapt(g, on, l.LoraQ, qkv, 0, h, dropoutSeed, i);                   // q | . | .
                Adapt(g, on, l.LoraK, qkv, s.QDim, h, dropoutSeed, i);              // . | k | .
                Adapt(g, on, l.LoraV, qkv, s.QDim + s.KvDim, h, dropoutSeed, i);    // . | . | v
            }
            if (l.QNorm != null) qkv = QkNormOp.Forward(g, qkv, l.QNorm, l.KNorm!, s.Heads, s.KvHeads, s.HeadDim, s.NormEps, s.QkNormWhole); // Qwen3, OLMo 2
            var layerRope = ropeLocal != null && s.LayerWindow(i) > 0 ? ropeLocal
                : ropeShort != null && t <= s.LongRope!.OriginalMaxPositions ? ropeShort : rope; // LongRoPE: short factors for short sequences, as transformers
            var att = AttentionOp.Forward(g, qkv, s.Heads, s.KvHeads, s.HeadDim, layerRope, layerMasks[i], s.EffectiveAttentionScale); // [B, T, Hq D]
            var a = LinearOp.Forward(g, att, l.Wo, l.WoBias);                  // [B, T, C]
            if (on != null) Adapt(g, on, l.LoraO, a, 0, att, dropoutSeed, i);
            // Gemma normalizes the output (its norm's backward reads a; the norm's output is what may go)
            var ap = l.AttnPostNorm != null ? RmsNormOp.Forward(g, a, l.AttnPostNorm, s.NormEps) : a;
            var ad = DropoutOp.Forward(g, ap, p, Rng.Mix(dropoutSeed, (ulong)i, 1));
            x = AddOp.Forward(g, x, ad);
            Discard(g, ap, ad);                                                 // add and dropout backward read no values
            h = l.MlpNorm != null ? Norm(g, x, l.MlpNorm, l.MlpNormBias) : x;
            if (l.Router != null)
            {
                var moe = Experts(g, l, h);                                     // [B, T, C]
                var md = DropoutOp.Forward(g, moe, p, Rng.Mix(dropoutSeed, (ulong)i, 2));
                x = AddOp.Forward(g, x, md);
                Discard(g, moe, md);
                continue;
            }
            Tensor m;
            if (l.Gate != null)
            {
                var gate = LinearOp.Forward(g, h, l.Gate, null);                // [B, T, F]
                var up = LinearOp.Forward(g, h, l.Up!, l.UpBias);               // [B, T, F]
                if (on != null)
                {
                    Adapt(g, on, l.LoraGate, gate, 0, h, dropoutSeed, i);
                    Adapt(g, on, l.LoraUp, up, 0, h, dropoutSeed, i);
                }
                m = s.Mlp == MlpKind.GeGlu ? GeGluOp.Forward(g, gate, up) : SwiGluOp.Forward(g, gate, up);
                if (l.MlpNorm != null && !Reads(l.Gate, l.LoraGate, on) && !Reads(l.Up!, l.LoraUp, on)) g.Discard(h); // the norm's backward reads its input, not h (without a norm h is the stream)
            }
            else
            {
                m = LinearOp.Forward(g, h, l.Up!, l.UpBias);                    // [B, T, F]
                if (on != null) Adapt(g, on, l.LoraUp, m, 0, h, dropoutSeed, i);
                if (!Reads(l.Up!, l.LoraUp, on)) g.Discard(h);
                m = GeluOp.Forward(g, m);
            }
            var d = LinearOp.Forward(g, m, l.Down!, l.DownBias);               // [B, T, C]
            if (on != null) Adapt(g, on, l.LoraDown, d, 0, m, dropoutSeed, i);
            if (!Reads(l.Down!, l.LoraDown, on)) g.Discard(m);                   // only a trained down projection reads its input
            var dp = l.MlpPostNorm != null ? RmsNormOp.Forward(g, d, l.MlpPostNorm, s.NormEps) : d; // Gemma
            var dd = DropoutOp.Forward(g, dp, p, Rng.Mix(dropoutSeed, (ulong)i, 2));
            x = AddOp.Forward(g, x, dd);
            Discard(g, dp, dd);
        }
        g.Mark(layers.Length); // backward past here: the final norm's and the head's gradients are complete
        return Norm(g, x, finalNorm, finalNormBias);                        // [B, T, C]
    }

    /// <summary>
    /// A layer's mixture of experts over h [B, T, C]: router logits, each token's top-k weights (MoeRouteOp), then per
    /// expert some token chose: its tokens' rows gathered, SwiGLU through the expert, and the outputs summed back
    /// weighted (MoeCombineOp). Experts no token chose do not run and get no gradient this step.
    /// </summary>
    private Tensor Experts(Graph g, Layer l, Tensor h)
    {
        var s = Spec;
        int k = s.ExpertsUsed;
        var logits = LinearOp.Forward(g, h, l.Router!, null);                 // [B, T, E]
        var weights = MoeRouteOp.Forward(g, logits, k, s.NormTopK, out int[] chosen); // [N, k]
        var outputs = new Tensor?[s.Experts];
        var picks = new int[]?[s.Experts];
        var rows = new List<int>[s.Experts];
        for (int i = 0; i < chosen.Length; i++) (rows[chosen[i]] ??= []).Add(i);
        for (int e = 0; e < s.Experts; e++)
        {
            if (rows[e] is not { } r) continue;
            picks[e] = [.. r];
            var xe = GatherRowsOp.Forward(g, h, [.. r.Select(i => i / k)]); // [m, C]
            var gate = LinearOp.Forward(g, xe, l.ExpertGate![e], null);      // [m, F]
            var up = LinearOp.Forward(g, xe, l.ExpertUp![e], null);          // [m, F]
            var a = SwiGluOp.Forward(g, gate, up);
            outputs[e] = LinearOp.Forward(g, a, l.ExpertDown![e], null);     // [m, C]
        }
        return MoeCombineOp.Forward(g, outputs, picks, weights, h.Shape);
    }

    /// <summary>True when a backward reads the input of this projection: its weight trains, or an adapter beside it does.</summary>
    private static bool Reads(Tensor w, LoraModule? m, LoraAdapter? on) => w.RequiresGrad || (on != null && m != null);

    /// <summary>Frees a projection's output and its dropout copy (the same tensor when dropout is off) once the residual add has read them.</summary>
    private static void Discard(Graph g, Tensor y, Tensor dropped)
    {
        g.Discard(y);
        if (!ReferenceEquals(y, dropped)) g.Discard(dropped);
    }

    /// <summary>
    /// Layer i's parameters (its LoRA adapter's too): i; the final norm and an untied head: the layer count; the
    /// embeddings (and a tied head): -1, complete only when the backward ends. Matches Forward's marks.
    /// </summary>
    public override int BackwardStage(Tensor parameter)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        if (ReferenceEquals(parameter, embed) || ReferenceEquals(parameter, positions)) return -1;
        if (ReferenceEquals(parameter, finalNorm) || ReferenceEquals(parameter, finalNormBias) || ReferenceEquals(parameter, head)) return layers.Length;
        stages ??= StageTable();
        return stages.TryGetValue(parameter, out int stage) ? stage : -1;
    }

    private Dictionary<Tensor, int>? stages;

    /// <summary>Each layer's tensors by reference (adapters included; rebuilt when an adapter is added).</summary>
    private Dictionary<Tensor, int> StageTable()
    {
        var table = new Dictionary<Tensor, int>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < layers.Length; i++)
        {
            var l = layers[i];
            Tensor?[] plain = [l.AttnNorm, l.AttnNormBias, l.Wo, l.WoBias, l.MlpNorm, l.MlpNormBias, l.Gate, l.Up, l.UpBias, l.Down, l.DownBias, l.QNorm, l.KNorm,
                l.AttnPostNorm, l.MlpPostNorm, l.Router, .. l.Qkv, .. l.QkvBias ?? [], .. l.ExpertGate ?? [], .. l.ExpertUp ?? [], .. l.ExpertDown ?? []];
            foreach (var t in plain) if (t != null) table[t] = i;
            foreach (var module in new[] { l.LoraQkv, l.LoraQ, l.LoraK, l.LoraV, l.LoraO, l.LoraGate, l.LoraUp, l.LoraDown })
            {
                if (module == null) continue;
                table[module.A] = i;
                table[module.B] = i;
            }
        }
        return table;
    }

    /// <summary>y[:, column..] += scaling * B(A(dropout(x))) when the layer's projection has an adapter.</summary>
    private static void Adapt(Graph g, LoraAdapter c, LoraModule? m, Tensor y, int column, Tensor x, ulong dropoutSeed, int layer)
    {
        if (m == null) return;
        ulong seed = Rng.Mix(dropoutSeed, (ulong)layer, 16 + (ulong)m.Slot); // one mask per projection, as PEFT's per-module dropout
        LowRankAddOp.Forward(g, y, column, x, m.A, m.B, c.Scaling, c.Config.Dropout, seed);
    }

    private Tensor Norm(Graph g, Tensor x, Tensor w, Tensor? bias) => Spec.Norm == NormKind.LayerNorm
        ? LayerNormOp.Forward(g, x, w, bias, Spec.NormEps)
        : RmsNormOp.Forward(g, x, w, Spec.NormEps);

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
        bool quantize = !w.Layers.SelectMany(l => l.Matrices()).Any(x => IsBlockType(x.Type));
        if (quantize && !w.Layers.SelectMany(l => l.Matrices()).Any(x => x.Cols % block == 0))
            throw new InvalidConfigException($"{w.Source}: no weight matrix has rows of whole {floatType} blocks ({block} values; the rows hold {spec.Dim}, {spec.QDim} or {spec.Hidden}), so QLoRA would quantize nothing; use another type or LoRA.");
        var done = new Dictionary<WeightMatrix, Tensor>(ReferenceEqualityComparer.Instance);
        Tensor View(WeightMatrix x, bool convert)
        {
            if (done.TryGetValue(x, out var t)) return t;
            var v = convert && quantize && !IsBlockType(x.Type) && x.Cols % block == 0 ? x.ConvertTo(floatType) : x;
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

    private static bool IsBlockType(GgmlType t) => t is not (GgmlType.F32 or GgmlType.F16 or GgmlType.BF16);

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

    public override LoraAdapter? Lora => lora;

    public override LoraAdapter AddLora(LoraConfig config, ulong seed = 1337)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        var slots = config.ResolveTargets(Spec);
        var sites = new List<(int, WeightSlot)>();
        var family = LoraConfig.Family(Spec);
        for (int i = 0; i < layers.Length; i++) sites.AddRange(slots.Where(s => WeightOf(layers[i], s, family) != null).Select(s => (i, s))); // a mixture's experts take no adapter
        return AttachLora(config, sites, new Rng(seed));
    }

    public override LoraAdapter LoadLora(string folder) => PeftAdapterFiles.Load(folder, this);

    /// <summary>Every projection an adapter may sit on: layer, slot, Quill's module path (the weight's name without ".weight") and the weight's [out, in].</summary>
    internal IEnumerable<(int Layer, WeightSlot Slot, string Module, int Out, int In)> LoraSites()
    {
        var family = LoraConfig.Family(Spec);
        for (int i = 0; i < layers.Length; i++)
        {
            foreach (var slot in LoraConfig.ModelOrder)
            {
                if (WeightOf(layers[i], slot, family) is { } w) yield return (i, slot, w.Name[..^".weight".Length], w.Dim(0), w.Dim(1));
            }
        }
    }

    /// <summary>
    /// Freezes every base parameter and adds A [r, in] and B [out, r] (zero) beside the projections at sites; A is
    /// drawn from U(-1/sqrt(in), 1/sqrt(in)) (nn.Linear's default, PEFT's kaiming_uniform(a = sqrt(5))) when rng is
    /// given, else left zero for a loader to fill.
    /// </summary>
    internal LoraAdapter AttachLora(LoraConfig config, IEnumerable<(int Layer, WeightSlot Slot)> sites, Rng? rng)
    {
        if (lora != null) throw new InvalidConfigException("the model already carries a LoRA adapter; merge it (MergeLora) or start again from the base model.");
        var family = LoraConfig.Family(Spec);
        var ordered = sites.Distinct().OrderBy(s => s.Layer).ThenBy(s => Array.IndexOf(LoraConfig.ModelOrder, s.Slot)).ToList();
        if (ordered.Count == 0) throw new InvalidConfigException("the LoRA adapter targets no projection; name some in target_modules.");
        foreach (var p in Parameters) ParameterSet.Freeze(p);
        var modules = new List<LoraModule>();
        foreach (var (i, slot) in ordered)
        {
            var w = WeightOf(layers[i], slot, family) ?? throw new InvalidOperationException($"layer {i} has no {slot} projection.");
            string module = w.Name[..^".weight".Length];
            int outF = w.Dim(0), inF = w.Dim(1);
            var a = Parameters.Add(module + ".lora_A.weight", ParameterKind.Matrix, config.Rank, inF);
            var b = Parameters.Add(module + ".lora_B.weight", ParameterKind.Matrix, outF, config.Rank);
            if (rng != null)
            {
                double bound = 1.0 / Math.Sqrt(inF);
                var span = a.Span;
                for (int k = 0; k < span.Length; k++) span[k] = (float)((2.0 * rng.NextDouble() - 1.0) * bound);
            }
            var m = new LoraModule(i, slot, module, a, b, w);
            SetLora(layers[i], m);
            modules.Add(m);
            stages = null; // the layers' tensors changed
        }
        var resolved = config with { TargetModules = LoraConfig.TargetNames(Spec, ordered.Select(s => s.Slot)) };
        lora = new LoraAdapter(resolved, Spec, modules);
        return lora;
    }

    /// <summary>
    /// A new model whose weights are the base's plus scaling * B A for every adapted projection (W [out, in] +=
    /// s B [out, r] A [r, in]); every parameter of it is trainable and it carries no adapter. This model is unchanged.
    /// </summary>
    public override LanguageModel MergeLora()
    {
        var c = lora ?? throw new InvalidConfigException("the model carries no LoRA adapter to merge; add one (AddLora) or load one (LoadLora) first.");
        var merged = FromWeights(BaseWeights(), Config.Clone());
        foreach (var m in c.Modules)
        {
            var w = merged.Parameters[m.Weight.Name];
            int outF = w.Dim(0), inF = w.Dim(1), r = m.A.Dim(0);
            Gemm.Sgemm(false, false, outF, inF, r, c.Scaling, m.B.Span, r, m.A.Span, inF, 1f, w.Span, inF); // W += s B A
        }
        return merged;
    }

    /// <summary>The base weight [out, in] of a layer's projection, or null when the architecture has none there.</summary>
    private static Tensor? WeightOf(Layer l, WeightSlot slot, LoraFamily family)
    {
        bool fused = l.Qkv.Length == 1;
        return slot switch
        {
            WeightSlot.Qkv => fused && family == LoraFamily.Gpt2 ? l.Qkv[0] : null,
            WeightSlot.Q => fused ? null : l.Qkv[0],
            WeightSlot.K => fused ? null : l.Qkv[1],
            WeightSlot.V => fused ? null : l.Qkv[2],
            WeightSlot.O => l.Wo,
            WeightSlot.Gate => l.Gate,
            WeightSlot.Up => l.Up,
            WeightSlot.Down => l.Down,
            _ => null,
        };
    }

    private static void SetLora(Layer l, LoraModule m)
    {
        switch (m.Slot)
        {
            case WeightSlot.Qkv: l.LoraQkv = m; break;
            case WeightSlot.Q: l.LoraQ = m; break;
            case WeightSlot.K: l.LoraK = m; break;
            case WeightSlot.V: l.LoraV = m; break;
            case WeightSlot.O: l.LoraO = m; break;
            case WeightSlot.Gate: l.LoraGate = m; break;
            case WeightSlot.Up: l.LoraUp = m; break;
            case WeightSlot.Down: l.LoraDown = m; break;
            default: throw new InvalidOperationException($"no adapter slot {m.Slot}.");
        }
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

    private sealed class Layer
    {
        public Tensor Wo = null!;
        public Tensor? AttnNorm, MlpNorm, AttnNormBias, WoBias, MlpNormBias, Gate, Up, UpBias, Down, DownBias;

        /// <summary>A mixture of experts' router [E, C] and each expert's gate, up [F, C] and down [C, F] (else null).</summary>
        public Tensor? Router;
        public Tensor[]? ExpertGate, ExpertUp, ExpertDown;

        /// <summary>Qwen3's and Gemma 3's per-head RMSNorm weights of q and k [HeadDim], or null.</summary>
        public Tensor? QNorm, KNorm;

        /// <summary>Gemma's norms of the attention and MLP outputs [C], or null.</summary>
        public Tensor? AttnPostNorm, MlpPostNorm;

        /// <summary>[Wqkv] (GPT-2) or [Wq, Wk, Wv], and their biases.</summary>
        public Tensor[] Qkv = [];
        public Tensor?[]? QkvBias;

        /// <summary>The LoRA adapter beside each projection, or null.</summary>
        public LoraModule? LoraQkv, LoraQ, LoraK, LoraV, LoraO, LoraGate, LoraUp, LoraDown;
    }
}
