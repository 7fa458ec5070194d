// The model as data (llama2.c's idea): a ModelSpec and, for every weight the spec asks for, a view of it: matrices
// as WeightMatrix (over a mapped file, a pinned array or a trainable parameter's storage, any element type), norm
// vectors and biases as small float arrays. Loaders build it from files through one name table per family
// (ModelBuilders); TransformerModel.ToWeights views a trainable model's parameters as one without copying;
// TransformerModel.FromWeights widens one into trainable f32 parameters. The inference engine runs it.
// Dispose releases the files the views point into (owners); ReleaseResidentPages drops their pages from resident
// memory without unmapping them (converting a model then does not keep the whole file resident).
// Does not handle: running anything (Inference.InferenceEngine runs it; TransformerModel trains it).
// Glossary: C model width, F MLP width, V vocabulary.
using Quill.Quantization;
using Quill.Tensors;

namespace Quill.Models;

/// <summary>One transformer block's weights. Fields a family does not use are null.</summary>
public sealed class LayerWeights
{
    /// <summary>Pre-attention norm weight [C] (and bias for LayerNorm); null without pre-norms (OLMo 2).</summary>
    public float[]? AttnNorm { get; init; }

    public float[]? AttnNormBias { get; init; }

    /// <summary>Either one fused [QkvDim, C] matrix ...</summary>
    public WeightMatrix? Wqkv { get; init; }

    /// <summary>... or three: [QDim, C], [KvDim, C], [KvDim, C].</summary>
    public WeightMatrix? Wq { get; init; }

    public WeightMatrix? Wk { get; init; }

    public WeightMatrix? Wv { get; init; }

    /// <summary>q|k|v bias [QkvDim] (GPT-2, Qwen2), or null.</summary>
    public float[]? QkvBias { get; init; }

    /// <summary>Per-head RMSNorm weights of q and of k [HeadDim] (Qwen3, Gemma 3), or over the whole projection [QDim],
    /// [KvDim] (OLMo 2), or null.</summary>
    public float[]? QNorm { get; init; }

    public float[]? KNorm { get; init; }

    /// <summary>Attention output [C, QDim].</summary>
    public required WeightMatrix Wo { get; init; }

    public float[]? WoBias { get; init; }

    /// <summary>RMSNorm weight [C] of the attention output and of the MLP output, before each joins the residual
    /// (Gemma 2, 3), or null.</summary>
    public float[]? AttnPostNorm { get; init; }

    public float[]? MlpPostNorm { get; init; }

    /// <summary>Pre-MLP norm weight [C] (and bias for LayerNorm); null without pre-norms (OLMo 2).</summary>
    public float[]? MlpNorm { get; init; }

    public float[]? MlpNormBias { get; init; }

    /// <summary>SwiGLU / GeGLU gate [F, C] (Llama family, Gemma), null for GPT-2 and mixtures of experts.</summary>
    public WeightMatrix? Gate { get; init; }

    /// <summary>Up projection [F, C] (GPT-2: c_fc); null for a mixture of experts.</summary>
    public WeightMatrix? Up { get; init; }

    public float[]? UpBias { get; init; }

    /// <summary>Down projection [C, F] (GPT-2: mlp.c_proj); null for a mixture of experts.</summary>
    public WeightMatrix? Down { get; init; }

    public float[]? DownBias { get; init; }

    /// <summary>The router and experts that replace the MLP (Mixtral, Qwen3-MoE), or null.</summary>
    public ExpertWeights? Experts { get; init; }

    /// <summary>
    /// This layer with each dense matrix (q, k, v or the fused q|k|v, o, gate, up, down) replaced by map's result, and a
    /// mixture's router and experts by experts' (unchanged when null); norms and biases are shared.
    /// </summary>
    internal LayerWeights Map(Func<WeightMatrix, WeightMatrix> map, Func<WeightMatrix, WeightMatrix>? experts = null)
    {
        WeightMatrix? M(WeightMatrix? w) => w == null ? null : map(w);
        return new LayerWeights
        {
            AttnNorm = AttnNorm, AttnNormBias = AttnNormBias, Wqkv = M(Wqkv), Wq = M(Wq), Wk = M(Wk), Wv = M(Wv),
            QkvBias = QkvBias, QNorm = QNorm, KNorm = KNorm, Wo = map(Wo), WoBias = WoBias, AttnPostNorm = AttnPostNorm, MlpPostNorm = MlpPostNorm,
            MlpNorm = MlpNorm, MlpNormBias = MlpNormBias, Gate = M(Gate), Up = M(Up), UpBias = UpBias, Down = M(Down), DownBias = DownBias,
            Experts = experts == null ? Experts : Experts?.Map(experts),
        };
    }

