// metrics.jsonl: one JSON object per step (step, loss, lr, grad_norm, tokens_per_s, val_loss when evaluated,
// elapsed_s, skipped, then any extra figures an objective reports: preference tuning's reward_accuracy,
// chosen_reward, rejected_reward, margin, val_reward_accuracy). Opening it for a resumed run drops the lines of steps that the checkpoint does not hold,
// so the file always describes exactly one history.
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Quill.Training;

/// <summary>Appends per-step metrics to a JSONL file.</summary>
public sealed class MetricsLog : IDisposable
{
    private readonly StreamWriter writer;

    /// <summary>Opens path keeping only lines with step &lt;= keepThroughStep.</summary>
    public MetricsLog(string path, int keepThroughStep)
    {
        var kept = new List<string>();
        if (File.Exists(path) && keepThroughStep > 0)
        {
            foreach (string line in File.ReadLines(path))
            {
                if (StepOf(line) is int s && s <= keepThroughStep) kept.Add(line);
            }
        }
        writer = new StreamWriter(path, append: false, new UTF8Encoding(false));
        foreach (string line in kept) writer.WriteLine(line);
        writer.Flush();
    }

    public void Append(int step, float loss, float lr, float gradNorm, double tokensPerSecond, float? valLoss, double elapsedSeconds, bool skipped,
        IEnumerable<KeyValuePair<string, double>>? extra = null)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{{\"step\":{step},\"loss\":{F(loss)},\"lr\":{F(lr)},\"grad_norm\":{F(gradNorm)},\"tokens_per_s\":{tokensPerSecond:F1}");
        if (valLoss is float v) sb.Append(CultureInfo.InvariantCulture, $",\"val_loss\":{F(v)}");
        sb.Append(CultureInfo.InvariantCulture, $",\"elapsed_s\":{elapsedSeconds:F3}");
        if (skipped) sb.Append(",\"skipped\":true");
        foreach (var (key, value) in extra ?? []) sb.Append(CultureInfo.InvariantCulture, $",\"{key}\":{F((float)value)}");
        sb.Append('}');
        writer.WriteLine(sb.ToString());
        writer.Flush();
    }

    public void Flush() => writer.Flush();

    public void Dispose() => writer.Dispose();

    private static string F(float x) => float.IsFinite(x) ? x.ToString("R", CultureInfo.InvariantCulture) : "null";

    private static int? StepOf(string line)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            return doc.RootElement.TryGetProperty("step", out var s) ? s.GetInt32() : null;
        }
        catch (JsonException)
        {
            return null; // a line cut short by a kill is dropped
        }
    }
}
