// LoRA fine-tuning throughput: one step (forward, cross-entropy, backward, AdamW on A and B only) of a frozen Llama of
// a llama2.c TinyStories shape (stories15M, stories110M; random weights, head tied to the embedding as in llama2.c)
// with LoRA r 8, alpha 16 on q, k, v, o, and the same step in PyTorch (bench/peers/torch_lora_train.py, PEFT's
// formulas in plain torch) in the same run at the same thread count with OMP_WAIT_POLICY=PASSIVE. Reports the ratio.
// PyTorch 2.10 (libtorch through TorchSharp, bench/peers/torchsharp_lora/run.sh) runs the same step as a second peer,
// reported as "torch210_tokens_per_s" and "ratio_torch210"; "ratio_best" is against the faster of the two.
// --masked F masks the targets of the first F of each row (a prompt: no loss there) in both; Quill then makes no
// logits for those rows, PyTorch (cross_entropy's ignore_index, as Hugging Face's models do) makes them all.
// --qlora-type runs Quill's step on the base quantized in memory (q4_0, nf4, ...) against the same f32 peer.
// --rounds N has Quill and the peers take turns N times; the figures are then medians (RoundFigures).
using System.Globalization;
using Quill.Autograd;
using Quill.Kernels;
using Quill.Models;
using Quill.Quantization;
using Quill.Tensors;
using Quill.Training;

namespace Quill.Benchmarks;

/// <summary>Settings of the LoRA benchmark.</summary>
public sealed record LoraBenchOptions(string Shape = "stories15M", int Batch = 4, int Seq = 256, int Steps = 3, int Runs = 3, int Threads = 0,
    int Rank = 8, GgmlType? QuantType = null, bool Peer = true, string? PeerScript = null, double Masked = 0)
{
    /// <summary>Times Quill and then its peers this many times over, alternating (RoundFigures).</summary>
    public int Rounds { get; init; } = 1;
}

/// <summary>Measures LoRA fine-tuning tokens/s against PyTorch.</summary>
public static class LoraBenchmark
{
    /// <summary>The Llama config of a TinyStories shape with its head tied to the table.</summary>
    public static ModelConfig Config(string shape, int seq)
    {
        if (!DecodeBenchmark.Shapes.TryGetValue(shape, out var s))
            throw new InvalidConfigException($"--shape '{shape}' is unknown; use {string.Join(" or ", DecodeBenchmark.Shapes.Keys)}.");
        if (seq < 1 || seq > s.SeqLen) throw new InvalidConfigException($"--seq {seq} is outside 1..{s.SeqLen}, the context of {shape}.");
        return new ModelConfig
        {
            Arch = "llama", VocabSize = s.Vocab, NLayer = s.Layers, NHead = s.Heads, NKvHead = s.Heads, NEmbd = s.Dim, MlpHidden = s.Hidden,
            BlockSize = s.SeqLen, TieEmbeddings = true,
        };
    }

