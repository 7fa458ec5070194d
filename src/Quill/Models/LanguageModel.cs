// What every transformer language model offers the trainer and the sampler: parameters, its config and spec, and a
// forward pass from token ids to logits; plus the factories: a fresh model from a config (pretraining from scratch)
// or a trainable copy of any weights Quill reads (continued pretraining, fine-tuning), or a frozen base that keeps
// them as stored or quantized (QLoRA). TransformerModel is the one implementation: it runs whatever the spec says.
using Quill.Autograd;
using Quill.Autograd.Ops;
using Quill.Quantization;
using Quill.Tensors;

namespace Quill.Models;

/// <summary>A decoder-only transformer: token ids in, next-token logits out.</summary>
public abstract class LanguageModel
{
    protected LanguageModel(ModelConfig config, ModelSpec spec)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(spec);
        config.Validate();
        Config = config;
        Spec = spec;
    }

    /// <summary>The config (what a checkpoint's config.json records).</summary>
    public ModelConfig Config { get; }

    /// <summary>The architecture spec the forward pass runs.</summary>
    public ModelSpec Spec { get; }

    public ParameterSet Parameters { get; } = new();

    /// <summary>Logits [B, T, V] for tokens [B * T] (row-major over batch then time).</summary>
    /// <param name="g">Graph that records (training) or not (inference).</param>
    /// <param name="tokens">[B * T] ids; an id outside the vocabulary raises QuillException.</param>
    /// <param name="b">Batch size.</param>
    /// <param name="t">Sequence length, at most block_size.</param>
    /// <param name="dropoutSeed">Seed of this forward pass's dropout masks (ignored when dropout is 0).</param>
    /// <param name="docStarts">
    /// Packed rows: [B * T], where each token's document starts in its row (see Kernels.AttentionMask.Documents); a
    /// token then attends only within its document and its position (RoPE or learned) counts from that start. Null:
    /// one document per row.
    /// </param>
    public abstract Tensor Forward(Graph g, int[] tokens, int b, int t, ulong dropoutSeed = 0, int[]? docStarts = null);

    /// <summary>The weights as views for the inference engine: matrices and norms without copying (see TransformerModel.ToWeights).</summary>
    public abstract ModelWeights ToWeights();

    /// <summary>
    /// The Graph.Mark stage after which the backward has finished this parameter's gradient, or -1 when only the end
    /// of the backward finishes it (data-parallel training starts summing gradients at each mark).
    /// </summary>
    public virtual int BackwardStage(Tensor parameter) => -1;

    /// <summary>The LoRA adapter the forward adds, or null.</summary>
    public abstract LoraAdapter? Lora { get; }

    /// <summary>
    /// Freezes every parameter and adds a LoRA adapter (PEFT's: A [r, in] uniform in +-1/sqrt(in), B [out, r] zero,
    /// so the model's output is unchanged until B trains) beside each target projection of every layer; A and B
    /// become the only trainable parameters. InvalidConfigException for a bad config or a model that has one already.
    /// </summary>
    public abstract LoraAdapter AddLora(LoraConfig config, ulong seed = 1337);

    /// <summary>
    /// Loads a PEFT adapter folder (adapter_config.json, adapter_model.safetensors; written by Quill or by PEFT for
    /// this base model) as this model's LoRA adapter, freezing the base. InvalidFileException, one line, for a missing
    /// file, a module the model lacks, or shapes of another model.
    /// </summary>
    public abstract LoraAdapter LoadLora(string folder);

    /// <summary>A new model with the adapter folded into its weights (W += scaling B A), carrying no adapter; this one is unchanged.</summary>
    public abstract LanguageModel MergeLora();

    /// <summary>
    /// An f32 copy of <paramref name="weights"/> (FromWeights) with the PEFT adapter in <paramref name="adapterFolder"/>
    /// loaded (LoadLora) and folded in (MergeLora); <paramref name="adapter"/> is the adapter read.
    /// </summary>
    public static LanguageModel Merged(ModelWeights weights, string adapterFolder, out LoraAdapter adapter)
    {
        ArgumentNullException.ThrowIfNull(adapterFolder);
        var model = FromWeights(weights);
        adapter = model.LoadLora(adapterFolder);
        return model.MergeLora();
    }

    /// <summary>The last hidden state [B, T, C] after the final norm: what the head turns into logits.</summary>
    /// <remarks>docStarts: as in <see cref="Forward"/>.</remarks>
    public abstract Tensor Hidden(Graph g, int[] tokens, int b, int t, ulong dropoutSeed = 0, int[]? docStarts = null);

    /// <summary>Logits [..., V] of hidden states [..., C] through the head.</summary>
    public abstract Tensor Head(Graph g, Tensor hidden);

    /// <summary>
    /// Mean cross-entropy [1] of the logits against targets [B * T] (negative targets ignored). When some targets
    /// are negative (masked prompt or padding in fine-tuning), the head and the cross-entropy run only on the rows
    /// that have one, so the logits and their gradient over the vocabulary are never made for the others; the loss
    /// and every gradient are those of the full logits. docStarts: packed rows, as in <see cref="Forward"/>.
    /// </summary>
    public Tensor Loss(Graph g, int[] tokens, int[] targets, int b, int t, ulong dropoutSeed = 0, int[]? docStarts = null)
    {
        ArgumentNullException.ThrowIfNull(targets);
        if (targets.Length < b * t) throw new ArgumentException($"{targets.Length} targets for batch {b} x time {t}.");
        var hidden = Hidden(g, tokens, b, t, dropoutSeed, docStarts);
        int kept = 0;
        for (int i = 0; i < b * t; i++) if (targets[i] >= 0) kept++;
        if (kept == b * t || kept == 0) return CrossEntropyOp.Forward(g, Head(g, hidden), targets);
        int[] rows = new int[kept], compact = new int[kept];
        for (int i = 0, k = 0; i < b * t; i++)
        {
            if (targets[i] < 0) continue;
            rows[k] = i;
            compact[k++] = targets[i];
        }
        return CrossEntropyOp.Forward(g, Head(g, GatherRowsOp.Forward(g, hidden, rows)), compact);
    }

    /// <summary>Builds a model of the config's architecture with freshly initialized weights (reproducible for a seed).</summary>
    public static LanguageModel Create(ModelConfig config, ulong seed = 1337)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        var m = new TransformerModel(config, config.ToSpec());
        m.Initialize(new Rng(seed));
        return m;
    }

    /// <summary>
    /// A trainable copy of loaded weights (a Quill checkpoint, GGUF incl. quantized, HF folder, llama2.c): F16/BF16 are
    /// widened and quantized blocks dequantized to f32 parameters. The architecture is kept (the config comes from the
    /// spec); dropout is 0 unless given.
    /// </summary>
    public static LanguageModel FromWeights(ModelWeights weights, float dropout = 0f)
    {
        ArgumentNullException.ThrowIfNull(weights);
        var config = ModelConfig.FromSpec(weights.Spec);
        config.Dropout = dropout;
        return TransformerModel.FromWeights(weights, config);
    }

    /// <summary>
    /// A frozen base for QLoRA over loaded weights, without widening them: matrices of a block type (a GGUF Q8_0,
    /// Q4_0, Q4_K, ... file) are viewed where they lie (the mapped file), never copied to f32; a base with no
    /// block-typed layer matrix (F32, F16, BF16) has its layer matrices and its head (the shared table when tied)
    /// quantized to <paramref name="floatMatrices"/> in memory, row by row, where rows are whole blocks. An untied
    /// token embedding is viewed as stored (a lookup reads only its rows); norms and biases are small f32 copies. Every
    /// parameter is frozen: add an adapter (AddLora / LoadLora) to train. <paramref name="weights"/> must stay
    /// undisposed while the model is used. InvalidConfigException when nothing could be quantized.
    /// </summary>
    public static LanguageModel QuantizedBase(ModelWeights weights, GgmlType floatMatrices = GgmlType.Q4_0, float dropout = 0f)
    {
        ArgumentNullException.ThrowIfNull(weights);
        if (!GgmlQuant.IsSupported(floatMatrices) || !GgmlTypeInfo.IsBlockType(floatMatrices))
            throw new InvalidConfigException($"QLoRA quantizes a float base to a block type, and {floatMatrices} is not one; use one of {GgmlQuant.QLoraTypeNames}.");
        var config = ModelConfig.FromSpec(weights.Spec);
        config.Dropout = dropout;
        return TransformerModel.QuantizedBase(weights, config, floatMatrices);
    }

    /// <summary>GPT-2 style init: N(0, 0.02) matrices, residual output projections scaled by 1/sqrt(2 L), norms 1, biases 0.</summary>
    protected void Initialize(Rng rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        double residualStd = 0.02 / Math.Sqrt(2.0 * Config.NLayer);
        foreach (var p in Parameters)
        {
            switch (Parameters.KindOf(p))
            {
                case ParameterKind.Matrix or ParameterKind.Embedding:
                    rng.FillNormal(p.Span, Parameters.IsResidualProjection(p) ? residualStd : 0.02);
                    break;
                case ParameterKind.Norm:
                    p.Span.Fill(1f);
                    break;
                default:
                    p.Span.Clear();
                    break;
            }
        }
    }

    /// <summary>Checks a token sequence against the model before running it.</summary>
    protected void CheckInput(int[] tokens, int b, int t)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (b < 1 || t < 1) throw new ArgumentException($"batch {b} x time {t} is empty.");
        if (t > Spec.MaxContext) throw new InvalidConfigException($"sequence of {t} tokens is longer than the model's context (block_size {Spec.MaxContext}); shorten it.");
        if (tokens.Length < b * t) throw new ArgumentException($"{tokens.Length} tokens for batch {b} x time {t}.");
    }
}