    /// <summary>The matrices this layer has, in a fixed order (a mixture's router, then each expert's gate, up, down).</summary>
    public IEnumerable<WeightMatrix> Matrices()
    {
        foreach (var w in new[] { Wqkv, Wq, Wk, Wv, Wo, Gate, Up, Down })
        {
            if (w != null) yield return w;
        }
        if (Experts != null)
        {
            foreach (var w in Experts.Matrices()) yield return w;
        }
    }

    /// <summary>Bytes of weights one token's pass through this layer reads: every matrix, but of a mixture only the
    /// router and <paramref name="used"/> experts (the average expert's size).</summary>
    public long BytesPerToken(int used)
    {
        long dense = new[] { Wqkv, Wq, Wk, Wv, Wo, Gate, Up, Down }.Sum(w => w?.ByteSize ?? 0);
        if (Experts is not { } x) return dense;
        return dense + x.Router.ByteSize + (x.Count == 0 ? 0 : used * x.ExpertBytes() / x.Count);
    }
}

/// <summary>A mixture of experts' weights in one layer: router [E, C] and per expert SwiGLU gate, up [F, C] and down [C, F].</summary>
public sealed class ExpertWeights
{
    public ExpertWeights(WeightMatrix router, WeightMatrix[] gate, WeightMatrix[] up, WeightMatrix[] down)
    {
        ArgumentNullException.ThrowIfNull(router);
        ArgumentNullException.ThrowIfNull(gate);
        ArgumentNullException.ThrowIfNull(up);
        ArgumentNullException.ThrowIfNull(down);
        if (gate.Length != up.Length || gate.Length != down.Length)
            throw new InvalidFileException($"{router.Name}: {gate.Length} gate, {up.Length} up and {down.Length} down expert matrices; each expert needs all three.");
        Router = router;
        Gate = gate;
        Up = up;
        Down = down;
    }

    /// <summary>[E, C]: one logit per expert.</summary>
    public WeightMatrix Router { get; }

    public WeightMatrix[] Gate { get; }

    public WeightMatrix[] Up { get; }

    public WeightMatrix[] Down { get; }

    /// <summary>E.</summary>
    public int Count => Gate.Length;

    /// <summary>Bytes of all experts' matrices (the router not counted).</summary>
    public long ExpertBytes() => Gate.Sum(m => m.ByteSize) + Up.Sum(m => m.ByteSize) + Down.Sum(m => m.ByteSize);

    /// <summary>The router, then expert 0's gate, up, down, then expert 1's, ...</summary>
    public IEnumerable<WeightMatrix> Matrices()
    {
        yield return Router;
        for (int e = 0; e < Count; e++)
        {
            yield return Gate[e];
            yield return Up[e];
            yield return Down[e];
        }
    }

    /// <summary>A copy with every matrix passed through convert.</summary>
    public ExpertWeights Map(Func<WeightMatrix, WeightMatrix> convert)
    {
        ArgumentNullException.ThrowIfNull(convert);
        return new ExpertWeights(convert(Router), [.. Gate.Select(convert)], [.. Up.Select(convert)], [.. Down.Select(convert)]);
    }
}

/// <summary>A model's weights as views, with the spec that says how to run them.</summary>
public sealed class ModelWeights : IDisposable
{
    private readonly List<IDisposable> owners;

    /// <summary>Checks every shape against the spec; the views stay valid while owners are undisposed.</summary>
    public ModelWeights(ModelSpec spec, WeightMatrix tokenEmbedding, float[]? positionEmbedding, IReadOnlyList<LayerWeights> layers,
        float[] finalNorm, float[]? finalNormBias, WeightMatrix classifier, List<IDisposable> owners, string source)
    {
        ArgumentNullException.ThrowIfNull(spec);
        spec.Validate(source);
        Spec = spec;
        TokenEmbedding = tokenEmbedding;
        PositionEmbedding = positionEmbedding;
        Layers = layers;
        FinalNorm = finalNorm;
        FinalNormBias = finalNormBias;
        Classifier = classifier;
        this.owners = owners;
        Source = source;
        CheckShapes();
    }

    public ModelSpec Spec { get; }

    /// <summary>Where the weights came from (a path), for messages.</summary>
    public string Source { get; }

    /// <summary>[V, C]</summary>
    public WeightMatrix TokenEmbedding { get; }

