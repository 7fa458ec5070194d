// KL divergence of a model (typically a quantization) from a base model on the same tokens, with the figures
// llama-perplexity --kl-divergence prints (tools/perplexity/perplexity.cpp, see ../shared/research/wave2-facts.md
// 4.1): both models run the same windows (Perplexity.Windows: llama-perplexity's chunks, second half scored), and
// per scored position KL(base || model) = sum_i p_base(i) (log p_base(i) - log p_model(i)), dp = p_model(next token)
// - p_base(next token), and whether both models' most likely token agree. Reported: the mean and percentiles of KLD
// (llama.cpp's interpolating percentile), RMS dp, "same top p", both perplexities and ln(PPL(Q)/PPL(base)).
// Where it differs from llama.cpp: llama.cpp stores the base's log-probabilities in 16 bits (a pass writing a file,
// a second pass reading it) and skips base log-probabilities below -16 in the sum; Quill runs both models in one
// pass and sums over the whole vocabulary in double, so its KLD is the exact value llama.cpp approximates.
// Does not handle: reading or writing llama.cpp's --kl-divergence-base logits files.
using System.Diagnostics;
using Quill.Inference;
using Quill.Kernels;

namespace Quill.Evaluation;

/// <summary>The figures of llama-perplexity --kl-divergence.</summary>
public sealed record KlDivergenceResult
{
    public required int Windows { get; init; }

    public required long Count { get; init; }

    public required double Ppl { get; init; }

    public required double PplError { get; init; }

    public required double BasePpl { get; init; }

    public required double BasePplError { get; init; }

    /// <summary>Mean of ln(PPL(Q)/PPL(base)) per token, i.e. mean NLL(Q) - mean NLL(base), and its error.</summary>
    public required double LogPplRatio { get; init; }

    public required double LogPplRatioError { get; init; }

    /// <summary>Correlation of the two models' per-token NLL.</summary>
    public required double NllCorrelation { get; init; }

    public required double MeanKld { get; init; }

    public required double MeanKldError { get; init; }

    /// <summary>KLD percentiles: maximum, 99.9, 99, 95, 90, median, 10, 5, 1, 0.1, minimum.</summary>
    public required IReadOnlyList<(string Name, double Value)> KldPercentiles { get; init; }

    public required double MeanDeltaP { get; init; }

    /// <summary>sqrt(mean dp^2) as a fraction (llama.cpp prints it in %).</summary>
    public required double RmsDeltaP { get; init; }

    public required double RmsDeltaPError { get; init; }

    public required double MaxDeltaP { get; init; }

    /// <summary>Share of positions where both models' most likely token is the same.</summary>
    public required double SameTop { get; init; }

    public required double SameTopError { get; init; }

    /// <summary>Per scored token: KLD, dp, same top (for the per-item JSONL, in order).</summary>
    public required IReadOnlyList<(double Kld, double DeltaP, bool SameTop)> Tokens { get; init; }

    public required TimeSpan Elapsed { get; init; }

    /// <summary>The report of task "kld".</summary>
    public EvalReport ToReport(string model, Dictionary<string, object?> settings)
    {
        var r = new EvalReport { Task = "kld", Model = model, Settings = settings, Elapsed = Elapsed };
        r.Metrics.Add(new EvalMetric("mean_kld", MeanKld, MeanKldError, "KL(base || model) per token, nats"));
        foreach (var (name, value) in KldPercentiles) r.Metrics.Add(new EvalMetric($"kld_{name.ToLowerInvariant().Replace("%", "", StringComparison.Ordinal)}", value));
        r.Metrics.Add(new EvalMetric("rms_delta_p", RmsDeltaP, RmsDeltaPError, "sqrt(mean (p_model - p_base)^2) of the next token, a fraction"));
        r.Metrics.Add(new EvalMetric("mean_delta_p", MeanDeltaP));
        r.Metrics.Add(new EvalMetric("max_delta_p", MaxDeltaP));
        r.Metrics.Add(new EvalMetric("same_top_p", SameTop, SameTopError, "share of positions where both models' top token agrees"));
        r.Metrics.Add(new EvalMetric("ppl", Ppl, PplError));
        r.Metrics.Add(new EvalMetric("ppl_base", BasePpl, BasePplError));
        r.Metrics.Add(new EvalMetric("ln_ppl_ratio", LogPplRatio, LogPplRatioError, "mean ln(PPL(Q)/PPL(base))"));
        r.Metrics.Add(new EvalMetric("nll_correlation", NllCorrelation));
        r.Metrics.Add(new EvalMetric("tokens_scored", Count));
        for (int i = 0; i < Tokens.Count; i++)
        {
            var (kld, dp, top) = Tokens[i];
            r.Items.Add(new System.Text.Json.Nodes.JsonObject { ["i"] = i, ["kld"] = kld, ["delta_p"] = dp, ["same_top"] = top });
        }
        return r;
    }
}

