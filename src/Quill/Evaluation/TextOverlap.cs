// The bleu and rouge tasks: predictions scored against references (TextMetrics), the predictions read from a file
// (one a line, as are the references) or made by the model: greedy replies (GreedyAnswers, the model's chat layout,
// up to MaxTokens) to the "prompt" of each line of a JSONL file whose "reference" (text or array of texts) is the target.
// BLEU is corpus-level (one figure, no standard error); ROUGE is the mean of per-item F with its standard error, and
// with several references an item takes its best F per type (rouge-score's score_multi).
// Does not handle: sacreBLEU's bootstrap significance tests, detokenizing model output before scoring.
using System.Text.Json;
using System.Text.Json.Nodes;
using Quill.Inference;

namespace Quill.Evaluation;

/// <summary>BLEU and ROUGE reports from predictions and references.</summary>
public static class TextOverlap
{
    /// <summary>Reads a text file as one segment a line (a final empty line ignored).</summary>
    public static IReadOnlyList<string> ReadLines(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new InvalidFileException($"{path}: file not found.");
        var lines = File.ReadAllText(path).Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        if (lines.Count > 0 && lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1);
        return lines;
    }

    /// <summary>Reads {"prompt": ..., "reference": text or [texts]} lines: the prompts and the reference streams.</summary>
    public static (IReadOnlyList<string> Prompts, IReadOnlyList<IReadOnlyList<string>> References) ReadPromptFile(string path, int limit = 0)
    {
        ArgumentNullException.ThrowIfNull(path);
        int first = -1;
        var rows = JsonlFile.Read(path, limit, (r, where) =>
        {
            string prompt = JsonlFile.Text(r, "prompt")
                ?? throw new InvalidFileException($"{where}: missing text field \"prompt\" (a line is {{\"prompt\": ..., \"reference\": ...}}).");
            string[] rs = r.TryGetProperty("reference", out var x) ? x.ValueKind switch
            {
                JsonValueKind.String => [x.GetString()!],
                JsonValueKind.Array when x.GetArrayLength() > 0 && x.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String) => [.. x.EnumerateArray().Select(e => e.GetString()!)],
                _ => [],
            } : [];
            if (rs.Length == 0) throw new InvalidFileException($"{where}: \"reference\" must be text or a non-empty array of texts.");
            if (first < 0) first = rs.Length;
            else if (rs.Length != first) throw new InvalidFileException($"{where}: {rs.Length} reference(s) where the first line has {first}; give every line the same number.");
            return (Prompt: prompt, References: rs);
        });
        return ([.. rows.Select(x => x.Prompt)], [.. Enumerable.Range(0, Math.Max(first, 0)).Select(s => (IReadOnlyList<string>)[.. rows.Select(x => x.References[s])])]);
    }

    /// <summary>The model's greedy replies to prompts.</summary>
    public static IReadOnlyList<string> Generate(InferenceModel model, IReadOnlyList<string> prompts, int maxTokens, IProgress<EvalProgress>? progress, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(model);
        Perplexity.RequireTokenizer(model, "bleu / rouge");
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var answers = GreedyAnswers.Answer(model, prompts, new AnswerOptions { MaxTokens = maxTokens, BatchSize = 16 },
            new CallbackProgress<int>(n => progress?.Report(new EvalProgress(n, prompts.Count, sw.Elapsed, $"{n} answered"))), cancel);
        return [.. answers.Select(a => a.Text.Trim())];
    }

    /// <summary>The bleu task's report.</summary>
    public static EvalReport BleuReport(IReadOnlyList<string> predictions, IReadOnlyList<IReadOnlyList<string>> references, string model,
        Dictionary<string, object?> settings, TimeSpan elapsed)
    {
        var b = TextMetrics.Bleu(predictions, references);
        var r = new EvalReport { Task = "bleu", Model = model, Settings = settings, Elapsed = elapsed };
        r.Metrics.Add(new EvalMetric("bleu", b.Score, Note: "sacreBLEU defaults: 13a, exp smoothing, corpus level, 0-100"));
        for (int n = 0; n < 4; n++) r.Metrics.Add(new EvalMetric($"precision_{n + 1}", b.Precisions[n]));
        r.Metrics.Add(new EvalMetric("brevity_penalty", b.BrevityPenalty));
        r.Metrics.Add(new EvalMetric("hyp_len", b.HypothesisLength));
        r.Metrics.Add(new EvalMetric("ref_len", b.ReferenceLength));
        for (int i = 0; i < predictions.Count; i++)
            r.Items.Add(new JsonObject { ["i"] = i, ["prediction"] = predictions[i], ["reference"] = references[0][i] });
        return r;
    }

    /// <summary>The rouge task's report: mean ROUGE-1 / 2 / L F-measure over items.</summary>
    public static EvalReport RougeReport(IReadOnlyList<string> predictions, IReadOnlyList<IReadOnlyList<string>> references, string model,
        Dictionary<string, object?> settings, TimeSpan elapsed)
    {
        ArgumentNullException.ThrowIfNull(predictions);
        ArgumentNullException.ThrowIfNull(references);
        foreach (var s in references)
            if (s.Count != predictions.Count) throw new InvalidConfigException($"ROUGE: {predictions.Count} predictions but a reference stream of {s.Count} lines; give one reference line per prediction.");
        var r = new EvalReport { Task = "rouge", Model = model, Settings = settings, Elapsed = elapsed };
        var f = new double[3][];
        for (int k = 0; k < 3; k++) f[k] = new double[predictions.Count];
        for (int i = 0; i < predictions.Count; i++)
        {
            string p = predictions[i];
            f[0][i] = references.Max(s => TextMetrics.RougeN(s[i], p, 1).F);
            f[1][i] = references.Max(s => TextMetrics.RougeN(s[i], p, 2).F);
            f[2][i] = references.Max(s => TextMetrics.RougeL(s[i], p).F);
            r.Items.Add(new JsonObject { ["i"] = i, ["prediction"] = p, ["reference"] = references[0][i], ["rouge1"] = f[0][i], ["rouge2"] = f[1][i], ["rougeL"] = f[2][i] });
        }
        string[] names = ["rouge1", "rouge2", "rougeL"];
        for (int k = 0; k < 3; k++)
        {
            double sum = f[k].Sum(), sum2 = f[k].Sum(x => x * x);
            r.Metrics.Add(new EvalMetric(names[k], predictions.Count == 0 ? 0 : sum / predictions.Count, Statistics.StandardError(sum, sum2, predictions.Count), "mean F-measure (rouge-score defaults, no stemming)"));
        }
        r.Metrics.Add(new EvalMetric("items", predictions.Count));
        return r;
    }
}
