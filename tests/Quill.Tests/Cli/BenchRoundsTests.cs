// `quill bench train` and `bench lora` with --rounds: Quill and its peers alternate round by round, and the figures
// are medians over the rounds, the ratio the median of each round's own ratio.
using System.Text.Json;
using Quill.Benchmarks;

namespace Quill.Tests.Cli;

public class BenchRoundsTests
{
    [Fact]
    public void The_ratio_is_the_median_of_each_rounds_ratio_over_the_rounds_a_peer_ran_in()
    {
        var f = new RoundFigures();
        f.Add(100, 10, torch113: 50, torch210: 80);   // 2.0 / 1.25
        f.Add(90, 11, torch113: null, torch210: 60);   // -   / 1.5
        f.Add(120, 9, torch113: 100, torch210: 100);   // 1.2 / 1.2
        f.Add(60, 15, torch113: 20, torch210: 0);      // 3.0 / -  (0: the peer failed)
        Assert.Equal(95, f.Quill);                     // median of 60, 90, 100, 120
        Assert.Equal(10.5, f.MsPerStep);
        Assert.Equal(50, f.Torch113);                  // of 20, 50, 100
        Assert.Equal(80, f.Torch210);                  // of 60, 80, 100
        Assert.Equal(2.0, f.RatioTorch113!.Value, 12); // of 1.2, 2.0, 3.0: not median Quill / median peer (1.9)
        Assert.Equal(1.25, f.RatioTorch210!.Value, 12);
        // against the faster peer of each round: 100/80, 90/60, 120/100, 60/20
        Assert.Equal((1.25 + 1.5) / 2, f.RatioBest!.Value, 12);

        var fields = new Dictionary<string, object>();
        f.AddTo(fields);
        Assert.Equal(4, fields["rounds"]);
        Assert.Equal(new[] { 100.0, 90, 120, 60 }, (double[])fields["quill_rounds"]);
        Assert.Equal(new[] { 50.0, 0, 100, 20 }, (double[])fields["torch113_rounds"]);
    }

    [Fact]
    public void One_round_adds_no_round_fields_and_no_peer_gives_no_ratio()
    {
        var f = new RoundFigures();
        f.Add(100, 10, null, null);
        var fields = new Dictionary<string, object>();
        f.AddTo(fields);
        Assert.Empty(fields);
        Assert.Null(f.Torch113);
        Assert.Null(f.RatioTorch210);
        Assert.Null(f.RatioBest);
        Assert.Null(RoundFigures.Median([]));
    }

    [Fact]
    public void Bench_train_with_rounds_reports_each_round_and_their_median()
    {
        var r = CliProcess.Run("bench", "train", "--preset", "tiny", "--no-peer", "--rounds", "3", "--steps", "1", "--runs", "1", "--threads", "1");
        Assert.True(r.Exit == 0, r.Err);
        using var doc = JsonDocument.Parse(r.Out.Trim().Split('\n')[^1]);
        var root = doc.RootElement;
        Assert.Equal(3, root.GetProperty("rounds").GetInt32());
        double[] rounds = [.. root.GetProperty("quill_rounds").EnumerateArray().Select(e => e.GetDouble())];
        Assert.Equal(3, rounds.Length);
        Assert.All(rounds, v => Assert.True(v > 0));
        Assert.Equal(rounds.Order().ElementAt(1), root.GetProperty("tokens_per_s").GetDouble());
        Assert.Equal(3, r.Err.Split('\n').Count(l => l.StartsWith("round ", StringComparison.Ordinal)));
    }
}
