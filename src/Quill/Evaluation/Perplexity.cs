// Perplexity of a model on a text, by llama.cpp's llama-perplexity method (tools/perplexity/perplexity.cpp, see
// ../shared/research/wave2-facts.md 4.1): the whole text is tokenized once (with BOS when the model adds one), cut
// into non-overlapping windows of Context tokens (tokens / Context of them; the rest is dropped), each window's first
// token replaced by BOS when the model adds one, and only the second half scored: rows first .. Context-2 with
// first = Context / 2 predict tokens first+1 .. Context-1 (Context - 1 - first tokens per window).
// PPL = exp(mean NLL), uncertainty PPL * sqrt(var(NLL) / (count - 1)), as llama.cpp prints "PPL = x +/- y".
// With Stride > 0 it is llama.cpp's --ppl-stride mode instead: windows of Context tokens starting every Stride tokens,
// each scoring its last Stride tokens; llama.cpp puts the BOS into that token array only after the window has run, so
// the window runs with the text's own first token, and so does Quill (the effective behaviour, not the intended one).
// Bits per byte = total NLL / (UTF-8 bytes of the scored tokens * ln 2), the bytes being those the scored tokens
// decode to (lm-evaluation-harness divides by the bytes of the whole document because it scores every token).
// The forward runs on the GEMM path: per window the unscored first half is one prefill, the scored half a second
// prefill that returns every row's logits, and the rows' log-softmax is Kernels.CrossEntropy (vectorized, threaded).
// Does not handle: texts shorter than two windows (refused, as llama.cpp does), batching several windows into one
// forward (each runs on its own, one after another).
using System.Diagnostics;
using Quill.Inference;
using Quill.Kernels;

namespace Quill.Evaluation;

/// <summary>How a text is cut into scored windows.</summary>
public sealed record PerplexityOptions
{
    /// <summary>Tokens per window (llama-perplexity's -c, default 512).</summary>
    public int Context { get; init; } = 512;

    /// <summary>0: non-overlapping windows scoring their second half; N: a window every N tokens scoring its last N.</summary>
    public int Stride { get; init; }

    /// <summary>Most windows to score (0: all), llama-perplexity's --chunks.</summary>
    public int MaxWindows { get; init; }

    internal void Validate()
    {
        if (Context < 4) throw new InvalidConfigException($"--context must be at least 4 tokens (got {Context}).");
        if (Stride < 0 || Stride >= Context) throw new InvalidConfigException($"--stride must be between 1 and --context - 1 = {Context - 1} (got {Stride}); leave it out for llama-perplexity's default windows.");
        if (MaxWindows < 0) throw new InvalidConfigException($"--limit must not be negative (got {MaxWindows}).");
    }
}

/// <summary>One window of the text: where it starts, which of its rows are scored, and whether BOS replaces its first token.</summary>
public readonly record struct ScoringWindow(int Start, int Length, int FirstScoredRow, bool BosFirst)
{
    /// <summary>Tokens scored: rows FirstScoredRow .. Length-2 predict tokens FirstScoredRow+1 .. Length-1.</summary>
    public int Scored => Length - 1 - FirstScoredRow;
}

/// <summary>A window's result (one line of the per-item JSONL).</summary>
public sealed record PerplexityWindow(int Index, int Start, int Scored, double Nll, int Bytes, double RunningPpl);

/// <summary>Perplexity of a text and how it was measured.</summary>
public sealed record PerplexityResult
{
    public required int TextTokens { get; init; }

    public required int Context { get; init; }

    public required int Stride { get; init; }

    public required IReadOnlyList<PerplexityWindow> Windows { get; init; }

    /// <summary>Tokens scored.</summary>
    public required long Count { get; init; }

    /// <summary>Sum of the scored tokens' negative log-likelihoods (nats).</summary>
    public required double NllSum { get; init; }

    /// <summary>Sum of their squares.</summary>
    public required double Nll2Sum { get; init; }

    /// <summary>UTF-8 bytes the scored tokens stand for.</summary>
    public required long Bytes { get; init; }

    /// <summary>Tokens the model ran (windows * context).</summary>
    public required long TokensRun { get; init; }

    public required TimeSpan Elapsed { get; init; }

    public double MeanNll => NllSum / Count;

    /// <summary>Standard error of the mean NLL: sqrt(var / (count - 1)), 0 when it is undefined.</summary>
    public double MeanNllError => Statistics.StandardError(NllSum, Nll2Sum, Count);

    public double Ppl => Math.Exp(MeanNll);

    /// <summary>llama.cpp's "+/-": PPL times the standard error of the mean NLL.</summary>
    public double PplError => Ppl * MeanNllError;

