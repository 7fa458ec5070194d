// `quill bench train`: training tokens/s for a preset, against PyTorch in the same run when it is installed.
using System.CommandLine;
using System.Globalization;
using Quill.Benchmarks;
using Quill.Training;

namespace Quill.Cli.Commands;

internal static class BenchTrainCommand
{
    public static Command Create()
    {
        var preset = new Option<string>("--preset") { Description = $"One of: {string.Join(", ", Presets.Names)}", DefaultValueFactory = _ => "shakespeare-char" };
        var steps = new Option<int>("--steps") { Description = "Timed steps per run", DefaultValueFactory = _ => 5 };
        var runs = new Option<int>("--runs") { Description = "Runs (the median is reported)", DefaultValueFactory = _ => 3 };
        var threads = new Option<int>("--threads") { Description = "Threads for Quill and the peer (default: all cores)" };
        var profile = new Option<bool>("--profile") { Description = "Also print the time per op of one step" };
        var noPeer = new Option<bool>("--no-peer") { Description = "Measure Quill alone (no PyTorch 1.13 or 2.10 run)" };
        var rounds = RoundsOption();
        var cmd = new Command("train", "Training tokens/s and ms/step (forward, backward, AdamW) against PyTorch.") { preset, steps, runs, threads, profile, noPeer, rounds };
        cmd.SetAction(r =>
        {
            if (r.GetValue(steps) < 1 || r.GetValue(runs) < 1) throw new InvalidConfigException("--steps and --runs must be at least 1.");
            var prof = r.GetValue(profile) ? new Dictionary<string, double>() : null;
            var result = TrainBenchmark.Run(new TrainBenchOptions(r.GetValue(preset)!, r.GetValue(steps), r.GetValue(runs), r.GetValue(threads), prof != null)
                { Peer = !r.GetValue(noPeer), Rounds = r.GetValue(rounds) }, prof, Console.Error);
            Console.WriteLine(result.ToJson());
            PrintProfile(prof);
        });
        return cmd;
    }

    /// <summary>--rounds, shared with `bench lora`.</summary>
    internal static Option<int> RoundsOption() => new("--rounds")
    {
        Description = "Time Quill and then the PyTorch peers this many times over, alternating; report medians and the median of each round's ratio",
        DefaultValueFactory = _ => 1,
    };

    /// <summary>The time per op of one step, largest first (stderr), when --profile asked for it.</summary>
    internal static void PrintProfile(Dictionary<string, double>? prof)
    {
        if (prof == null) return;
        double total = prof.Values.Sum();
        foreach (var (op, ms) in prof.OrderByDescending(kv => kv.Value))
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{op,-28} {ms,9:F1} ms {100 * ms / total,5:F1}%"));
    }
}
