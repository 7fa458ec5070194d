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
// the base without it). The weight conversions are in TransformerModel.Weights.cs, the adapter's management in
// TransformerModel.Lora.cs.
// Glossary: B batch, T time, C channels, Hq query heads, Hkv key/value heads, D head size, F MLP hidden, V vocab.
using Quill.Autograd;
using Quill.Autograd.Ops;
using Quill.Kernels;
using Quill.Tensors;

namespace Quill.Models;

/// <summary>A transformer whose blocks follow a <see cref="ModelSpec"/>.</summary>
public sealed partial class TransformerModel : LanguageModel
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
