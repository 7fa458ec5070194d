// A user's own test set: a JSONL file, one prompt a line, each with what its reply must show, answered greedily by the
// model in its chat layout (GreedyAnswers: the chat template, else the plain "User: / Assistant:" transcript). A line:
//   {"prompt": "...", "expected": "text the reply must contain", "regex": "pattern the reply must match",
//    "forbidden": ["text the reply must not contain", ...], "tags": ["safety", ...]}
// "expected" and "forbidden" compare case-insensitively (ordinal, after Unicode case folding by ToUpperInvariant);
// "regex" is a .NET regular expression matched as written (add (?i) for case-insensitive). Each line needs at least
// one of the three checks; "forbidden" and "tags" may be a string or an array. A reply passes when every check given
// holds. The report gives the pass rate overall and per tag, each with its binomial standard error.
// Malformed lines (bad JSON, no prompt, no check, a regex that does not compile) raise a one-line error naming the line.
// Does not handle: multi-turn prompts, sampling several replies per prompt, judging by another model.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Quill.Inference;

namespace Quill.Evaluation;

/// <summary>One test prompt and its checks.</summary>
public sealed record PromptCase(int Line, string Prompt, string? Expected, Regex? Pattern, IReadOnlyList<string> Forbidden, IReadOnlyList<string> Tags)
{
    /// <summary>The checks that fail for a reply (empty: it passes).</summary>
    public IReadOnlyList<string> Failures(string reply)
    {
        ArgumentNullException.ThrowIfNull(reply);
        var failed = new List<string>();
        if (Expected != null && !reply.Contains(Expected, StringComparison.OrdinalIgnoreCase)) failed.Add($"expected \"{Expected}\" missing");
        if (Pattern != null && !Pattern.IsMatch(reply)) failed.Add($"regex /{Pattern}/ not matched");
        foreach (string f in Forbidden)
            if (reply.Contains(f, StringComparison.OrdinalIgnoreCase)) failed.Add($"forbidden \"{f}\" present");
        return failed;
    }
}

/// <summary>The outcome of one prompt.</summary>
public sealed record PromptOutcome(PromptCase Case, string Reply, bool Stopped, IReadOnlyList<string> Failures)
{
    public bool Passed => Failures.Count == 0;
}

/// <summary>Pass rates of a prompt test set.</summary>
public sealed record PromptTestResult(IReadOnlyList<PromptOutcome> Outcomes, TimeSpan Elapsed)
{
    public double PassRate => Outcomes.Count == 0 ? 0 : (double)Outcomes.Count(o => o.Passed) / Outcomes.Count;

    /// <summary>Pass rate and count per tag, tags in first-seen order.</summary>
    public IReadOnlyList<(string Tag, double PassRate, int Count)> ByTag() =>
        [.. Outcomes.SelectMany(o => o.Case.Tags.Select(t => (Tag: t, o.Passed))).GroupBy(x => x.Tag)
            .Select(g => (g.Key, (double)g.Count(x => x.Passed) / g.Count(), g.Count()))];

    public EvalReport ToReport(string model, Dictionary<string, object?> settings)
    {
        var r = new EvalReport { Task = "prompts", Model = model, Settings = settings, Elapsed = Elapsed };
        r.Metrics.Add(new EvalMetric("pass_rate", PassRate, Statistics.ProportionError(PassRate, Outcomes.Count)));
        foreach (var (tag, rate, n) in ByTag()) r.Metrics.Add(new EvalMetric($"pass_rate[{tag}]", rate, Statistics.ProportionError(rate, n), $"{n} prompts"));
        r.Metrics.Add(new EvalMetric("prompts", Outcomes.Count));
        foreach (var o in Outcomes)
        {
            var fails = new JsonArray();
            foreach (string f in o.Failures) fails.Add(f);
            var tags = new JsonArray();
            foreach (string t in o.Case.Tags) tags.Add(t);
            r.Items.Add(new JsonObject
            {
                ["line"] = o.Case.Line, ["prompt"] = o.Case.Prompt, ["reply"] = o.Reply, ["stopped"] = o.Stopped,
                ["passed"] = o.Passed, ["failures"] = fails, ["tags"] = tags,
            });
        }
        return r;
    }
}

/// <summary>Reads and runs prompt test sets.</summary>
public static class PromptTests
{
    public static IReadOnlyList<PromptCase> Read(string path, int limit = 0)
    {
        ArgumentNullException.ThrowIfNull(path);
        return JsonlFile.Read(path, limit, (r, where) =>
        {
            string prompt = JsonlFile.Text(r, "prompt") is { Length: > 0 } p ? p : throw new InvalidFileException($"{where}: missing text field \"prompt\".");
            string? expected = Text(r, "expected", where);
            string? regex = Text(r, "regex", where);
            Regex? pattern = null;
            if (regex != null)
            {
                try
                {
                    pattern = new Regex(regex, RegexOptions.None, TimeSpan.FromSeconds(1));
                }
                catch (ArgumentException ex)
                {
                    throw new InvalidFileException($"{where}: \"regex\" does not compile ({ex.Message.ReplaceLineEndings(" ")}).");
                }
            }
            var forbidden = List(r, "forbidden", where);
            if (expected == null && pattern == null && forbidden.Count == 0)
                throw new InvalidFileException($"{where}: give at least one check: \"expected\", \"regex\" or \"forbidden\".");
            return new PromptCase(int.Parse(where[(where.LastIndexOf(':') + 1)..], CultureInfo.InvariantCulture), prompt, expected, pattern, forbidden, List(r, "tags", where));
        });
    }

    /// <summary>Answers every prompt greedily and checks the replies.</summary>
    public static PromptTestResult Run(InferenceModel model, IReadOnlyList<PromptCase> cases, int maxTokens = 256,
        IProgress<EvalProgress>? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(cases);
        Perplexity.RequireTokenizer(model, "prompts");
        var sw = Stopwatch.StartNew();
        var answers = GreedyAnswers.Answer(model, [.. cases.Select(c => c.Prompt)], new AnswerOptions { MaxTokens = maxTokens, BatchSize = 16 },
            new CallbackProgress<int>(n => progress?.Report(new EvalProgress(n, cases.Count, sw.Elapsed, string.Create(CultureInfo.InvariantCulture, $"{n} answered")))), cancel);
        var outcomes = cases.Select((c, i) => new PromptOutcome(c, answers[i].Text, answers[i].Stopped, c.Failures(answers[i].Text))).ToList();
        return new PromptTestResult(outcomes, sw.Elapsed);
    }

    private static string? Text(JsonElement r, string name, string where)
    {
        if (!r.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.String || v.GetString()!.Length == 0) throw new InvalidFileException($"{where}: \"{name}\" must be non-empty text.");
        return v.GetString();
    }

    private static IReadOnlyList<string> List(JsonElement r, string name, string where)
    {
        if (!r.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return [];
        if (v.ValueKind == JsonValueKind.String) return [v.GetString()!];
        if (v.ValueKind == JsonValueKind.Array && v.EnumerateArray().All(x => x.ValueKind == JsonValueKind.String && x.GetString()!.Length > 0))
            return [.. v.EnumerateArray().Select(x => x.GetString()!)];
        throw new InvalidFileException($"{where}: \"{name}\" must be text or an array of non-empty texts.");
    }
}
