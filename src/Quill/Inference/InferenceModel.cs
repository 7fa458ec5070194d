// A model ready to run: its ModelSpec, its weights as views (WeightMatrix over a mapped file or a pinned array;
// norm vectors and biases as small float arrays), and what the file said about its tokenizer and chat template.
// Independent of autograd: nothing here records gradients. Built by ModelLoader (any file) or
// FromLanguageModel (a model in memory, e.g. just trained). Dispose unmaps the files the weights point into.
// Does not handle: running anything (see InferenceEngine).
// Glossary: C model width, F MLP width, V vocabulary.
using Quill.Quantization;
using Quill.Models;
using Quill.Tokenization;

namespace Quill.Inference;

/// <summary>One transformer block's weights. Fields a family does not use are null.</summary>
public sealed class LayerWeights
{
    /// <summary>Pre-attention norm weight [C] (and bias for LayerNorm).</summary>
    public required float[] AttnNorm { get; init; }

    public float[]? AttnNormBias { get; init; }

    /// <summary>Either one fused [QkvDim, C] matrix ...</summary>
    public WeightMatrix? Wqkv { get; init; }

    /// <summary>... or three: [QDim, C], [KvDim, C], [KvDim, C].</summary>
    public WeightMatrix? Wq { get; init; }

    public WeightMatrix? Wk { get; init; }

    public WeightMatrix? Wv { get; init; }

    /// <summary>q|k|v bias [QkvDim] (GPT-2, Qwen2), or null.</summary>
    public float[]? QkvBias { get; init; }

    /// <summary>Attention output [C, QDim].</summary>
    public required WeightMatrix Wo { get; init; }

    public float[]? WoBias { get; init; }

    /// <summary>Pre-MLP norm weight [C] (and bias for LayerNorm).</summary>
    public required float[] MlpNorm { get; init; }

    public float[]? MlpNormBias { get; init; }

    /// <summary>SwiGLU gate [F, C] (Llama family), null for GPT-2.</summary>
    public WeightMatrix? Gate { get; init; }

    /// <summary>Up projection [F, C] (GPT-2: c_fc).</summary>
    public required WeightMatrix Up { get; init; }

    public float[]? UpBias { get; init; }

    /// <summary>Down projection [C, F] (GPT-2: mlp.c_proj).</summary>
    public required WeightMatrix Down { get; init; }

    public float[]? DownBias { get; init; }

    internal IEnumerable<WeightMatrix> Matrices()
    {
        foreach (var w in new[] { Wqkv, Wq, Wk, Wv, Wo, Gate, Up, Down })
        {
            if (w != null) yield return w;
        }
    }
}

/// <summary>A model's weights and metadata, ready for <see cref="InferenceEngine"/>.</summary>
public sealed class InferenceModel : IDisposable
{
    private readonly List<IDisposable> owners;

