// One benchmark figure as a JSON line: {"bench": ..., extra fields..., "quill": x, "peer": y, "ratio": x/y, "unit": ...}.
// The peer and the ratio are left out when no peer ran.
using System.Globalization;
using System.Text.Json;

namespace Quill.Benchmarks;

/// <summary>A measured figure, optionally against a peer measured in the same run.</summary>
public sealed record BenchResult(string Bench, double Quill, string Unit, double? Peer = null, IReadOnlyDictionary<string, object>? Fields = null)
{
    /// <summary>Quill / peer (RoundRatio when set), or null without a peer.</summary>
    public double? Ratio => RoundRatio ?? (Peer is double p && p > 0 ? Quill / p : null);

    /// <summary>
    /// The ratio to report instead of Quill / Peer: with several rounds, the median of each round's own ratio
    /// (RoundFigures), which the medians of Quill and of the peer need not give.
    /// </summary>
    public double? RoundRatio { get; init; }

    public string ToJson()
    {
        var o = new Dictionary<string, object> { ["bench"] = Bench };
        if (Fields != null) foreach (var kv in Fields) o[kv.Key] = kv.Value;
        o["quill"] = Math.Round(Quill, 3);
        if (Peer is double p)
        {
            o["peer"] = Math.Round(p, 3);
            o["ratio"] = Math.Round(Ratio ?? 0, 3);
        }
        o["unit"] = Unit;
        return JsonSerializer.Serialize(o);
    }

    public override string ToString() => ToJson();

    internal static string F(double x) => x.ToString("0.###", CultureInfo.InvariantCulture);
}