/// <summary>KL divergence of a model from a base model, as llama-perplexity measures it.</summary>
public static class KlDivergence
{
    /// <summary>Runs both models on the base's tokenization of <paramref name="text"/>.</summary>
    public static KlDivergenceResult Run(InferenceModel model, InferenceModel baseModel, string text, PerplexityOptions options,
        IProgress<EvalProgress>? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(baseModel);
        return Run(model, baseModel, Perplexity.Tokenize(baseModel, text, "kld"), options, progress, cancel);
    }

    /// <summary>Runs both models on the same tokens (BOS in front where the base wants it).</summary>
    public static KlDivergenceResult Run(InferenceModel model, InferenceModel baseModel, int[] tokens, PerplexityOptions options,
        IProgress<EvalProgress>? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(baseModel);
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(options);
        if (model.Spec.VocabSize != baseModel.Spec.VocabSize)
            throw new InvalidConfigException($"{model.Source} has a vocabulary of {model.Spec.VocabSize} tokens and the base {baseModel.Source} {baseModel.Spec.VocabSize}; KL divergence compares models over the same vocabulary.");
        int bos = baseModel.Tokenizer?.BosId ?? -1;
        var windows = Perplexity.Windows(tokens.Length, options, baseModel.AddBos && bos >= 0);
        var q = new WindowRunner(model, options.Context);
        var b = new WindowRunner(baseModel, options.Context);
        var acc = new KldAccumulator(q.Vocab);
        var sw = Stopwatch.StartNew();
        for (int w = 0; w < windows.Count; w++)
        {
            cancel.ThrowIfCancellationRequested();
            var win = windows[w];
            var targets = tokens.AsSpan(win.Start + win.FirstScoredRow + 1, win.Scored).ToArray();
            float[] baseRows = b.Logits(tokens, win, bos).ToArray();
            acc.Add(baseRows, q.Logits(tokens, win, bos), targets);
            progress?.Report(new EvalProgress(w + 1, windows.Count, sw.Elapsed, $"KLD {acc.MeanKld:F6}"));
        }
        return acc.Result(windows.Count, sw.Elapsed);
    }
}

/// <summary>Accumulates llama-perplexity's KL-divergence statistics from rows of base and model logits.</summary>
internal sealed class KldAccumulator(int vocab)
{
    private readonly List<(double Kld, double DeltaP, bool SameTop)> perToken = [];
    private double sNll, sNll2, sBase, sBase2, sCross, sKld, sKld2, sDp, sDp2, sDp4, maxDp;
    private long count, same;

    public double MeanKld => count == 0 ? 0 : sKld / count;