    internal InferenceModel(ModelSpec spec, WeightMatrix tokenEmbedding, float[]? positionEmbedding, LayerWeights[] layers,
        float[] finalNorm, float[]? finalNormBias, WeightMatrix classifier, List<IDisposable> owners, string source)
    {
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

    /// <summary>Where the model came from (a path), for messages.</summary>
    public string Source { get; }

    /// <summary>[V, C]</summary>
    public WeightMatrix TokenEmbedding { get; }

    /// <summary>GPT-2 learned positions [MaxContext, C], else null.</summary>
    public float[]? PositionEmbedding { get; }

    public IReadOnlyList<LayerWeights> Layers { get; }

    public float[] FinalNorm { get; }

    public float[]? FinalNormBias { get; }

    /// <summary>Output head [V, C] (the token embedding itself when tied).</summary>
    public WeightMatrix Classifier { get; }

    /// <summary>The tokenizer found with the model (file metadata, a file beside it), or null.</summary>
    public ITokenizer? Tokenizer { get; set; }

    /// <summary>The chat template text the file carries (e.g. GGUF tokenizer.chat_template), or null.</summary>
    public string? ChatTemplate { get; set; }

    /// <summary>Token ids that end a generation besides the tokenizer's EOS (e.g. Llama 3's eot).</summary>
    public IReadOnlyList<int> ExtraStopIds { get; set; } = [];

    /// <summary>Whether prompts start with BOS (llama2.c and SentencePiece models do; GPT-2 does not).</summary>
    public bool AddBos { get; set; }

    /// <summary>Bytes of weights one decode step reads: every matrix once, plus one embedding row.</summary>
    public long WeightBytesPerToken
    {
        get
        {
            long b = Layers.Sum(l => l.Matrices().Sum(m => m.ByteSize)) + Classifier.ByteSize + TokenEmbedding.RowBytes;
            return b;
        }
    }

    /// <summary>Builds an inference model from a model in memory (its weights are copied once into pinned arrays).</summary>
    public static InferenceModel FromLanguageModel(LanguageModel model) => ModelLoader.FromLanguageModel(model);

    /// <summary>
    /// A copy of this model with every weight matrix converted to <paramref name="type"/> (F32, F16, BF16, Q8_0,
    /// Q4_0, ...), in memory of its own; matrices whose rows are not a whole number of blocks stay F32. Norms,
    /// biases and the tokenizer are shared. Dispose both independently.
    /// </summary>
    public InferenceModel Requantize(Quantization.GgmlType type)
    {
        var map = new Dictionary<WeightMatrix, WeightMatrix>(ReferenceEqualityComparer.Instance);
        WeightMatrix Q(WeightMatrix w)
        {
            if (map.TryGetValue(w, out var done)) return done;
            var t = w.Cols % Quantization.GgmlTypeInfo.BlockSize(type) == 0 ? type : Quantization.GgmlType.F32;
            var q = WeightMatrix.Quantize(w.Name, w.ToFloats(), w.Rows, w.Cols, t);
            map[w] = q;
            return q;
        }
        WeightMatrix? QO(WeightMatrix? w) => w == null ? null : Q(w);
        var layers = Layers.Select(l => new LayerWeights
        {
            AttnNorm = l.AttnNorm, AttnNormBias = l.AttnNormBias, Wqkv = QO(l.Wqkv), Wq = QO(l.Wq), Wk = QO(l.Wk), Wv = QO(l.Wv),
            QkvBias = l.QkvBias, Wo = Q(l.Wo), WoBias = l.WoBias, MlpNorm = l.MlpNorm, MlpNormBias = l.MlpNormBias,
            Gate = QO(l.Gate), Up = Q(l.Up), UpBias = l.UpBias, Down = Q(l.Down), DownBias = l.DownBias,
        }).ToArray();
        return new InferenceModel(Spec, Q(TokenEmbedding), PositionEmbedding, layers, FinalNorm, FinalNormBias, Q(Classifier), [], $"{Source} ({type})")
        {
            Tokenizer = Tokenizer, ChatTemplate = ChatTemplate, ExtraStopIds = ExtraStopIds, AddBos = AddBos,
        };
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
        Expect(TokenEmbedding, s.VocabSize, s.Dim);
        Expect(Classifier, s.VocabSize, s.Dim);
        ExpectVec(FinalNorm, s.Dim, "the final norm");
        if (s.Family == ModelFamily.Gpt2 && (PositionEmbedding == null || PositionEmbedding.Length < (long)s.MaxContext * s.Dim))
            throw new InvalidFileException($"{Source}: GPT-2 model has no position embedding of [{s.MaxContext}, {s.Dim}].");
        if (Layers.Count != s.Layers) throw new InvalidFileException($"{Source}: {Layers.Count} layers but the config says {s.Layers}.");
        for (int i = 0; i < Layers.Count; i++)
        {
            var l = Layers[i];
            if (l.Wqkv == null && (l.Wq == null || l.Wk == null || l.Wv == null))
                throw new InvalidFileException($"{Source}: layer {i} lacks its q/k/v projections.");
            if (s.Family == ModelFamily.Llama && l.Gate == null) throw new InvalidFileException($"{Source}: layer {i} lacks its MLP gate projection.");
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
            ExpectVec(l.QkvBias, s.QkvDim, $"layer {i} qkv bias");
        }
    }

    public void Dispose()
    {
        foreach (var o in owners) o.Dispose();
        owners.Clear();
    }
}
