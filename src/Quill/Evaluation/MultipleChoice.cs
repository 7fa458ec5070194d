// Multiple-choice tasks scored by log-likelihood, lm-evaluation-harness's way (lm_eval/api/task.py, see
// ../shared/research/wave2-facts.md 4.2): each choice is a continuation of the item's context after a delimiter
// (" "); acc picks the choice with the largest summed log-likelihood, acc_norm the largest log-likelihood divided by
// the choice's length in characters (Unicode scalar values, as Python's len; the delimiter not counted). The first
// of equal scores wins, as numpy's argmax. Standard errors are the binomial sqrt(p (1 - p) / (n - 1)).
// Readers (HellaSwag in llama.cpp's 6-line text and in the harness's JSONL with its preprocessing; question / choices
// / answer JSONL for MMLU-style sets) live beside it in HellaSwag.cs and Mmlu.cs.
// Does not handle: acc_mutual_info (unconditional scoring), few-shot contexts (the item's context is all it reads).
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Quill.Inference;

namespace Quill.Evaluation;

/// <summary>A multiple-choice item: a context, the choices (without delimiter) and the gold index.</summary>
public sealed record ChoiceItem(string Context, IReadOnlyList<string> Choices, int Gold, string? Id = null);

/// <summary>The per-item outcome: each choice's summed log-likelihood and the two picks.</summary>
public sealed record ChoiceOutcome(ChoiceItem Item, double[] LogLikelihoods, int[] TokenCounts, int Pick, int PickNorm)
{
    public bool Correct => Pick == Item.Gold;

    public bool CorrectNorm => PickNorm == Item.Gold;
}

/// <summary>The result of a multiple-choice task.</summary>
public sealed record ChoiceResult(string Task, IReadOnlyList<ChoiceOutcome> Outcomes, TimeSpan Elapsed)
{
    public double Acc => Outcomes.Count == 0 ? 0 : (double)Outcomes.Count(o => o.Correct) / Outcomes.Count;

    public double AccNorm => Outcomes.Count == 0 ? 0 : (double)Outcomes.Count(o => o.CorrectNorm) / Outcomes.Count;

    public EvalReport ToReport(string model, Dictionary<string, object?> settings)
    {
        int n = Outcomes.Count;
        var r = new EvalReport { Task = Task, Model = model, Settings = settings, Elapsed = Elapsed };
        r.Metrics.Add(new EvalMetric("acc", Acc, Statistics.ProportionError(Acc, n), "argmax of summed log-likelihood"));
        r.Metrics.Add(new EvalMetric("acc_norm", AccNorm, Statistics.ProportionError(AccNorm, n), "argmax of log-likelihood / characters of the choice"));
        double chance = n == 0 ? 0 : Outcomes.Average(o => 1.0 / o.Item.Choices.Count);
        r.Metrics.Add(new EvalMetric("random_chance", chance));
        r.Metrics.Add(new EvalMetric("items", n));
        foreach (var o in Outcomes)
        {
            var lls = new JsonArray();
            foreach (double x in o.LogLikelihoods) lls.Add(x);
            r.Items.Add(new JsonObject
            {
                ["id"] = o.Item.Id, ["gold"] = o.Item.Gold, ["pick"] = o.Pick, ["pick_norm"] = o.PickNorm,
                ["correct"] = o.Correct, ["correct_norm"] = o.CorrectNorm, ["loglikelihoods"] = lls,
            });
        }
        return r;
    }
}

/// <summary>Runs multiple-choice items through a model.</summary>
public static class MultipleChoice
{
    /// <summary>Scores every item; progress gets (items done, items).</summary>
    public static ChoiceResult Run(InferenceModel model, string task, IReadOnlyList<ChoiceItem> items, string delimiter = " ",
        IProgress<EvalProgress>? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(items);
        var scorer = new LogLikelihood(model, task);
        var outcomes = new List<ChoiceOutcome>(items.Count);
        var sw = Stopwatch.StartNew();
        int right = 0, rightNorm = 0;
        foreach (var item in items)
        {
            cancel.ThrowIfCancellationRequested();
            var scores = scorer.Score(item.Context, [.. item.Choices.Select(c => delimiter + c)]);
            double[] lls = [.. scores.Select(s => s.LogLikelihood)];
            double[] norm = new double[lls.Length];
            for (int i = 0; i < lls.Length; i++) norm[i] = lls[i] / Math.Max(1, CharLength(item.Choices[i]));
            var o = new ChoiceOutcome(item, lls, [.. scores.Select(s => s.Tokens)], ArgMax(lls), ArgMax(norm));
            outcomes.Add(o);
            if (o.Correct) right++;
            if (o.CorrectNorm) rightNorm++;
            int n = outcomes.Count;
            progress?.Report(new EvalProgress(n, items.Count, sw.Elapsed,
                string.Create(CultureInfo.InvariantCulture, $"acc {100.0 * right / n:F1}% acc_norm {100.0 * rightNorm / n:F1}%")));
        }
        return new ChoiceResult(task, outcomes, sw.Elapsed);
    }

    /// <summary>Python's len: Unicode scalar values.</summary>
    public static int CharLength(string s)
    {
        ArgumentNullException.ThrowIfNull(s);
        int n = 0;
        foreach (var _ in s.EnumerateRunes()) n++;
        return n;
    }

    private static int ArgMax(double[] x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }
}
