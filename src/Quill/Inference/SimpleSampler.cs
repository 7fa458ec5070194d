// The simple sampler behind `quill sample`: recompute the model over the last block_size tokens for each new
// token (no KV cache), take the last position's logits, apply temperature and top-k, and draw with a seeded
// generator. Temperature 0 is greedy. Good enough for the small models `quill train` makes; the KV-cache engine is
// the inference work's.
using Quill.Autograd;
using Quill.Models;
using Quill.Tensors;
using Quill.Tokenization;

namespace Quill.Inference;

/// <summary>Sampling settings.</summary>
public sealed record SampleOptions(int MaxTokens = 200, float Temperature = 0.8f, int TopK = 200, ulong Seed = 1337);

/// <summary>Generates a continuation token by token.</summary>
public static class SimpleSampler
{
    /// <summary>
    /// Token ids that follow the prompt ids (prompt excluded). Stops early at stopId, if any. Only ids below
    /// tokenizerVocab are drawn (a model may be wider than its tokenizer; 0 = the model's vocabulary).
    /// </summary>
    public static List<int> Generate(LanguageModel model, IReadOnlyList<int> prompt, SampleOptions options, int stopId = -1, int tokenizerVocab = 0, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(options);
        if (options.MaxTokens < 0) throw new InvalidConfigException($"--max-tokens must not be negative (got {options.MaxTokens}).");
        if (!(options.Temperature >= 0)) throw new InvalidConfigException($"--temperature must be >= 0 (got {options.Temperature}).");
        int v = model.Config.VocabSize, block = model.Config.BlockSize;
        foreach (int id in prompt)
        {
            if ((uint)id >= (uint)v) throw new QuillException($"prompt token id {id} is outside the model's vocabulary of {v}; use the checkpoint's tokenizer.");
        }
        var context = new List<int>(prompt);
        var output = new List<int>();
        var rng = new Rng(options.Seed);
        var g = new Graph(recording: false);
        float[] probs = new float[v];
        for (int i = 0; i < options.MaxTokens; i++)
        {
            cancel.ThrowIfCancellationRequested();
            int start = Math.Max(0, context.Count - block);
            int[] window = context.GetRange(start, context.Count - start).ToArray();
            if (window.Length == 0) window = [0];
            g.Reset();
            var logits = model.Forward(g, window, 1, window.Length);
            var last = logits.Span.Slice((window.Length - 1) * v, tokenizerVocab > 0 ? Math.Min(v, tokenizerVocab) : v);
            int next = Pick(last, options, rng, probs);
            if (next == stopId) break;
            context.Add(next);
            output.Add(next);
        }
        return output;
    }

    /// <summary>Chooses a token from logits [V]: argmax at temperature 0, else top-k softmax sampling.</summary>
    public static int Pick(ReadOnlySpan<float> logits, SampleOptions options, Rng rng, float[] scratch)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(rng);
        ArgumentNullException.ThrowIfNull(scratch);
        int v = logits.Length;
        if (options.Temperature == 0f)
        {
            int best = 0;
            for (int j = 1; j < v; j++) if (logits[j] > logits[best]) best = j;
            return best;
        }
        float cutoff = float.NegativeInfinity;
        if (options.TopK > 0 && options.TopK < v)
        {
            logits.CopyTo(scratch);
            Array.Sort(scratch, 0, v);
            cutoff = scratch[v - options.TopK];
        }
        float max = float.NegativeInfinity;
        for (int j = 0; j < v; j++) max = Math.Max(max, logits[j]);
        double sum = 0;
        for (int j = 0; j < v; j++)
        {
            float p = logits[j] < cutoff ? 0f : MathF.Exp((logits[j] - max) / options.Temperature);
            scratch[j] = p;
            sum += p;
        }
        double r = rng.NextDouble() * sum, acc = 0;
        for (int j = 0; j < v; j++)
        {
            acc += scratch[j];
            if (acc > r) return j;
        }
        return v - 1;
    }
}
