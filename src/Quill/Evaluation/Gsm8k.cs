// GSM8K as lm-evaluation-harness defines it (lm_eval/tasks/gsm8k/gsm8k.yaml, version 3.0; see
// ../shared/research/wave2-facts.md 4.2): each problem becomes "Question: {question}\nAnswer:" after k solved
// examples "Question: {q}\nAnswer: {full answer}" joined by blank lines; the model continues greedily until
// "Question:", "</s>" or "<|im_end|>" (or 256 tokens); two answers are extracted:
//   strict-match      the first match of "#### (\-?[0-9\.\,]+)", else "[invalid]";
//   flexible-extract  the last match of "(-?[$0-9.,]{2,})|(-?[0-9]+)" (its non-empty group), else "[invalid]";
// and each is compared with the reference answer by exact_match after both have had ",", "$", everything up to
// "#### " and a final "." removed, case ignored.
// Shots: the harness draws k examples from the train split; Quill takes the first k lines of --fewshot FILE, or, without
// one, the first k problems of the evaluated file itself (which are then not evaluated); the report says which.
// Does not handle: chain-of-thought variants (gsm8k-cot), self-consistency (several samples), the harness's random shot draw.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Quill.Inference;

namespace Quill.Evaluation;

/// <summary>A grade-school math problem and its worked answer ending in "#### number".</summary>
public sealed record MathProblem(string Question, string Answer);

/// <summary>One problem's generation and both extractions.</summary>
public sealed record MathOutcome(MathProblem Problem, string Generation, string Strict, string Flexible, bool StrictCorrect, bool FlexibleCorrect);

/// <summary>GSM8K's result.</summary>
public sealed record Gsm8kResult(IReadOnlyList<MathOutcome> Outcomes, int Shots, string ShotSource, TimeSpan Elapsed)
{
    public double StrictMatch => Outcomes.Count == 0 ? 0 : (double)Outcomes.Count(o => o.StrictCorrect) / Outcomes.Count;

    public double FlexibleExtract => Outcomes.Count == 0 ? 0 : (double)Outcomes.Count(o => o.FlexibleCorrect) / Outcomes.Count;

    public EvalReport ToReport(string model, Dictionary<string, object?> settings)
    {
        int n = Outcomes.Count;
        var r = new EvalReport { Task = "gsm8k", Model = model, Settings = settings, Elapsed = Elapsed };
        r.Settings["shots"] = Shots;
        r.Settings["shot_source"] = ShotSource;
        r.Metrics.Add(new EvalMetric("exact_match,strict-match", StrictMatch, Statistics.ProportionError(StrictMatch, n), "first '#### number' of the generation"));
        r.Metrics.Add(new EvalMetric("exact_match,flexible-extract", FlexibleExtract, Statistics.ProportionError(FlexibleExtract, n), "last number of the generation"));
        r.Metrics.Add(new EvalMetric("items", n));
        foreach (var o in Outcomes)
        {
            r.Items.Add(new JsonObject
            {
                ["question"] = o.Problem.Question, ["target"] = Gsm8k.Normalize(o.Problem.Answer), ["generation"] = o.Generation,
                ["strict"] = o.Strict, ["flexible"] = o.Flexible, ["strict_correct"] = o.StrictCorrect, ["flexible_correct"] = o.FlexibleCorrect,
            });
        }
        return r;
    }
}

/// <summary>The GSM8K task.</summary>
public static partial class Gsm8k
{
    /// <summary>Where generation stops (the harness's "until").</summary>
    public static readonly IReadOnlyList<string> StopStrings = ["Question:", "</s>", "<|im_end|>"];

