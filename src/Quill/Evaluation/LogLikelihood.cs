// Log-likelihood of continuations given a context, as lm-evaluation-harness's loglikelihood requests compute it
// (lm_eval/models/huggingface.py _encode_pair and _loglikelihood_tokens, see ../shared/research/wave2-facts.md 4.2):
// trailing whitespace of the context moves to the front of the continuation; the context is encoded alone and
// context + continuation together, the continuation's tokens are the whole's tokens after the context's count; the
// model reads context tokens + continuation tokens (left-truncated to its window) and the continuation's log-
// probabilities are summed. "Greedy" says whether every continuation token is the model's argmax.
// BOS goes in front when the model adds one (llama.cpp models; the harness's HF default adds none, which for a Llama
// means scoring without the BOS it was trained with); an empty context with no BOS starts from EOS as the harness does.
// The context runs once per item and each continuation runs on a copy of its cache (KvCache.Truncate back to the
// context), on the GEMM path, so four endings cost one context plus four short prefills.
// Does not handle: batching items together, rolling log-likelihood of long documents (Perplexity does that).
using Quill.Inference;
using Quill.Kernels;
using Quill.Tokenization;

namespace Quill.Evaluation;

/// <summary>A continuation's score: summed log-probability, token count, and whether greedy decoding gives it.</summary>
public readonly record struct ContinuationScore(double LogLikelihood, int Tokens, bool Greedy);

/// <summary>Scores continuations of a context with a model.</summary>
public sealed class LogLikelihood
{
    private readonly InferenceModel model;
    private readonly ITokenizer tokenizer;
    private readonly InferenceEngine engine;
    private readonly KvCache cache;
    private readonly int vocab;
    private readonly int[] prefix;
    private float[] logits = [];

    /// <summary>Prepares a scorer; <paramref name="task"/> names the task in the error for a model without a tokenizer.</summary>
    public LogLikelihood(InferenceModel model, string task)
    {
        ArgumentNullException.ThrowIfNull(model);
        this.model = model;
        tokenizer = Perplexity.RequireTokenizer(model, task);
        engine = new InferenceEngine(model);
        cache = engine.CreateCache();
        vocab = model.Spec.VocabSize;
        prefix = model.AddBos && tokenizer.BosId >= 0 ? [tokenizer.BosId] : [];
    }

    /// <summary>The tokens of context and of each continuation, as the harness splits them.</summary>
    public (int[] Context, int[][] Continuations) Encode(string context, IReadOnlyList<string> continuations)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(continuations);
        string trimmed = context.TrimEnd();
        string moved = context[trimmed.Length..];
        int[] ctx = [.. prefix, .. tokenizer.Encode(trimmed)];
        if (ctx.Length == 0)
        {
            if (tokenizer.EosId < 0) throw new InvalidConfigException($"{model.Source}: an empty context needs a BOS or EOS token to start from, and the tokenizer has neither.");
            ctx = [tokenizer.EosId];
        }
        int own = ctx.Length - prefix.Length;
        var conts = new int[continuations.Count][];
        for (int i = 0; i < conts.Length; i++)
        {
            int[] whole = tokenizer.Encode(trimmed + moved + continuations[i]);
            conts[i] = whole.Length > own ? whole[own..] : [];
        }
        return (ctx, conts);
    }

    /// <summary>Scores each continuation after the context.</summary>
    public ContinuationScore[] Score(string context, IReadOnlyList<string> continuations)
    {
        var (ctx, conts) = Encode(context, continuations);
        var scores = new ContinuationScore[conts.Length];
        int window = engine.ContextLength;
        int longest = conts.Length == 0 ? 0 : conts.Max(c => c.Length);
        if (longest == 0) throw new InvalidConfigException("a continuation encodes to no tokens; every choice needs at least one token to score.");
        if (longest >= window) throw new InvalidConfigException($"a continuation of {longest} tokens does not fit the model's context of {window}.");
        // left-truncate the context so that the longest continuation fits (the harness truncates per request)
        int keep = Math.Min(ctx.Length, window + 1 - longest);
        int[] used = ctx[^keep..];
        if (logits.Length < (long)(longest + 1) * vocab) logits = new float[(long)(longest + 1) * vocab];
        cache.Reset();
        var last = new float[vocab];
        engine.Forward(cache, used, last);
        for (int i = 0; i < conts.Length; i++)
        {
            int[] c = conts[i];
            if (cache.CanTruncate(used.Length)) cache.Truncate(used.Length);
            else
            {
                cache.Reset(); // a windowed cache no longer holds the context's last window: run the context again
                engine.Forward(cache, used, last);
            }
            // row 0: the context's last logits predict c[0]; rows 1..n-1 come from running c[0..n-2]
            last.CopyTo(logits.AsSpan(0, vocab));
            if (c.Length > 1) engine.Forward(cache, c.AsSpan(0, c.Length - 1), logits.AsSpan(vocab, (c.Length - 1) * vocab), allLogits: true);
            var lse = new float[c.Length];
            CrossEntropy.Forward(logits.AsSpan(0, c.Length * vocab), c, lse, c.Length, vocab);
            double ll = 0;
            bool greedy = true;
            for (int j = 0; j < c.Length; j++)
            {
                var row = logits.AsSpan(j * vocab, vocab);
                ll += row[c[j]] - (double)lse[j];
                float target = row[c[j]];
                for (int k = 0; k < vocab && greedy; k++) if (row[k] > target) greedy = false;
            }
            scores[i] = new ContinuationScore(ll, c.Length, greedy);
        }
        return scores;
    }
}