    public double BitsPerByte => NllSum / (Bytes * Math.Log(2));

    public double BitsPerByteError => MeanNllError * Count / (Bytes * Math.Log(2));

    public double TokensPerSecond => TokensRun / Math.Max(1e-9, Elapsed.TotalSeconds);

    /// <summary>The report of task "ppl" (perplexity first) or "bpb" (bits per byte first).</summary>
    public EvalReport ToReport(string task, string model, Dictionary<string, object?> settings)
    {
        var ppl = new EvalMetric("ppl", Ppl, PplError, "llama-perplexity: exp(mean NLL) +/- PPL * stderr(NLL)");
        var bpb = new EvalMetric("bits_per_byte", BitsPerByte, BitsPerByteError, "NLL / (UTF-8 bytes of the scored tokens * ln 2)");
        var report = new EvalReport
        {
            Task = task, Model = model, Settings = settings, Elapsed = Elapsed,
            Metrics = task == "bpb" ? [bpb, ppl] : [ppl, bpb],
        };
        report.Metrics.Add(new EvalMetric("mean_nll", MeanNll, MeanNllError));
        report.Metrics.Add(new EvalMetric("tokens_scored", Count));
        report.Metrics.Add(new EvalMetric("tokens_per_second", TokensPerSecond, Note: "tokens run (windows * context) per second of forward and scoring"));
        foreach (var w in Windows)
        {
            report.Items.Add(new System.Text.Json.Nodes.JsonObject
            {
                ["window"] = w.Index, ["start"] = w.Start, ["scored"] = w.Scored, ["nll"] = w.Nll, ["bytes"] = w.Bytes,
                ["ppl"] = Math.Exp(w.Nll / w.Scored), ["running_ppl"] = w.RunningPpl,
            });
        }
        return report;
    }
}

/// <summary>llama-perplexity's measurement on Quill's engine.</summary>
public static class Perplexity
{
    /// <summary>The text's tokens as llama.cpp makes them: BOS first when the model adds one, then the text.</summary>
    public static int[] Tokenize(InferenceModel model, string text, string task = "ppl")
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(text);
        var tok = RequireTokenizer(model, task);
        int[] ids = tok.Encode(text);
        if (!model.AddBos || tok.BosId < 0) return ids;
        var all = new int[ids.Length + 1];
        all[0] = tok.BosId;
        ids.CopyTo(all, 1);
        return all;
    }

    /// <summary>The model's tokenizer, or a one-line error naming the task that needs it.</summary>
    public static Tokenization.ITokenizer RequireTokenizer(InferenceModel model, string task)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.Tokenizer ?? throw new InvalidConfigException(
            $"{model.Source} carries no tokenizer, and the '{task}' task needs one to turn text into tokens; pass --tokenizer FILE (tokenizer.json, tokenizer.model, tokenizer.bin, ...).");
    }

    /// <summary>The windows llama-perplexity scores for a text of <paramref name="tokenCount"/> tokens.</summary>
    public static IReadOnlyList<ScoringWindow> Windows(int tokenCount, PerplexityOptions options, bool addBos)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        int n = options.Context;
        var windows = new List<ScoringWindow>();
        if (options.Stride == 0)
        {
            if (tokenCount < 2 * n)
                throw new InvalidConfigException($"the text is {tokenCount} tokens; perplexity with --context {n} needs at least {2 * n} (two windows, as llama-perplexity does); give more text or a smaller --context.");
            int count = tokenCount / n;
            if (options.MaxWindows > 0) count = Math.Min(count, options.MaxWindows);
            for (int i = 0; i < count; i++) windows.Add(new ScoringWindow(i * n, n, n / 2, addBos));
        }
        else
        {
            int s = options.Stride;
            if (tokenCount <= n)
                throw new InvalidConfigException($"the text is {tokenCount} tokens; --stride needs more than --context {n}; give more text or a smaller --context.");
            int count = (tokenCount - n + s - 1) / s;
            if (options.MaxWindows > 0) count = Math.Min(count, options.MaxWindows);
            for (int i = 0; i < count; i++) windows.Add(new ScoringWindow(i * s, n, n - s - 1, false));
        }
        return windows;
    }

    /// <summary>Measures the perplexity of <paramref name="text"/>; progress gets (windows done, windows).</summary>
    public static PerplexityResult Run(InferenceModel model, string text, PerplexityOptions options, IProgress<EvalProgress>? progress = null,
        CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Run(model, Tokenize(model, text), options, progress, cancel);
    }

    /// <summary>Measures the perplexity of a token sequence (BOS already in front where the model wants it).</summary>
    public static PerplexityResult Run(InferenceModel model, int[] tokens, PerplexityOptions options, IProgress<EvalProgress>? progress = null,
        CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(options);
        var tok = model.Tokenizer;
        var windows = Windows(tokens.Length, options, model.AddBos && tok != null && tok.BosId >= 0);
        var runner = new WindowRunner(model, options.Context);
        var byteCounts = TokenBytes(model, tokens);
        var items = new List<PerplexityWindow>(windows.Count);
        double nll = 0, nll2 = 0;
        long count = 0, bytes = 0;
        var sw = Stopwatch.StartNew();
        for (int w = 0; w < windows.Count; w++)
        {
            cancel.ThrowIfCancellationRequested();
            var win = windows[w];
            var rowNll = runner.Run(tokens, win, tok?.BosId ?? -1);
            double sum = 0;
            int winBytes = 0;
            for (int j = 0; j < rowNll.Length; j++)
            {
                double v = rowNll[j];
                sum += v;
                nll2 += v * v;
                winBytes += byteCounts?[tokens[win.Start + win.FirstScoredRow + 1 + j]] ?? 0;
            }
            nll += sum;
            count += rowNll.Length;
            bytes += winBytes;
            items.Add(new PerplexityWindow(w, win.Start, rowNll.Length, sum, winBytes, Math.Exp(nll / count)));
            progress?.Report(new EvalProgress(w + 1, windows.Count, sw.Elapsed, $"PPL {Math.Exp(nll / count):F4}"));
        }
        return new PerplexityResult
        {
            TextTokens = tokens.Length, Context = options.Context, Stride = options.Stride, Windows = items, Count = count,
            NllSum = nll, Nll2Sum = nll2, Bytes = bytes, TokensRun = (long)windows.Count * options.Context, Elapsed = sw.Elapsed,
        };
    }

    /// <summary>UTF-8 bytes each token id decodes to (null without a tokenizer).</summary>
    private static int[]? TokenBytes(InferenceModel model, int[] tokens)
    {
        var tok = model.Tokenizer;
        if (tok == null) return null;
        var counts = new int[model.Spec.VocabSize];
        var seen = new bool[counts.Length];
        foreach (int t in tokens)
        {
            if ((uint)t >= (uint)counts.Length || seen[t]) continue;
            seen[t] = true;
            counts[t] = t == tok.BosId || t == tok.EosId ? 0 : tok.DecodeBytes([t]).Length;
        }
        return counts;
    }
}

