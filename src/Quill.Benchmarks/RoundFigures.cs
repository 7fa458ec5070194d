// The figures of a benchmark repeated in rounds (`--rounds N` of `quill bench train` and `bench lora`): each round
// times Quill and then runs its PyTorch peers, so Quill and the peers alternate through the invocation and a change
// in the host's load reaches both sides of a round instead of one side of the whole run. Reports the median over the
// rounds of each figure and of each round's own ratio (Quill / peer in that round), and, with more than one round,
// every round's figures.
// Does not handle: timing (TrainBenchmark.TimeSteps), running the peers (TorchPeer).
using System.Globalization;
using Quill.Evaluation;

namespace Quill.Benchmarks;

/// <summary>One benchmark's figures, round by round.</summary>
public sealed class RoundFigures
{
    private readonly List<Round> rounds = [];

    /// <summary>Quill's tokens/s and ms per step in one round, and each peer's tokens/s (null: it did not run or failed).</summary>
    private readonly record struct Round(double Quill, double Ms, double? Torch113, double? Torch210);

    /// <summary>Records one round.</summary>
    public void Add(double quill, double msPerStep, double? torch113, double? torch210) =>
        rounds.Add(new Round(quill, msPerStep, Positive(torch113), Positive(torch210)));

    /// <summary>Median of Quill's tokens/s over the rounds.</summary>
    public double Quill => Median(rounds.Select(r => r.Quill)) ?? 0;

    /// <summary>Median of Quill's ms per step over the rounds.</summary>
    public double MsPerStep => Median(rounds.Select(r => r.Ms)) ?? 0;

    /// <summary>Median of PyTorch 1.13's tokens/s over the rounds it ran in, or null.</summary>
    public double? Torch113 => Median(rounds.Where(r => r.Torch113 != null).Select(r => r.Torch113!.Value));

    /// <summary>Median of PyTorch 2.10's tokens/s over the rounds it ran in, or null.</summary>
    public double? Torch210 => Median(rounds.Where(r => r.Torch210 != null).Select(r => r.Torch210!.Value));

    /// <summary>Median over the rounds PyTorch 1.13 ran in of Quill / PyTorch 1.13 in that round.</summary>
    public double? RatioTorch113 => Median(rounds.Where(r => r.Torch113 != null).Select(r => r.Quill / r.Torch113!.Value));

    /// <summary>Median over the rounds PyTorch 2.10 ran in of Quill / PyTorch 2.10 in that round.</summary>
    public double? RatioTorch210 => Median(rounds.Where(r => r.Torch210 != null).Select(r => r.Quill / r.Torch210!.Value));

    /// <summary>Median over the rounds a peer ran in of Quill / the faster PyTorch of that round.</summary>
    public double? RatioBest => Median(rounds.Where(r => r.Torch113 != null || r.Torch210 != null)
        .Select(r => r.Quill / Math.Max(r.Torch113 ?? 0, r.Torch210 ?? 0)));

    /// <summary>
    /// With more than one round, adds "rounds" and each round's figures ("quill_rounds", "torch113_rounds",
    /// "torch210_rounds": 0 where that peer did not run) to a result's fields.
    /// </summary>
    public void AddTo(Dictionary<string, object> fields)
    {
        ArgumentNullException.ThrowIfNull(fields);
        if (rounds.Count < 2) return;
        fields["rounds"] = rounds.Count;
        fields["quill_rounds"] = rounds.Select(r => Math.Round(r.Quill, 1)).ToArray();
        if (rounds.Any(r => r.Torch113 != null)) fields["torch113_rounds"] = rounds.Select(r => Math.Round(r.Torch113 ?? 0, 1)).ToArray();
        if (rounds.Any(r => r.Torch210 != null)) fields["torch210_rounds"] = rounds.Select(r => Math.Round(r.Torch210 ?? 0, 1)).ToArray();
    }

    /// <summary>A one-line summary of every round for the log: Quill's figure and each peer's.</summary>
    public string Describe(int round)
    {
        var r = rounds[round];
        string F(double? v) => v is double x ? x.ToString("0.0", CultureInfo.InvariantCulture) : "-";
        return $"round {round + 1}: quill {F(r.Quill)} tokens/s, pytorch 1.13 {F(r.Torch113)}, pytorch 2.10 {F(r.Torch210)}";
    }

    /// <summary>The median (Statistics.Median: the mean of the middle two for an even count), or null for none.</summary>
    public static double? Median(IEnumerable<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var sorted = values.Order().ToArray();
        return sorted.Length == 0 ? null : Statistics.Median(sorted);
    }

    private static double? Positive(double? v) => v is double x && x > 0 ? x : null;
}
