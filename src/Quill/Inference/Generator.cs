// Text generation on top of InferenceEngine: encode the prompt (BOS when the model wants it), prefill it as one
// batch, then decode token by token with the Sampler, streaming each token's text (whole UTF-8 characters) as an
// IAsyncEnumerable. Stops at max tokens, at a stop token (EOS and the model's end-of-turn ids unless disabled, plus
// any given), or at a stop string (through TextAssembler: text that could still become a stop string is held back,
// and neither the stop string nor half a surrogate pair is ever emitted). Records prefill and decode throughput of
// the last run.
// Does not handle: several sequences at once (Inference.Batching.BatchScheduler batches them continuously).
// Glossary: V vocabulary.
using System.Diagnostics;
using System.Runtime.CompilerServices;
using Quill.Tokenization;

namespace Quill.Inference;

/// <summary>What to generate.</summary>
public sealed record GenerationOptions
{
    public SamplingOptions Sampling { get; init; } = new();

    /// <summary>Most tokens to generate.</summary>
    public int MaxTokens { get; init; } = 256;

    /// <summary>Texts that end the generation (not emitted).</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];

    /// <summary>Token ids that end the generation, in addition to EOS (not emitted).</summary>
    public IReadOnlyList<int> StopTokens { get; init; } = [];

    /// <summary>Stop at the tokenizer's EOS and the model's end-of-turn ids.</summary>
    public bool StopAtEos { get; init; } = true;

    /// <summary>Start the prompt with BOS (null: as the model file says).</summary>
    public bool? AddBos { get; init; }
}

/// <summary>One generated token: its id, the text it completes, and log-probabilities when asked for.</summary>
public sealed record GeneratedToken(int Id, string Text, float Logprob, IReadOnlyList<TokenLogprob>? TopLogprobs);

/// <summary>Throughput of one generation.</summary>
public sealed record GenerationStats(int PromptTokens, double PrefillSeconds, int GeneratedTokens, double DecodeSeconds, string FinishReason)
{
    public double PrefillTokensPerSecond => PrefillSeconds > 0 ? PromptTokens / PrefillSeconds : 0;

    /// <summary>Decode rate, the first generated token excluded (it comes from the prefill's logits).</summary>
    public double DecodeTokensPerSecond => DecodeSeconds > 0 && GeneratedTokens > 1 ? (GeneratedTokens - 1) / DecodeSeconds : 0;
}

/// <summary>Generates text from a prompt with a model and its tokenizer.</summary>
public sealed class Generator
{
    private readonly InferenceEngine engine;
    private readonly ITokenizer tokenizer;

    public Generator(InferenceEngine engine, ITokenizer? tokenizer = null)
    {
        ArgumentNullException.ThrowIfNull(engine);
        this.engine = engine;
        this.tokenizer = tokenizer ?? engine.Model.Tokenizer
            ?? throw new QuillException($"{engine.Model.Source}: no tokenizer found with the model; pass --tokenizer PATH.");
    }

    public ITokenizer Tokenizer => tokenizer;

    public InferenceEngine Engine => engine;

    /// <summary>Statistics of the last finished generation.</summary>
    public GenerationStats? LastStats { get; private set; }

