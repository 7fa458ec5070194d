// A model ready to run: its weights as data (Models.ModelWeights: the spec and views of every weight) and what the
// file said about its tokenizer and chat template. Independent of autograd: nothing here records gradients. Built by
// ModelLoader (any file) or FromLanguageModel (a trainable model in memory, viewed without copying). WithAdapter runs a
// PEFT LoRA adapter unmerged beside the weights as they are (a quantized base stays quantized: each adapted product
// adds scaling (x A^T) B^T, WeightMatrix.WithUpdates); WithLoraAdapter merges one into an f32 copy
// (Models.PeftAdapterFiles, LanguageModel.MergeLora), what `quill finetune merge` saves.
// Dispose unmaps the files the weights point into.
// Does not handle: running anything (see InferenceEngine).
// Glossary: C model width, F MLP width, V vocabulary.
using Quill.Models;
using Quill.Tensors;
using Quill.Tokenization;

namespace Quill.Inference;

/// <summary>A model's weights and metadata, ready for <see cref="InferenceEngine"/>.</summary>
public sealed class InferenceModel : IDisposable
{
    /// <summary>Wraps weights (this model disposes them).</summary>
    public InferenceModel(ModelWeights weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        Weights = weights;
    }

    /// <summary>The spec and the weight views.</summary>
    public ModelWeights Weights { get; }

    public ModelSpec Spec => Weights.Spec;

    /// <summary>Where the model came from (a path), for messages.</summary>
    public string Source => Weights.Source;

    /// <summary>[V, C]</summary>
    public WeightMatrix TokenEmbedding => Weights.TokenEmbedding;

    /// <summary>GPT-2 learned positions [MaxContext, C], else null.</summary>
    public float[]? PositionEmbedding => Weights.PositionEmbedding;

    public IReadOnlyList<LayerWeights> Layers => Weights.Layers;

    public float[] FinalNorm => Weights.FinalNorm;

    public float[]? FinalNormBias => Weights.FinalNormBias;

    /// <summary>Output head [V, C] (the token embedding itself when tied).</summary>
    public WeightMatrix Classifier => Weights.Classifier;

    /// <summary>The tokenizer found with the model (file metadata, a file beside it), or null.</summary>
    public ITokenizer? Tokenizer { get; set; }

    /// <summary>The chat template text the file carries (e.g. GGUF tokenizer.chat_template), or null.</summary>
    public string? ChatTemplate { get; set; }

    /// <summary>Token ids that end a generation besides the tokenizer's EOS (e.g. Llama 3's eot).</summary>
    public IReadOnlyList<int> ExtraStopIds { get; set; } = [];

    /// <summary>Whether prompts start with BOS (llama2.c and SentencePiece models do; GPT-2 does not).</summary>
    public bool AddBos { get; set; }

    /// <summary>Bytes of weights one decode step reads: every matrix once, plus one embedding row.</summary>
    public long WeightBytesPerToken => Weights.WeightBytesPerToken;

    /// <summary>Views a trainable model's parameters for inference, without copying (the parameters must outlive it).</summary>
    public static InferenceModel FromLanguageModel(LanguageModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return new InferenceModel(model.ToWeights());
    }

    /// <summary>
    /// A copy of this model with every weight matrix converted to <paramref name="type"/> (F32, F16, BF16, Q8_0,
    /// Q4_0, ...), in memory of its own; matrices whose rows are not a whole number of blocks stay F32. Norms,
    /// biases and the tokenizer are shared. Dispose both independently.
    /// </summary>
    public InferenceModel Requantize(Quantization.GgmlType type) => Sharing(RefusingAdapter("convert it").Weights.Requantize(type));

    /// <summary>
    /// A copy of this model with the PEFT LoRA adapter in <paramref name="adapterFolder"/> merged in (W += scaling B A,
    /// see LanguageModel.LoadLora and MergeLora), as f32 weights of its own (quantized or half weights are widened;
    /// convert the copy with Requantize if wanted). Tokenizer and chat template are shared. Dispose both independently.
    /// </summary>
    public InferenceModel WithLoraAdapter(string adapterFolder)
    {
        ArgumentNullException.ThrowIfNull(adapterFolder);
        return Sharing(LanguageModel.Merged(RefusingAdapter("merge another into it").Weights, adapterFolder, out _).ToWeights()); // the views keep the merged storage alive
    }

