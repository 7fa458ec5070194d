// Training throughput: forward + cross-entropy + backward + clipping + AdamW on random tokens for a preset, the
// same work ../shared/peers/torch_gpt_train.py times for PyTorch. Runs the peer in the same invocation (when
// python3 with torch and the peer script are present) at the same thread count, with OMP_WAIT_POLICY=PASSIVE,
// PyTorch's best setting on two cores, and reports the ratio; "peer" is Debian's PyTorch 1.13 (OpenBLAS on the kernels it
// detects). PyTorch 2.10 (libtorch via TorchSharp, ../shared/peers/torchsharp/run.sh) runs the same step for the
// shakespeare-char, gpt-mini and llama-mini presets, reported as "torch210_tokens_per_s" and "ratio_torch210".
// With Rounds above 1, Quill and the peers take turns that many times and the figures are medians (RoundFigures).
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Quill.Autograd;
using Quill.Kernels;
using Quill.Models;
using Quill.Tensors;
using Quill.Training;

namespace Quill.Benchmarks;

/// <summary>Settings of the training benchmark.</summary>
public sealed record TrainBenchOptions(string Preset, int Steps = 5, int Runs = 3, int Threads = 0, bool Profile = false, string? PeerScript = null)
{
    /// <summary>Whether the PyTorch peers run too (false: Quill alone).</summary>
    public bool Peer { get; init; } = true;

    /// <summary>Times Quill and then its peers this many times over, alternating (RoundFigures).</summary>
    public int Rounds { get; init; } = 1;
}

/// <summary>Measures training tokens/s for a preset and compares with PyTorch.</summary>
public static class TrainBenchmark
{
    /// <summary>The batch shape the peer uses for each preset (batch, seq).</summary>
    private static (int B, int T) Shape(string preset) => preset switch
    {
        "shakespeare-char" => (16, 256),
        "gpt2-124m" => (4, 1024),
        _ => (8, 256),
    };

    /// <summary>Runs Quill (and the peer when found); profile, when asked, receives ms per op per step.</summary>
    public static BenchResult Run(TrainBenchOptions options, Dictionary<string, double>? profile = null, TextWriter? log = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Rounds < 1) throw new InvalidConfigException("--rounds must be at least 1.");
        if (options.Threads > 0) KernelThreads.Count = options.Threads;
        var run = Presets.Get(options.Preset);
        var (b, t) = Shape(options.Preset);
        t = Math.Min(t, run.Model.BlockSize); // the tiny preset's context is 128
        var model = LanguageModel.Create(run.Model, 1);
        model.Parameters.EnableGrads();
        var opt = new AdamWOptimizer(model.Parameters, new TrainConfig { LearningRate = 3e-4f, WeightDecay = 0.1f });
        var rng = new Rng(1);
        int v = run.Model.VocabSize;
        int[] x = new int[b * t], y = new int[b * t];
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = (int)rng.NextInt64(v);
            y[i] = (int)rng.NextInt64(v);
        }
        var g = new Graph();
        void Step()
        {
            model.Parameters.ZeroGrads();
            g.Reset();
            var loss = model.Loss(g, x, y, b, t);
            g.Backward(loss);
            opt.Step(3e-4f, AdamWOptimizer.ClipScale((float)opt.GradNorm(), 1f));
        }
        double peak = FmaPeak.Measure();
        var figures = new RoundFigures();
        for (int round = 0; round < options.Rounds; round++)
        {
            var ms = TimeSteps(Step, options.Steps, options.Runs, g, round == options.Rounds - 1 ? profile : null);
            double median = ms[ms.Count / 2];
            double? peer = options.Peer ? RunPeer(options, log) : null;
            double? torch210 = options.Peer && options.Preset is "shakespeare-char" or "gpt-mini" or "llama-mini"
                ? TorchPeer.RunTorchSharp([options.Preset, KernelThreads.Count.ToString(CultureInfo.InvariantCulture), options.Runs.ToString(CultureInfo.InvariantCulture), options.Steps.ToString(CultureInfo.InvariantCulture)], log)
                : null;
            figures.Add(b * t / median * 1e3, median, peer, torch210);
            if (options.Rounds > 1) log?.WriteLine(figures.Describe(round));
        }
        var fields = new Dictionary<string, object>
        {
            ["preset"] = options.Preset,
            ["threads"] = KernelThreads.Count,
            ["batch"] = b,
            ["seq"] = t,
            ["tokens_per_s"] = Math.Round(figures.Quill, 1),
            ["ms_per_step"] = Math.Round(figures.MsPerStep, 1),
        };
        if (figures.Torch210 is double t210)
        {
            fields["torch210_tokens_per_s"] = Math.Round(t210, 1);
            fields["ratio_torch210"] = Math.Round(figures.RatioTorch210!.Value, 3);
        }
        figures.AddTo(fields);
        PeakFraction.AddTo(fields, figures, TrainingFlops.PerStep(run.Model, b, t), b * t, peak, log);
        return new BenchResult("train", figures.Quill, "tokens/s", figures.Torch113, fields) { RoundRatio = figures.RatioTorch113 };
    }

    /// <summary>
    /// A training step timed as every training benchmark does: one warm-up step (JIT, arena, optimizer state), then
    /// runs of steps; ms per step of each run, sorted (the median is [Count / 2]). With profile, one more step fills
    /// it with ms per op (Graph.Profile).
    /// </summary>
    internal static List<double> TimeSteps(Action step, int steps, int runs, Graph g, Dictionary<string, double>? profile)
    {
        step();
        var ms = new List<double>();
        for (int r = 0; r < runs; r++)
        {
            var sw = Stopwatch.StartNew();
            for (int s = 0; s < steps; s++) step();
            ms.Add(sw.Elapsed.TotalMilliseconds / steps);
        }
        ms.Sort();
        if (profile != null)
        {
            g.Profile = profile;
            step();
            g.Profile = null;
        }
        return ms;
    }

    /// <summary>Peer tokens/s from torch_gpt_train.py, or null when python3/torch/the script is missing.</summary>
    public static double? RunPeer(TrainBenchOptions options, TextWriter? log)
    {
        ArgumentNullException.ThrowIfNull(options);
        string name = options.Preset == "gpt2-124m" ? "gpt2-124M" : options.Preset;
        string[] args = ["--configs", name, "--threads", KernelThreads.Count.ToString(CultureInfo.InvariantCulture), "--runs", options.Runs.ToString(CultureInfo.InvariantCulture)];
        return TorchPeer.Run("torch_gpt_train.py", args, "tokens_per_s", log, options.PeerScript);
    }
}