    /// <summary>The prompt's token ids (with BOS when asked or when the model wants it).</summary>
    public int[] EncodePrompt(string prompt, bool? addBos = null)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        int[] ids = tokenizer.Encode(prompt);
        bool bos = (addBos ?? engine.Model.AddBos) && tokenizer.BosId >= 0;
        return bos ? [tokenizer.BosId, .. ids] : ids;
    }

    /// <summary>Streams the continuation of a text prompt (prompt not included).</summary>
    public IAsyncEnumerable<GeneratedToken> GenerateAsync(string prompt, GenerationOptions options, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        return GenerateAsync(EncodePrompt(prompt, options.AddBos), options, null, cancel);
    }

    /// <summary>
    /// Streams the continuation of prompt ids. With a cache, the ids continue what the cache holds (a chat); without
    /// one, a fresh cache is used.
    /// </summary>
    public async IAsyncEnumerable<GeneratedToken> GenerateAsync(IReadOnlyList<int> promptIds, GenerationOptions options, KvCache? cache = null,
        [EnumeratorCancellation] CancellationToken cancel = default)
    {
        await Task.Yield();
        foreach (var t in Generate(promptIds, options, cache, cancel)) yield return t;
    }

    /// <summary>The synchronous form of <see cref="GenerateAsync(IReadOnlyList{int}, GenerationOptions, KvCache?, CancellationToken)"/>.</summary>
    public IEnumerable<GeneratedToken> Generate(IReadOnlyList<int> promptIds, GenerationOptions options, KvCache? cache = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(promptIds);
        ArgumentNullException.ThrowIfNull(options);
        if (options.MaxTokens < 0) throw new InvalidConfigException($"--max-tokens must not be negative (got {options.MaxTokens}).");
        if (promptIds.Count == 0) throw new QuillException("the prompt is empty and the tokenizer has no BOS token to start from; give a prompt.");
        var sampler = new Sampler(options.Sampling);
        cache ??= engine.CreateCache();
        int v = engine.Model.Spec.VocabSize;
        var stops = new HashSet<int>(options.StopTokens);
        if (options.StopAtEos)
        {
            if (tokenizer.EosId >= 0) stops.Add(tokenizer.EosId);
            foreach (int id in engine.Model.ExtraStopIds) stops.Add(id);
        }
        if (promptIds.Count + 1 > cache.Remaining && options.MaxTokens > 0 || promptIds.Count > cache.Remaining)
            throw new QuillException($"the prompt is {promptIds.Count} tokens but only {cache.Remaining} of the context's {cache.Capacity} positions are free; shorten it or raise --context (model maximum {engine.Model.Spec.MaxContext}).");
        return Run(promptIds, options, cache, sampler, stops, v, cancel);
    }

    private IEnumerable<GeneratedToken> Run(IReadOnlyList<int> promptIds, GenerationOptions options, KvCache cache, Sampler sampler,
        HashSet<int> stops, int v, CancellationToken cancel)
    {
        var logits = new float[v];
        var history = new List<int>(promptIds);
        var sw = Stopwatch.StartNew();
        engine.Forward(cache, promptIds.ToArray(), logits);
        double prefill = sw.Elapsed.TotalSeconds;
        sw.Restart();
        var text = new TextAssembler(tokenizer, options.StopStrings, promptIds[^1]);
        int generated = 0;
        string finish = "length";
        bool wantLogprobs = options.Sampling.Logprobs || options.Sampling.TopLogprobs > 0;
        int tokenizerVocab = tokenizer.VocabSize;
        try
        {
            while (generated < options.MaxTokens)
            {
                cancel.ThrowIfCancellationRequested();
                if (tokenizerVocab < v) logits.AsSpan(tokenizerVocab).Fill(float.NegativeInfinity);
                var top = options.Sampling.TopLogprobs > 0 ? new List<TokenLogprob>() : null;
                int next = sampler.Sample(logits, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(history), out float lp, top);
                generated++;
                if (stops.Contains(next))
                {
                    finish = "stop";
                    break;
                }
                history.Add(next);
                string emit = text.Add(next);
                bool hitStop = text.Stopped;
                if (emit.Length > 0 || wantLogprobs || !hitStop) yield return new GeneratedToken(next, emit, lp, top);
                if (hitStop)
                {
                    finish = "stop";
                    break;
                }
                if (generated >= options.MaxTokens) break;
                if (cache.Remaining < 1)
                {
                    finish = "context";
                    break;
                }
                engine.Forward(cache, [next], logits);
            }
            if (finish != "stop")
            {
                string rest = text.Finish();
                if (rest.Length > 0) yield return new GeneratedToken(-1, rest, float.NaN, null);
            }
        }
        finally
        {
            LastStats = new GenerationStats(promptIds.Count, prefill, generated, sw.Elapsed.TotalSeconds, finish);
        }
    }
}