/// <summary>Runs one scoring window of a model and returns the scored rows' logits or their tokens' NLLs.</summary>
internal sealed class WindowRunner
{
    private readonly InferenceEngine engine;
    private readonly KvCache cache;
    private readonly int vocab;
    private float[] logits = [];
    private float[] lse = [];

    public WindowRunner(InferenceModel model, int context)
    {
        engine = new InferenceEngine(model, context);
        cache = engine.CreateCache(context);
        vocab = model.Spec.VocabSize;
    }

    public int Vocab => vocab;

    /// <summary>Runs the window; returns the logits of its scored rows [Scored, V] (a buffer reused by the next call).</summary>
    public ReadOnlySpan<float> Logits(int[] tokens, ScoringWindow w, int bosId)
    {
        var ids = tokens.AsSpan(w.Start, w.Length).ToArray();
        if (w.BosFirst && bosId >= 0) ids[0] = bosId;
        cache.Reset();
        int first = w.FirstScoredRow, scored = w.Scored;
        if (logits.Length < (long)scored * vocab) logits = new float[(long)scored * vocab];
        if (first > 0) engine.Forward(cache, ids.AsSpan(0, first), logits.AsSpan(0, vocab));
        engine.Forward(cache, ids.AsSpan(first, scored), logits.AsSpan(0, scored * vocab), allLogits: true);
        return logits.AsSpan(0, scored * vocab);
    }

    /// <summary>Runs the window; returns the negative log-likelihood of each scored token.</summary>
    public double[] Run(int[] tokens, ScoringWindow w, int bosId)
    {
        var rows = Logits(tokens, w, bosId);
        var targets = tokens.AsSpan(w.Start + w.FirstScoredRow + 1, w.Scored).ToArray();
        int n = targets.Length;
        if (lse.Length < n) lse = new float[n];
        CrossEntropy.Forward(rows, targets, lse.AsSpan(0, n), n, vocab);
        var l = lse.AsSpan(0, n);
        var nll = new double[n];
        for (int j = 0; j < nll.Length; j++) nll[j] = (double)l[j] - rows[j * vocab + targets[j]];
        return nll;
    }
}
