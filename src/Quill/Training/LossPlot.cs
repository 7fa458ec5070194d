// Draws the loss curve of a run as a self-contained SVG (train loss as a line, validation loss as dots, and the
// mean NLL of a step evaluation such as `--eval-task ppl` as squares when the run has one), read from metrics.jsonl; preference runs also get rewards.svg (reward accuracy per step, held-out accuracy as dots). No plotting library: axes, ticks and labels are placed by hand.
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Quill.Training;

/// <summary>Writes loss.svg from metrics.jsonl.</summary>
public static class LossPlot
{
    private const double W = 720, H = 420, Left = 64, Right = 20, Top = 36, Bottom = 48;

    /// <summary>Reads (step, loss, val_loss?) points from a metrics file.</summary>
    public static (List<(int Step, double Loss)> Train, List<(int Step, double Loss)> Val) ReadMetrics(string metricsPath) => ReadMetrics(metricsPath, "loss", "val_loss");

    /// <summary>Reads (step, value) points of two keys of a metrics file (a line without the key gives no point).</summary>
    public static (List<(int Step, double Loss)> Train, List<(int Step, double Loss)> Val) ReadMetrics(string metricsPath, string trainKey, string valKey)
    {
        var train = new List<(int, double)>();
        var val = new List<(int, double)>();
        if (!File.Exists(metricsPath)) return (train, val);
        foreach (string line in File.ReadLines(metricsPath))
        {
            try
            {
                using var doc = JsonDocument.Parse(line);
                var r = doc.RootElement;
                int step = r.GetProperty("step").GetInt32();
                if (r.TryGetProperty(trainKey, out var l) && l.ValueKind == JsonValueKind.Number) train.Add((step, l.GetDouble()));
                if (r.TryGetProperty(valKey, out var v) && v.ValueKind == JsonValueKind.Number) val.Add((step, v.GetDouble()));
            }
            catch (JsonException)
            {
                // skip a damaged line
            }
        }
        return (train, val);
    }

    public static void Write(string metricsPath, string svgPath)
    {
        var (train, val) = ReadMetrics(metricsPath);
        AtomicFile.WriteAllText(svgPath, Render(train, val, evalNll: ReadMetrics(metricsPath, "eval_nll", "eval_nll").Train));
    }

    /// <summary>Writes the reward accuracy of a preference run (metrics' reward_accuracy, val_reward_accuracy).</summary>
    public static void WriteRewards(string metricsPath, string svgPath)
    {
        var (train, val) = ReadMetrics(metricsPath, "reward_accuracy", "val_reward_accuracy");
        AtomicFile.WriteAllText(svgPath, Render(train, val, "Reward accuracy", "train pairs", "held-out pairs"));
    }

    public static string Render(IReadOnlyList<(int Step, double Loss)> train, IReadOnlyList<(int Step, double Loss)> val,
        string title = "Loss", string trainLabel = "train loss", string valLabel = "validation loss", IReadOnlyList<(int Step, double Loss)>? evalNll = null)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(val);
        evalNll ??= [];
        var all = train.Concat(val).Concat(evalNll).ToList();
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-family=\"sans-serif\" font-size=\"12\">\n");
        sb.Append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{W / 2}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{title}</text>\n");
        if (all.Count == 0)
        {
            sb.Append("<text x=\"50%\" y=\"50%\" text-anchor=\"middle\">no steps recorded</text>\n</svg>\n");
            return sb.ToString();
        }
        double x0 = Math.Min(0, all.Min(p => p.Step)), x1 = Math.Max(x0 + 1, all.Max(p => p.Step));
        double y0 = Math.Floor(all.Min(p => p.Loss) * 10) / 10, y1 = Math.Ceiling(all.Max(p => p.Loss) * 10) / 10;
        if (y1 - y0 < 0.1) y1 = y0 + 0.1;
        double X(double s) => Left + (s - x0) / (x1 - x0) * (W - Left - Right);
        double Y(double l) => H - Bottom - (l - y0) / (y1 - y0) * (H - Top - Bottom);
        string N(double v) => v.ToString("0.##", CultureInfo.InvariantCulture);
        // axes and ticks
        sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Left}\" y1=\"{H - Bottom}\" x2=\"{W - Right}\" y2=\"{H - Bottom}\" stroke=\"black\"/>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Left}\" y1=\"{Top}\" x2=\"{Left}\" y2=\"{H - Bottom}\" stroke=\"black\"/>\n");
        for (int i = 0; i <= 5; i++)
        {
            double s = x0 + (x1 - x0) * i / 5, l = y0 + (y1 - y0) * i / 5;
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{N(X(s))}\" y=\"{H - Bottom + 16}\" text-anchor=\"middle\">{Math.Round(s)}</text>\n");
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left - 6}\" y=\"{N(Y(l) + 4)}\" text-anchor=\"end\">{l:0.00}</text>\n");
            sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Left}\" y1=\"{N(Y(l))}\" x2=\"{W - Right}\" y2=\"{N(Y(l))}\" stroke=\"#eee\"/>\n");
        }
        sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{(Left + W - Right) / 2}\" y=\"{H - 10}\" text-anchor=\"middle\">step</text>\n");
        if (train.Count > 0)
        {
            sb.Append("<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"");
            foreach (var (s, l) in train) sb.Append(N(X(s))).Append(',').Append(N(Y(l))).Append(' ');
            sb.Append("\"/>\n");
        }
        foreach (var (s, l) in val) sb.Append(CultureInfo.InvariantCulture, $"<circle cx=\"{N(X(s))}\" cy=\"{N(Y(l))}\" r=\"3.5\" fill=\"#d62728\"/>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{W - Right - 150}\" y=\"{Top + 4}\" fill=\"#1f77b4\">— {trainLabel}</text>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{W - Right - 150}\" y=\"{Top + 20}\" fill=\"#d62728\">● {valLabel}</text>\n");
        foreach (var (s, l) in evalNll) sb.Append(CultureInfo.InvariantCulture, $"<rect x=\"{N(X(s) - 3.5)}\" y=\"{N(Y(l) - 3.5)}\" width=\"7\" height=\"7\" fill=\"#2ca02c\"/>\n");
        if (evalNll.Count > 0) sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{W - Right - 150}\" y=\"{Top + 36}\" fill=\"#2ca02c\">■ eval NLL (--eval-task)</text>\n");
        sb.Append("</svg>\n");
        return sb.ToString();
    }
}
