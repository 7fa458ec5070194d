// The report every evaluation task makes: what was measured (task, model, settings), the metrics with their standard
// errors and 95% intervals, and one JSON object per item (a window, a question, a prompt) written as JSONL beside the
// report (report.json -> report.items.jsonl). Both files are written atomically.
// Does not handle: comparing reports (each stands alone) or printing (the CLI renders the table).
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Quill.Evaluation;

/// <summary>A metric's value, its standard error when there is one, and how to read it.</summary>
public sealed record EvalMetric(string Name, double Value, double? StdErr = null, string? Note = null)
{
    /// <summary>The normal 95% interval, value +/- 1.96 standard errors, or null without a standard error.</summary>
    public (double Low, double High)? Interval95 => StdErr is double e ? (Value - Statistics.Z95 * e, Value + Statistics.Z95 * e) : null;
}

/// <summary>An evaluation's result: task, model, settings, metrics and per-item results.</summary>
public sealed class EvalReport
{
    public required string Task { get; init; }

    public required string Model { get; init; }

    /// <summary>The settings that decide the numbers (context, shots, limits, files).</summary>
    public Dictionary<string, object?> Settings { get; init; } = [];

    public List<EvalMetric> Metrics { get; init; } = [];

    /// <summary>One object per item, in order.</summary>
    public List<JsonObject> Items { get; init; } = [];

    public TimeSpan Elapsed { get; init; }

    /// <summary>The per-item file written beside a report at <paramref name="reportPath"/>.</summary>
    public static string ItemsPath(string reportPath)
    {
        ArgumentNullException.ThrowIfNull(reportPath);
        string dir = Path.GetDirectoryName(reportPath) ?? "";
        return Path.Combine(dir, Path.GetFileNameWithoutExtension(reportPath) + ".items.jsonl");
    }

    /// <summary>The report as a JSON object (the items are only counted and named by their file).</summary>
    public JsonObject ToJson(string? itemsFile = null)
    {
        var metrics = new JsonArray();
        foreach (var m in Metrics)
        {
            var o = new JsonObject { ["name"] = m.Name, ["value"] = Finite(m.Value) };
            if (m.StdErr is double e)
            {
                o["stderr"] = Finite(e);
                var (lo, hi) = m.Interval95!.Value;
                o["ci95"] = new JsonArray(Finite(lo), Finite(hi));
            }
            if (m.Note != null) o["note"] = m.Note;
            metrics.Add(o);
        }
        var settings = new JsonObject();
        foreach (var (k, v) in Settings) settings[k] = v == null ? null : JsonSerializer.SerializeToNode(v);
        var root = new JsonObject
        {
            ["task"] = Task,
            ["model"] = Model,
            ["settings"] = settings,
            ["metrics"] = metrics,
            ["items"] = Items.Count,
            ["seconds"] = Math.Round(Elapsed.TotalSeconds, 3),
        };
        if (itemsFile != null) root["items_file"] = itemsFile;
        return root;
    }

    /// <summary>Writes the report to <paramref name="path"/> and the items beside it (see <see cref="ItemsPath"/>).</summary>
    public void Write(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string items = ItemsPath(path);
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir != null) Directory.CreateDirectory(dir);
        AtomicFile.Write(items, s =>
        {
            using var w = new StreamWriter(s, new System.Text.UTF8Encoding(false), leaveOpen: true);
            foreach (var item in Items) w.Write(item.ToJsonString(Relaxed) + "\n");
        });
        AtomicFile.WriteAllText(path, ToJson(Path.GetFileName(items)).ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n");
    }

    private static readonly JsonSerializerOptions Relaxed = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static JsonNode? Finite(double x) => double.IsFinite(x) ? JsonValue.Create(x) : null;
}