    /// <summary>Learned positions [MaxContext, C] (GPT-2), else null.</summary>
    public float[]? PositionEmbedding { get; }

    public IReadOnlyList<LayerWeights> Layers { get; }

    public float[] FinalNorm { get; }

    public float[]? FinalNormBias { get; }

    /// <summary>Output head [V, C] (the token embedding itself when tied).</summary>
    public WeightMatrix Classifier { get; }

    /// <summary>True when the output head is the token embedding.</summary>
    public bool Tied => ReferenceEquals(Classifier, TokenEmbedding);

    /// <summary>Bytes of weights one decode step reads: every matrix once (of a mixture of experts the router and the
    /// k experts a token uses, at their average size), plus one embedding row.</summary>
    public long WeightBytesPerToken => Layers.Sum(l => l.BytesPerToken(Spec.ExpertsUsed)) + Classifier.ByteSize + TokenEmbedding.RowBytes;

    /// <summary>Bytes of every weight matrix (all experts included).</summary>
    public long WeightBytes => Layers.Sum(l => l.Matrices().Sum(m => m.ByteSize)) + Classifier.ByteSize + (Tied ? 0 : TokenEmbedding.ByteSize);

    /// <summary>
    /// A copy with every weight matrix converted to <paramref name="type"/> (F32, F16, BF16, Q8_0, Q4_0, ...), in
    /// memory of its own; matrices whose rows are not a whole number of blocks stay F32. Norms and biases are shared.
    /// </summary>
    public ModelWeights Requantize(GgmlType type)
    {
        var map = new Dictionary<WeightMatrix, WeightMatrix>(ReferenceEqualityComparer.Instance);
        WeightMatrix Q(WeightMatrix w)
        {
            if (map.TryGetValue(w, out var done)) return done;
            var t = w.Cols % GgmlTypeInfo.BlockSize(type) == 0 ? type : GgmlType.F32;
            var q = WeightMatrix.Quantize(w.Name, w.ToFloats(), w.Rows, w.Cols, t);
            map[w] = q;
            return q;
        }
        var layers = Layers.Select(l => l.Map(Q, Q)).ToArray();
        return new ModelWeights(Spec, Q(TokenEmbedding), PositionEmbedding, layers, FinalNorm, FinalNormBias, Q(Classifier), [], $"{Source} ({type})");
    }

    /// <summary>
    /// A view of these weights in which each layer's dense matrices are map(matrix) (e.g. the same matrix with LoRA
    /// updates beside it, WeightMatrix.WithUpdates); nothing is copied. The view owns these weights: disposing it
    /// disposes them, so dispose only the view.
    /// </summary>
    internal ModelWeights MapLayerMatrices(Func<WeightMatrix, WeightMatrix> map)
    {
        var layers = Layers.Select(l => l.Map(map)).ToArray();
        return new ModelWeights(Spec, TokenEmbedding, PositionEmbedding, layers, FinalNorm, FinalNormBias, Classifier, [this], Source);
    }

