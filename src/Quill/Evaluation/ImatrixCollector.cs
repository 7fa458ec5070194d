// Computes an importance matrix the way llama-imatrix does (tools/imatrix/imatrix.cpp): the text is tokenized once
// (BOS first when the model adds one) and cut into chunks of Context tokens (tokens / Context of them, at most
// MaxChunks), each chunk's first token replaced by BOS when the model adds one; every chunk runs through the model
// from an empty cache and, for every layer matrix product, the squares of each input column are summed over all
// its tokens (ImportanceMatrix.Accumulate). Entries are named as GgufExport names the matrices (q, k and v share
// the attention input; gate and up the MLP input; gpt2's fused attn_qkv). The output head is left out, as
// llama-imatrix leaves it out without --process-output. Like llama-imatrix it reports the perplexity of each chunk's
// second half as it goes (llama-perplexity's scoring).
// Does not handle: MoE experts, several sequences at once (chunks run one after another).
using System.Diagnostics;
using Quill.Inference;
using Quill.Kernels;
using Quill.Models;
using Quill.Quantization;

namespace Quill.Evaluation;

/// <summary>What an importance-matrix run did.</summary>
/// <param name="Matrix">The importance matrix.</param>
/// <param name="Chunks">Chunks run.</param>
/// <param name="Perplexity">Perplexity of the chunks' second halves.</param>
/// <param name="Elapsed">Time the chunks took.</param>
public sealed record ImatrixResult(ImportanceMatrix Matrix, int Chunks, double Perplexity, TimeSpan Elapsed);

/// <summary>llama-imatrix's collection on Quill's engine.</summary>
public static class ImatrixCollector
{
    /// <summary>The GGUF tensor names an observed input feeds in layer <paramref name="layer"/> of <paramref name="spec"/>.</summary>
    public static IReadOnlyList<string> TensorNamesFor(ModelSpec spec, int layer, MatrixInput input, string source)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var n = TensorNames.Gguf;
        string Name(WeightSlot s) => n.Name(s, layer)!;
        return input switch
        {
            MatrixInput.Attention => GgufExport.ArchitectureOf(spec, source) == "gpt2"
                ? [Name(WeightSlot.Qkv)]
                : [Name(WeightSlot.Q), Name(WeightSlot.K), Name(WeightSlot.V)],
            MatrixInput.AttentionOutput => [Name(WeightSlot.O)],
            MatrixInput.Mlp => spec.Mlp == MlpKind.SwiGlu ? [Name(WeightSlot.Gate), Name(WeightSlot.Up)] : [Name(WeightSlot.Up)],
            _ => [Name(WeightSlot.Down)],
        };
    }

    /// <summary>
    /// Runs up to <paramref name="maxChunks"/> chunks (0: all) of <paramref name="context"/> tokens of
    /// <paramref name="tokens"/> (BOS already in front where the model wants it) and sums the squared inputs.
    /// </summary>
    public static ImatrixResult Collect(InferenceModel model, int[] tokens, int context, int maxChunks, string dataset,
        IProgress<EvalProgress>? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokens);
        var spec = model.Spec;
        if (context < 4) throw new InvalidConfigException($"--ctx must be at least 4 tokens (got {context}).");
        if (context > spec.MaxContext) throw new InvalidConfigException($"--ctx {context} exceeds the model's context of {spec.MaxContext} tokens; pass at most {spec.MaxContext}.");
        if (maxChunks < 0) throw new InvalidConfigException($"--chunks must not be negative (got {maxChunks}).");
        int chunks = tokens.Length / context;
        if (chunks == 0)
            throw new InvalidConfigException($"the text is {tokens.Length} tokens; one chunk of --ctx {context} needs at least {context}; give more text or a smaller --ctx.");
        if (maxChunks > 0) chunks = Math.Min(chunks, maxChunks);

        var matrix = new ImportanceMatrix { ChunkSize = context };
        matrix.Datasets.Add(dataset);
        var names = new IReadOnlyList<string>[spec.Layers, 4];
        for (int l = 0; l < spec.Layers; l++)
        {
            for (int i = 0; i < 4; i++) names[l, i] = TensorNamesFor(spec, l, (MatrixInput)i, model.Source);
        }
        var engine = new InferenceEngine(model, context)
        {
            InputObserver = (layer, input, rows, count, width) =>
            {
                foreach (string name in names[layer, (int)input]) matrix.Accumulate(name, rows, count, width);
            },
        };
        var cache = engine.CreateCache(context);
        int bos = model.AddBos && model.Tokenizer is { BosId: >= 0 } t ? t.BosId : -1;
        int first = context / 2, scored = context - 1 - first, v = spec.VocabSize;
        var logits = new float[(long)(context - first) * v];
        var lse = new float[scored];
        double nll = 0;
        long count = 0;
        var sw = Stopwatch.StartNew();
        for (int c = 0; c < chunks; c++)
        {
            cancel.ThrowIfCancellationRequested();
            var ids = tokens.AsSpan(c * context, context).ToArray();
            if (bos >= 0) ids[0] = bos;
            cache.Reset();
            engine.Forward(cache, ids.AsSpan(0, first), logits.AsSpan(0, v));
            engine.Forward(cache, ids.AsSpan(first), logits, allLogits: true);
            var targets = ids.AsSpan(first + 1, scored).ToArray();
            CrossEntropy.Forward(logits.AsSpan(0, scored * v), targets, lse, scored, v);
            for (int j = 0; j < scored; j++) nll += (double)lse[j] - logits[(long)j * v + targets[j]];
            count += scored;
            matrix.ChunkCount = c + 1;
            progress?.Report(new EvalProgress(c + 1, chunks, sw.Elapsed, $"PPL {Math.Exp(nll / count):F4}"));
        }
        return new ImatrixResult(matrix, chunks, Math.Exp(nll / count), sw.Elapsed);
    }

    /// <summary>
    /// Checks that <paramref name="matrix"/> fits <paramref name="model"/>: every entry whose name the model has
    /// must have one value per input column, and at least one entry must name a matrix of the model. Returns the
    /// number of the model's weighted matrices it covers.
    /// </summary>
    public static int CheckFits(ImportanceMatrix matrix, InferenceModel model, string path)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        ArgumentNullException.ThrowIfNull(model);
        var spec = model.Spec;
        int covered = 0;
        for (int l = 0; l < spec.Layers; l++)
        {
            for (int i = 0; i < 4; i++)
            {
                var input = (MatrixInput)i;
                int width = input switch
                {
                    MatrixInput.AttentionOutput => spec.QDim,
                    MatrixInput.MlpDown => spec.Hidden,
                    _ => spec.Dim,
                };
                foreach (string name in TensorNamesFor(spec, l, input, model.Source))
                {
                    if (!matrix.Entries.TryGetValue(name, out var e)) continue;
                    if (e.Sums.Length != width)
                        throw new InvalidConfigException($"{path}: {name} has {e.Sums.Length} values but the model's matrix has {width} input columns; the importance matrix was made for another model.");
                    covered++;
                }
            }
        }
        if (covered == 0)
            throw new InvalidConfigException($"{path}: none of its {matrix.Entries.Count} entries (e.g. {matrix.Entries.Keys.First()}) names a matrix of {model.Source}; the importance matrix was made for another model.");
        return covered;
    }
}