    /// <summary>Runs Quill (and the peer when found); profile, when given, receives ms per op of one step.</summary>
    public static BenchResult Run(LoraBenchOptions o, Dictionary<string, double>? profile = null, TextWriter? log = null)
    {
        ArgumentNullException.ThrowIfNull(o);
        if (o.Batch < 1 || o.Steps < 1 || o.Runs < 1 || o.Rank < 1 || o.Rounds < 1)
            throw new InvalidConfigException("--batch, --steps, --runs, --rank and --rounds must each be at least 1.");
        if (o.Masked is < 0 or >= 1) throw new InvalidConfigException($"--masked {o.Masked} is outside [0, 1).");
        if (o.Threads > 0) KernelThreads.Count = o.Threads;
        var config = Config(o.Shape, o.Seq);
        var model = LanguageModel.Create(config, 1);
        ModelWeights? weights = null;
        if (o.QuantType is GgmlType q)
        {
            weights = model.ToWeights();
            model = LanguageModel.QuantizedBase(weights, q);
        }
        try
        {
            model.AddLora(new LoraConfig { Rank = o.Rank, Alpha = 16 }, seed: 1);
            model.Parameters.EnableGrads();
            var opt = new AdamWOptimizer(model.Parameters, new TrainConfig { LearningRate = 1e-4f, WeightDecay = 0f });
            var rng = new Rng(1);
            int b = o.Batch, t = o.Seq;
            int[] x = new int[b * t], y = new int[b * t];
            for (int i = 0; i < x.Length; i++)
            {
                x[i] = (int)rng.NextInt64(config.VocabSize);
                y[i] = i % t < Prompt(o) ? -1 : (int)rng.NextInt64(config.VocabSize);
            }
            var g = new Graph();
            void Step()
            {
                model.Parameters.ZeroGrads();
                g.Reset();
                var loss = model.Loss(g, x, y, b, t);
                g.Backward(loss);
                opt.Step(1e-4f, 1f);
            }
            double peak = FmaPeak.Measure();
            var figures = new RoundFigures();
            double msMin = double.MaxValue, msMax = 0;
            for (int round = 0; round < o.Rounds; round++)
            {
                var ms = TrainBenchmark.TimeSteps(Step, o.Steps, o.Runs, g, round == o.Rounds - 1 ? profile : null);
                (msMin, msMax) = (Math.Min(msMin, ms[0]), Math.Max(msMax, ms[^1]));
                double? peer = o.Peer ? RunPeer(o, log) : null;
                double? torch210 = o.Peer ? TorchPeer.RunTorchSharp(PeerArgs(o), log, TorchPeer.FindRepoScript(Path.Combine("torchsharp_lora", "run.sh"))) : null;
                figures.Add(b * t / ms[ms.Count / 2] * 1e3, ms[ms.Count / 2], peer, torch210);
                if (o.Rounds > 1) log?.WriteLine(figures.Describe(round));
            }
            var fields = new Dictionary<string, object>
            {
                ["shape"] = o.Shape,
                ["method"] = o.QuantType is GgmlType qt ? "qlora " + qt.ToString().ToLowerInvariant() : "lora",
                ["rank"] = o.Rank,
                ["targets"] = "q,k,v,o",
                ["threads"] = KernelThreads.Count,
                ["batch"] = b,
                ["seq"] = t,
                ["masked"] = Prompt(o) * b,
                ["ms_per_step"] = Math.Round(figures.MsPerStep, 1),
                ["ms_min"] = Math.Round(msMin, 1),
                ["ms_max"] = Math.Round(msMax, 1),
            };
            if (figures.Torch210 is double t210)
            {
                fields["torch210_tokens_per_s"] = Math.Round(t210, 1);
                fields["ratio_torch210"] = Math.Round(figures.RatioTorch210!.Value, 3);
                fields["ratio_best"] = Math.Round(figures.RatioBest!.Value, 3);
            }
            figures.AddTo(fields);
            PeakFraction.AddTo(fields, figures, TrainingFlops.PerStepFrozen(config, b, t, TrainingFlops.AttentionLoraMacsPerToken(config, o.Rank)), b * t, peak, log);
            return new BenchResult("lora", figures.Quill, "tokens/s", figures.Torch113, fields) { RoundRatio = figures.RatioTorch113 };
        }
        finally
        {
            weights?.Dispose();
        }
    }

    /// <summary>Positions at the start of each row whose target is masked (a prompt's), as many in the peer.</summary>
    private static int Prompt(LoraBenchOptions o) => (int)(o.Masked * o.Seq);

    /// <summary>Peer tokens/s from torch_lora_train.py, or null when python3/torch/the script is missing.</summary>
    public static double? RunPeer(LoraBenchOptions o, TextWriter? log)
    {
        ArgumentNullException.ThrowIfNull(o);
        return TorchPeer.Run("torch_lora_train.py", PeerArgs(o), "tokens_per_s", log, o.PeerScript ?? TorchPeer.FindRepoScript("torch_lora_train.py"));
    }

    /// <summary>The options both peers (torch_lora_train.py and torchsharp_lora) take, from Quill's.</summary>
    private static string[] PeerArgs(LoraBenchOptions o)
    {
        string I(int v) => v.ToString(CultureInfo.InvariantCulture);
        return ["--shape", o.Shape, "--batch", I(o.Batch), "--seq", I(o.Seq), "--rank", I(o.Rank), "--alpha", "16",
            "--threads", I(KernelThreads.Count), "--runs", I(o.Runs), "--steps", I(o.Steps), "--masked", I(Prompt(o))];
    }
}
