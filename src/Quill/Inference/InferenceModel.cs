// A model ready to run: its weights as data (Models.ModelWeights: the spec and views of every weight) and what the
// file said about its tokenizer and chat template. Independent of autograd: nothing here records gradients. Built by
// ModelLoader (any file) or FromLanguageModel (a trainable model in memory, viewed without copying); WithLoraAdapter
// merges a PEFT LoRA adapter into an f32 copy (Models.PeftAdapterFiles, LanguageModel.MergeLora).
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
    public InferenceModel Requantize(Quantization.GgmlType type) => new(Weights.Requantize(type))
    {
        Tokenizer = Tokenizer, ChatTemplate = ChatTemplate, ExtraStopIds = ExtraStopIds, AddBos = AddBos,
    };

    /// <summary>
    /// A copy of this model with the PEFT LoRA adapter in <paramref name="adapterFolder"/> merged in (W += scaling B A,
    /// see LanguageModel.LoadLora and MergeLora), as f32 weights of its own (quantized or half weights are widened;
    /// convert the copy with Requantize if wanted). Tokenizer and chat template are shared. Dispose both independently.
    /// </summary>
    public InferenceModel WithLoraAdapter(string adapterFolder)
    {
        ArgumentNullException.ThrowIfNull(adapterFolder);
        return new InferenceModel(LanguageModel.Merged(Weights, adapterFolder, out _).ToWeights()) // the views keep the merged storage alive
        {
            Tokenizer = Tokenizer, ChatTemplate = ChatTemplate, ExtraStopIds = ExtraStopIds, AddBos = AddBos,
        };
    }

    public void Dispose() => Weights.Dispose();
}