    /// <summary>
    /// This model with the PEFT LoRA adapter in <paramref name="adapterFolder"/> run unmerged: the base weights stay
    /// as they lie (a quantized base stays quantized, nothing is widened or copied) and each adapted projection adds
    /// scaling (x A^T) B^T after its product. The adapter is read and checked as LanguageModel.LoadLora does (against a
    /// view of a block-typed base, or a passing f32 copy of a float one). The returned model owns this one: dispose
    /// only the returned model. Its logits equal the merged model's (WithLoraAdapter) to rounding.
    /// </summary>
    public InferenceModel WithAdapter(string adapterFolder)
    {
        ArgumentNullException.ThrowIfNull(adapterFolder);
        bool blockTyped = Weights.Layers.SelectMany(l => l.Matrices()).Any(m => Quantization.GgmlTypeInfo.IsBlockType(m.Type));
        var reader = blockTyped && !Spec.IsMoe ? LanguageModel.QuantizedBase(Weights) : LanguageModel.FromWeights(Weights);
        var adapter = reader.LoadLora(adapterFolder);
        var updates = new Dictionary<WeightMatrix, List<LowRankUpdate>>(ReferenceEqualityComparer.Instance);
        void Add(WeightMatrix w, float[] a, float[] b, int rank, int row0, int rows)
        {
            if (!updates.TryGetValue(w, out var list)) updates[w] = list = [];
            list.Add(new LowRankUpdate(a, b, rank, w.Cols, row0, rows, adapter.Scaling));
        }
        var s = Spec;
        foreach (var m in adapter.Modules)
        {
            var l = Layers[m.Layer];
            float[] a = m.A.Span.ToArray(), b = m.B.Span.ToArray();
            int r = m.A.Dim(0);
            // q, k and v sit on their own matrices or on row blocks of a fused q|k|v; a fused adapter (GPT-2's c_attn)
            // on separate matrices is cut into its three row blocks of B
            (int Row0, int Rows)? block = m.Slot switch
            {
                WeightSlot.Q => (0, s.QDim),
                WeightSlot.K => (s.QDim, s.KvDim),
                WeightSlot.V => (s.QDim + s.KvDim, s.KvDim),
                WeightSlot.Qkv => (0, s.QkvDim),
                _ => null,
            };
            if (block is { } q)
            {
                if (l.Wqkv != null)
                {
                    Add(l.Wqkv, a, b, r, q.Row0, q.Rows);
                    continue;
                }
                foreach (var (w, row0) in new[] { (l.Wq!, 0), (l.Wk!, s.QDim), (l.Wv!, s.QDim + s.KvDim) })
                {
                    int lo = Math.Max(q.Row0, row0), hi = Math.Min(q.Row0 + q.Rows, row0 + w.Rows);
                    if (lo < hi) Add(w, a, b.AsSpan((lo - q.Row0) * r, (hi - lo) * r).ToArray(), r, lo - row0, hi - lo);
                }
                continue;
            }
            var target = m.Slot switch
            {
                WeightSlot.O => l.Wo,
                WeightSlot.Gate => l.Gate,
                WeightSlot.Up => l.Up,
                WeightSlot.Down => l.Down,
                _ => null,
            } ?? throw new InvalidConfigException($"{adapterFolder}: the adapter's {m.Module} ({m.Slot}) has no matrix in {Source}'s inference weights to sit beside; merge it instead (quill finetune merge).");
            Add(target, a, b, r, 0, target.Rows);
        }
        return Sharing(Weights.MapLayerMatrices(w => updates.TryGetValue(w, out var list) ? w.WithUpdates(list) : w));
    }

    /// <summary>A model of other weights with this one's tokenizer, chat template, stop ids and BOS rule.</summary>
    private InferenceModel Sharing(ModelWeights weights) =>
        new(weights) { Tokenizer = Tokenizer, ChatTemplate = ChatTemplate, ExtraStopIds = ExtraStopIds, AddBos = AddBos };

    /// <summary>Whether an adapter runs unmerged beside these weights (WithAdapter).</summary>
    public bool HasAdapter => Layers.Any(l => l.Matrices().Any(w => w.Updates.Count > 0));

    /// <summary>This model, or a one-line error when it runs an adapter unmerged, which reading its weights would drop.</summary>
    internal InferenceModel RefusingAdapter(string action) => HasAdapter
        ? throw new InvalidConfigException($"{Source} runs a LoRA adapter unmerged; merge it first (quill finetune merge, or WithLoraAdapter) to {action}.")
        : this;

    public void Dispose() => Weights.Dispose();
}