    /// <summary>Reads question / answer JSONL; a bad line raises an error naming it.</summary>
    public static IReadOnlyList<MathProblem> Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return JsonlFile.Read(path, 0, (r, where) =>
        {
            string Field(string name) => JsonlFile.Text(r, name)
                ?? throw new InvalidFileException($"{where}: missing text field \"{name}\" (a GSM8K line is {{\"question\": ..., \"answer\": \"... #### number\"}}).");
            return new MathProblem(Field("question"), Field("answer"));
        });
    }

    /// <summary>The k-shot prompt for a problem.</summary>
    public static string Prompt(IReadOnlyList<MathProblem> shots, MathProblem problem)
    {
        ArgumentNullException.ThrowIfNull(shots);
        ArgumentNullException.ThrowIfNull(problem);
        var parts = shots.Select(s => $"Question: {s.Question}\nAnswer: {s.Answer}").Append($"Question: {problem.Question}\nAnswer:");
        return string.Join("\n\n", parts);
    }

    /// <summary>strict-match: the first "#### number", else "[invalid]".</summary>
    public static string StrictExtract(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var m = Strict().Match(text);
        return m.Success ? m.Groups[1].Value : "[invalid]";
    }

    /// <summary>flexible-extract: the last number-like match, else "[invalid]".</summary>
    public static string FlexibleExtract(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ms = Flexible().Matches(text);
        if (ms.Count == 0) return "[invalid]";
        var m = ms[^1];
        return m.Groups[1].Success && m.Groups[1].Length > 0 ? m.Groups[1].Value : m.Groups[2].Value;
    }

    /// <summary>exact_match's normalization: drop ",", "$", everything up to "#### " and a final "."; lower case.</summary>
    public static string Normalize(string s)
    {
        ArgumentNullException.ThrowIfNull(s);
        s = s.Replace(",", "", StringComparison.Ordinal).Replace("$", "", StringComparison.Ordinal);
        s = UpToHashes().Replace(s, "");
        s = FinalPeriod().Replace(s, "");
        return s.ToLowerInvariant();
    }

    /// <summary>Whether an extracted answer equals the reference under exact_match's rules.</summary>
    public static bool Matches(string extracted, string referenceAnswer) => Normalize(extracted) == Normalize(referenceAnswer);

    /// <summary>Runs the task: k-shot prompts, greedy generation, both extractions.</summary>
    public static Gsm8kResult Run(InferenceModel model, IReadOnlyList<MathProblem> problems, IReadOnlyList<MathProblem> shots, string shotSource,
        int maxTokens = 256, IProgress<EvalProgress>? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(problems);
        ArgumentNullException.ThrowIfNull(shots);
        var tokenizer = Perplexity.RequireTokenizer(model, "gsm8k");
        var engine = new InferenceEngine(model);
        if (maxTokens >= engine.ContextLength) throw new InvalidConfigException($"--max-tokens {maxTokens} leaves no room for the prompt in the model's context of {engine.ContextLength}.");
        var generator = new Generator(engine, tokenizer);
        var options = new GenerationOptions { MaxTokens = maxTokens, StopStrings = StopStrings, Sampling = new SamplingOptions { Temperature = 0 } };
        var outcomes = new List<MathOutcome>(problems.Count);
        var sw = Stopwatch.StartNew();
        int strict = 0, flexible = 0;
        foreach (var p in problems)
        {
            cancel.ThrowIfCancellationRequested();
            int[] ids = generator.EncodePrompt(Prompt(shots, p));
            int room = engine.ContextLength - maxTokens;
            if (ids.Length > room) ids = ids[^room..]; // the harness keeps the end of a long prompt
            string text = string.Concat(generator.Generate(ids, options, null, cancel).Select(t => t.Text));
            string s = StrictExtract(text), f = FlexibleExtract(text);
            var o = new MathOutcome(p, text, s, f, Matches(s, p.Answer), Matches(f, p.Answer));
            outcomes.Add(o);
            if (o.StrictCorrect) strict++;
            if (o.FlexibleCorrect) flexible++;
            int n = outcomes.Count;
            progress?.Report(new EvalProgress(n, problems.Count, sw.Elapsed,
                string.Create(CultureInfo.InvariantCulture, $"strict {100.0 * strict / n:F1}% flexible {100.0 * flexible / n:F1}%")));
        }
        return new Gsm8kResult(outcomes, shots.Count, shotSource, sw.Elapsed);
    }

    [GeneratedRegex(@"#### (\-?[0-9\.\,]+)")]
    private static partial Regex Strict();

    [GeneratedRegex(@"(-?[$0-9.,]{2,})|(-?[0-9]+)")]
    private static partial Regex Flexible();

    [GeneratedRegex(@"(?s).*#### ")]
    private static partial Regex UpToHashes();

    [GeneratedRegex(@"\.$")]
    private static partial Regex FinalPeriod();
}
