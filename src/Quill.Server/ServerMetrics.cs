// The server's counters and the Prometheus text exposition of them (GET /metrics): requests by route and status,
// prompt and completion tokens, time to first token (a histogram), requests turned away because the queue was
// full, and, per model, the queue depth and the sequences decoding right now. Thread-safe: the request handlers
// and the schedulers' threads update it concurrently.
// Does not handle: labels beyond route/status/model, summaries with quantiles.
using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Quill.Inference.Batching;

namespace Quill.Server;

/// <summary>Counters for /metrics.</summary>
public sealed class ServerMetrics : IBatchMetrics
{
    private static readonly double[] TtftBuckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    private readonly ConcurrentDictionary<(string Route, int Status), long> requests = new();
    private readonly long[] ttftCounts = new long[TtftBuckets.Length + 1];
    private readonly ConcurrentDictionary<string, Func<(int Queued, int Active)>> gauges = new();
    private readonly object ttftLock = new();
    private long promptTokens, completionTokens, rejected, decodeSteps, decodeRows;
    private double ttftSum;

    public long PromptTokens => Interlocked.Read(ref promptTokens);

    public long CompletionTokens => Interlocked.Read(ref completionTokens);

    public void CountRequest(string route, int status) => requests.AddOrUpdate((route, status), 1, (_, n) => n + 1);

    public void AddPromptTokens(int n) => Interlocked.Add(ref promptTokens, n);

    public void AddCompletionTokens(int n) => Interlocked.Add(ref completionTokens, n);

    public void CountRejected() => Interlocked.Increment(ref rejected);

    /// <summary>One batched decode step over rows sequences.</summary>
    public void CountDecodeStep(int rows)
    {
        Interlocked.Increment(ref decodeSteps);
        Interlocked.Add(ref decodeRows, rows);
    }

    public void ObserveTimeToFirstToken(TimeSpan t)
    {
        double s = t.TotalSeconds;
        lock (ttftLock)
        {
            int i = 0;
            while (i < TtftBuckets.Length && s > TtftBuckets[i]) i++;
            ttftCounts[i]++;
            ttftSum += s;
        }
    }

    /// <summary>Zeroes every counter (after the server's own warm-up requests, before it is announced).</summary>
    public void Reset()
    {
        requests.Clear();
        lock (ttftLock)
        {
            Array.Clear(ttftCounts);
            ttftSum = 0;
        }
        Interlocked.Exchange(ref promptTokens, 0);
        Interlocked.Exchange(ref completionTokens, 0);
        Interlocked.Exchange(ref rejected, 0);
        Interlocked.Exchange(ref decodeSteps, 0);
        Interlocked.Exchange(ref decodeRows, 0);
    }

    /// <summary>Registers a model's queue depth and active sequence count, read at each scrape.</summary>
    public void AddGauge(string model, Func<(int Queued, int Active)> read) => gauges[model] = read;

    /// <summary>The Prometheus text format (version 0.0.4).</summary>
    public string Render()
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append("# HELP quill_requests_total HTTP requests by route and status.\n# TYPE quill_requests_total counter\n");
        foreach (var ((route, status), n) in requests.OrderBy(k => k.Key.Route, StringComparer.Ordinal).ThenBy(k => k.Key.Status))
            sb.Append(c, $"quill_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}\n");
        sb.Append("# HELP quill_prompt_tokens_total Prompt tokens processed.\n# TYPE quill_prompt_tokens_total counter\n");
        sb.Append(c, $"quill_prompt_tokens_total {PromptTokens}\n");
        sb.Append("# HELP quill_completion_tokens_total Tokens generated.\n# TYPE quill_completion_tokens_total counter\n");
        sb.Append(c, $"quill_completion_tokens_total {CompletionTokens}\n");
        sb.Append("# HELP quill_rejected_total Requests refused with 429 because the queue was full.\n# TYPE quill_rejected_total counter\n");
        sb.Append(c, $"quill_rejected_total {Interlocked.Read(ref rejected)}\n");
        sb.Append("# HELP quill_decode_steps_total Batched decode steps run.\n# TYPE quill_decode_steps_total counter\n");
        sb.Append(c, $"quill_decode_steps_total {Interlocked.Read(ref decodeSteps)}\n");
        sb.Append("# HELP quill_decode_rows_total Sequences advanced by decode steps (rows / steps = mean batch).\n# TYPE quill_decode_rows_total counter\n");
        sb.Append(c, $"quill_decode_rows_total {Interlocked.Read(ref decodeRows)}\n");
        sb.Append("# HELP quill_time_to_first_token_seconds From a request's arrival to its first generated token.\n# TYPE quill_time_to_first_token_seconds histogram\n");
        lock (ttftLock)
        {
            long cumulative = 0;
            for (int i = 0; i < TtftBuckets.Length; i++)
            {
                cumulative += ttftCounts[i];
                sb.Append(c, $"quill_time_to_first_token_seconds_bucket{{le=\"{TtftBuckets[i]}\"}} {cumulative}\n");
            }
            cumulative += ttftCounts[^1];
            sb.Append(c, $"quill_time_to_first_token_seconds_bucket{{le=\"+Inf\"}} {cumulative}\n");
            sb.Append(c, $"quill_time_to_first_token_seconds_sum {ttftSum}\n");
            sb.Append(c, $"quill_time_to_first_token_seconds_count {cumulative}\n");
        }
        sb.Append("# HELP quill_queue_depth Requests waiting for a decode slot.\n# TYPE quill_queue_depth gauge\n");
        var reads = gauges.OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => (g.Key, Value: g.Value())).ToArray();
        foreach (var (model, v) in reads) sb.Append(c, $"quill_queue_depth{{model=\"{Escape(model)}\"}} {v.Queued}\n");
        sb.Append("# HELP quill_active_sequences Sequences decoding now.\n# TYPE quill_active_sequences gauge\n");
        foreach (var (model, v) in reads) sb.Append(c, $"quill_active_sequences{{model=\"{Escape(model)}\"}} {v.Active}\n");
        return sb.ToString();
    }

    private static string Escape(string s) => s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
}
