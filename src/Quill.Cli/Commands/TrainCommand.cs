// `quill train`: pretrain a model from a preset or a config file on a prepared dataset, with live progress,
// periodic validation, atomic checkpoints and --resume.
using System.CommandLine;
using System.Globalization;
using Quill.Kernels;
using Quill.Training;
using Spectre.Console;

namespace Quill.Cli.Commands;

internal static class TrainCommand
{
    public static Command Create()
    {
        var preset = new Option<string?>("--preset") { Description = $"Built-in config: {string.Join(", ", Presets.Names)}" };
        var config = new Option<string?>("--config") { Description = "Config file (JSON or YAML) with 'model' and 'train' sections" };
        var data = new Option<string>("--data") { Description = "Folder written by `quill prepare`", Required = true };
        var outDir = new Option<string>("--out") { Description = "Run folder (checkpoint/, metrics.jsonl, loss.svg)", Required = true };
        var maxSteps = new Option<int?>("--max-steps") { Description = "Planned number of steps (the LR schedule follows it)" };
        var ckptEvery = new Option<int?>("--checkpoint-every") { Description = "Save the checkpoint every N steps" };
        var resume = new Option<bool>("--resume") { Description = "Continue from OUT/checkpoint" };
        var threads = new Option<int?>("--threads") { Description = "Kernel threads (default: all cores)" };
        var cmd = new Command("train", "Pretrain a GPT-2 or Llama model from scratch.") { preset, config, data, outDir, maxSteps, ckptEvery, resume, threads };
        cmd.SetAction(r =>
        {
            if (r.GetValue(threads) is int n) KernelThreads.Count = n;
            var run = LoadRunConfig(r.GetValue(preset), r.GetValue(config));
            using var cts = Rendering.CtrlC();
            var result = Train(run, new TrainOptions(r.GetValue(data)!, r.GetValue(outDir)!, r.GetValue(maxSteps), r.GetValue(ckptEvery), r.GetValue(resume)), cts.Token);
            Console.WriteLine($"checkpoint: {result.CheckpointDir}");
        });
        return cmd;
    }

    public static RunConfig LoadRunConfig(string? preset, string? configPath)
    {
        if (preset != null && configPath != null) throw new InvalidConfigException("give either --preset or --config, not both.");
        if (preset == null && configPath == null) throw new InvalidConfigException($"give --preset NAME ({string.Join(", ", Presets.Names)}) or --config FILE.");
        return preset != null ? Presets.Get(preset) : RunConfig.Load(configPath!);
    }

    /// <summary>Runs a trainer with the progress display; shared by train and quickstart.</summary>
    public static TrainResult Train(RunConfig run, TrainOptions options, CancellationToken cancel)
    {
        using var trainer = new Trainer(run, options);
        var m = trainer.Config.Model;
        int maxSteps = trainer.Config.Train.MaxSteps;
        Console.Error.WriteLine($"model: {m.Arch}, {m.NLayer} layers, {m.NHead} heads, width {m.NEmbd}, context {m.BlockSize}, vocab {m.VocabSize}, {m.ParameterCount() / 1e6:F2}M parameters");
        Console.Error.WriteLine($"training: {maxSteps} steps of {trainer.TokensPerStep:N0} tokens ({trainer.MicroBatchesPerStep} micro-batch(es)), {KernelThreads.Count} threads");
        TrainResult result;
        if (Rendering.Interactive)
        {
            result = AnsiConsole.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask("starting", maxValue: maxSteps);
                    var progress = new SyncProgress<TrainProgress>(p =>
                    {
                        task.Value = p.Step;
                        task.Description = Describe(p);
                        if (p.Message != null) AnsiConsole.MarkupLine("[yellow]{0}[/]", Markup.Escape(p.Message));
                        if (p.ValLoss is float v) AnsiConsole.MarkupLine("step {0}: val loss {1:F4}", p.Step, v);
                    });
                    return trainer.Run(progress, cancel);
                });
        }
        else
        {
            int every = Math.Max(1, maxSteps / 20);
            var progress = new SyncProgress<TrainProgress>(p =>
            {
                if (p.Message != null) Console.Error.WriteLine(p.Message);
                if (p.Step % every == 0 || p.ValLoss != null || p.Step == p.MaxSteps)
                    Console.Error.WriteLine(Describe(p) + (p.Eta is TimeSpan eta ? $" | ETA {Rendering.Duration(eta)}" : ""));
            });
            result = trainer.Run(progress, cancel);
        }
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"done: {result.Steps} steps, loss {result.LastLoss:F4}{(result.ValLoss is float vl ? $", val loss {vl:F4}" : "")}, {result.TokensSeen:N0} tokens in {Rendering.Duration(result.Elapsed)}{(result.SkippedUpdates > 0 ? $", {result.SkippedUpdates} update(s) skipped" : "")}"));
        Console.Error.WriteLine($"metrics: {Path.Combine(options.OutDir, "metrics.jsonl")}, plot: {Path.Combine(options.OutDir, "loss.svg")}");
        return result;
    }

    private static string Describe(TrainProgress p) => string.Create(CultureInfo.InvariantCulture,
        $"step {p.Step}/{p.MaxSteps} | loss {p.Loss:F4}{(p.ValLoss is float v ? $" | val {v:F4}" : "")} | lr {p.Lr:E2} | {p.TokensPerSecond:N0} tok/s");
}