    /// <summary>Adds positions: baseRows and rows [n, V] of logits, targets [n] the tokens they predict.</summary>
    public unsafe void Add(ReadOnlySpan<float> baseRows, ReadOnlySpan<float> rows, int[] targets)
    {
        int n = targets.Length, v = vocab;
        var lse = new double[n];
        var baseLse = new double[n];
        var kld = new double[n];
        var sameTop = new bool[n];
        fixed (float* pq = rows, pb = baseRows)
        {
            float* pq_ = pq, pb_ = pb;
            KernelThreads.ParallelFor(n, 8, (r0, r1) =>
            {
                for (int r = r0; r < r1; r++)
                {
                    float* rq = pq_ + (long)r * v, rb = pb_ + (long)r * v;
                    int topQ = 0, topB = 0;
                    for (int i = 1; i < v; i++)
                    {
                        if (rq[i] > rq[topQ]) topQ = i;
                        if (rb[i] > rb[topB]) topB = i;
                    }
                    double sq = 0, sb = 0;
                    for (int i = 0; i < v; i++)
                    {
                        sq += Math.Exp(rq[i] - (double)rq[topQ]);
                        sb += Math.Exp(rb[i] - (double)rb[topB]);
                    }
                    double qShift = rq[topQ] + Math.Log(sq), baseShift = rb[topB] + Math.Log(sb), s = 0;
                    for (int i = 0; i < v; i++)
                    {
                        double logB = rb[i] - baseShift, logQ = rq[i] - qShift;
                        s += Math.Exp(logB) * (logB - logQ);
                    }
                    lse[r] = qShift;
                    baseLse[r] = baseShift;
                    kld[r] = s;
                    sameTop[r] = topQ == topB;
                }
            });
        }
        for (int j = 0; j < n; j++)
        {
            int t = targets[j];
            double nq = lse[j] - rows[j * v + t], nb = baseLse[j] - baseRows[j * v + t];
            double dp = Math.Exp(-nq) - Math.Exp(-nb);
            sNll += nq;
            sNll2 += nq * nq;
            sBase += nb;
            sBase2 += nb * nb;
            sCross += nq * nb;
            sKld += kld[j];
            sKld2 += kld[j] * kld[j];
            sDp += dp;
            sDp2 += dp * dp;
            sDp4 += dp * dp * dp * dp;
            maxDp = Math.Max(maxDp, Math.Abs(dp));
            if (sameTop[j]) same++;
            perToken.Add((kld[j], dp, sameTop[j]));
        }
        count += n;
    }

    public KlDivergenceResult Result(int windows, TimeSpan elapsed)
    {
        if (count == 0) throw new InvalidConfigException("no tokens were scored, so there is no KL divergence to report.");
        var sorted = perToken.Select(t => t.Kld).Order().ToArray();
        double eq = Statistics.StandardError(sNll, sNll2, count), eb = Statistics.StandardError(sBase, sBase2, count);
        double cov = count < 10 ? 0 : (sCross / count - sNll / count * (sBase / count)) / (count - 1);
        double mseErr = Statistics.StandardError(sDp2, sDp4, count), rms = Math.Sqrt(sDp2 / count);
        double top = (double)same / count;
        return new KlDivergenceResult
        {
            Windows = windows,
            Count = count,
            Ppl = Math.Exp(sNll / count),
            PplError = Math.Exp(sNll / count) * eq,
            BasePpl = Math.Exp(sBase / count),
            BasePplError = Math.Exp(sBase / count) * eb,
            LogPplRatio = sNll / count - sBase / count,
            LogPplRatioError = Math.Sqrt(Math.Max(0, eq * eq + eb * eb - 2 * cov)),
            NllCorrelation = eq > 0 && eb > 0 ? cov / (eq * eb) : 0,
            MeanKld = sKld / count,
            MeanKldError = Statistics.StandardError(sKld, sKld2, count),
            KldPercentiles =
            [
                ("Maximum", sorted[^1]), ("99.9%", Statistics.Percentile(sorted, 0.999)), ("99.0%", Statistics.Percentile(sorted, 0.99)),
                ("95.0%", Statistics.Percentile(sorted, 0.95)), ("90.0%", Statistics.Percentile(sorted, 0.90)), ("Median", Statistics.Median(sorted)),
                ("10.0%", Statistics.Percentile(sorted, 0.10)), ("5.0%", Statistics.Percentile(sorted, 0.05)), ("1.0%", Statistics.Percentile(sorted, 0.01)),
                ("0.1%", Statistics.Percentile(sorted, 0.001)), ("Minimum", sorted[0]),
            ],
            MeanDeltaP = sDp / count,
            RmsDeltaP = rms,
            RmsDeltaPError = rms > 0 ? 0.5 / rms * mseErr : 0,
            MaxDeltaP = maxDp,
            SameTop = top,
            SameTopError = Statistics.ProportionError(top, count),
            Tokens = perToken,
            Elapsed = elapsed,
        };
    }
}