    private void CheckShapes()
    {
        var s = Spec;
        void Expect(WeightMatrix? w, int rows, int cols)
        {
            if (w == null) return;
            if (w.Rows != rows || w.Cols != cols)
                throw new InvalidFileException($"{Source}: tensor {w.Name} is [{w.Rows}, {w.Cols}] but the model's config needs [{rows}, {cols}]; the file does not match its metadata.");
        }
        void ExpectVec(float[]? v, int n, string what)
        {
            if (v != null && v.Length != n) throw new InvalidFileException($"{Source}: {what} has {v.Length} values but the config needs {n}.");
        }
        void ExpectPresent(bool present, bool wanted, string what)
        {
            if (present != wanted) throw new InvalidFileException($"{Source}: {what} is {(present ? "present" : "missing")} but the architecture {(wanted ? "needs" : "has no")} it.");
        }
        Expect(TokenEmbedding, s.VocabSize, s.Dim);
        Expect(Classifier, s.VocabSize, s.Dim);
        ExpectVec(FinalNorm, s.Dim, "the final norm");
        ExpectVec(FinalNormBias, s.Dim, "the final norm bias");
        ExpectPresent(FinalNormBias != null, s.NormBias, "the final norm bias");
        if (s.Positions == PositionKind.Learned && (PositionEmbedding == null || PositionEmbedding.Length < (long)s.MaxContext * s.Dim))
            throw new InvalidFileException($"{Source}: the model has learned positions but no position embedding of [{s.MaxContext}, {s.Dim}].");
        if (Layers.Count != s.Layers) throw new InvalidFileException($"{Source}: {Layers.Count} layers but the config says {s.Layers}.");
        for (int i = 0; i < Layers.Count; i++)
        {
            var l = Layers[i];
            if (l.Wqkv == null && (l.Wq == null || l.Wk == null || l.Wv == null))
                throw new InvalidFileException($"{Source}: layer {i} lacks its q/k/v projections.");
            ExpectPresent(l.Experts != null, s.IsMoe, $"layer {i}'s mixture of experts");
            ExpectPresent(l.Up != null && l.Down != null, !s.IsMoe, $"layer {i}'s MLP up and down projections");
            ExpectPresent(l.Gate != null, s.Mlp != MlpKind.Gelu && !s.IsMoe, $"layer {i}'s MLP gate projection");
            if (l.Experts is { } x)
            {
                if (x.Count != s.Experts) throw new InvalidFileException($"{Source}: layer {i} has {x.Count} experts but the config says {s.Experts}.");
                Expect(x.Router, s.Experts, s.Dim);
                for (int e = 0; e < x.Count; e++)
                {
                    Expect(x.Gate[e], s.Hidden, s.Dim);
                    Expect(x.Up[e], s.Hidden, s.Dim);
                    Expect(x.Down[e], s.Dim, s.Hidden);
                }
            }
            ExpectPresent(l.AttnPostNorm != null && l.MlpPostNorm != null, s.PostNorms, $"layer {i}'s post-attention and post-MLP norms");
            ExpectVec(l.AttnPostNorm, s.Dim, $"layer {i} post-attention norm");
            ExpectVec(l.MlpPostNorm, s.Dim, $"layer {i} post-MLP norm");
            ExpectPresent(l.QkvBias != null, s.QkvBias, $"layer {i}'s q/k/v bias");
            ExpectPresent(l.QNorm != null && l.KNorm != null, s.QkNorm, $"layer {i}'s q/k norms");
            ExpectVec(l.QNorm, s.QNormLength, $"layer {i} q norm");
            ExpectVec(l.KNorm, s.KNormLength, $"layer {i} k norm");
            ExpectPresent(l.AttnNorm != null && l.MlpNorm != null, s.PreNorms, $"layer {i}'s attention and MLP input norms");
            ExpectPresent(l.WoBias != null, s.OutBias, $"layer {i}'s attention output bias");
            ExpectPresent(l.UpBias != null && l.DownBias != null, s.MlpBias, $"layer {i}'s MLP biases");
            ExpectPresent(l.AttnNormBias != null && l.MlpNormBias != null, s.NormBias, $"layer {i}'s norm biases");
            Expect(l.Wqkv, s.QkvDim, s.Dim);
            Expect(l.Wq, s.QDim, s.Dim);
            Expect(l.Wk, s.KvDim, s.Dim);
            Expect(l.Wv, s.KvDim, s.Dim);
            Expect(l.Wo, s.Dim, s.QDim);
            Expect(l.Gate, s.Hidden, s.Dim);
            Expect(l.Up, s.Hidden, s.Dim);
            Expect(l.Down, s.Dim, s.Hidden);
            ExpectVec(l.AttnNorm, s.Dim, $"layer {i} attention norm");
            ExpectVec(l.MlpNorm, s.Dim, $"layer {i} MLP norm");
            ExpectVec(l.AttnNormBias, s.Dim, $"layer {i} attention norm bias");
            ExpectVec(l.MlpNormBias, s.Dim, $"layer {i} MLP norm bias");
            ExpectVec(l.QkvBias, s.QkvDim, $"layer {i} qkv bias");
            ExpectVec(l.WoBias, s.Dim, $"layer {i} attention output bias");
            ExpectVec(l.UpBias, s.Hidden, $"layer {i} MLP up bias");
            ExpectVec(l.DownBias, s.Dim, $"layer {i} MLP down bias");
        }
    }

    /// <summary>
    /// Drops the pages of the mapped files the views point into from this process's resident memory (Linux; a no-op
    /// elsewhere and for weights in arrays). The views stay valid: a later read faults its pages back in from the
    /// page cache or the file. Lets a loader widen or quantize a model without keeping the whole file resident.
    /// </summary>
    public void ReleaseResidentPages()
    {
        foreach (var o in owners) (o as Formats.IMappedFileOwner)?.ReleaseResident();
    }

    /// <summary>Releases the files the views point into; the views must not be used afterwards.</summary>
    public void Dispose()
    {
        foreach (var o in owners) o.Dispose();
        owners.Clear();
    }
}
