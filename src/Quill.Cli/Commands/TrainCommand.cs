// `quill train`: pretrain a model from a preset or a config file on a prepared dataset, or continue pretraining
// any model `quill generate` opens (--init: GGUF incl. quantized, HF folder, llama2.c, a Quill run), with live
// progress, periodic validation, atomic checkpoints and --resume. With --init the architecture and weights come from
// the model; --preset / --config only give the train section (defaults suited to continued pretraining otherwise).
// Under mpirun (`mpirun -np N quill train ...`) the N processes train data-parallel (Quill.Distributed.MpiLaunch
// joins the job; --zero 1 shards the optimizer); rank 0 prints, the others stay quiet unless they fail, and the
// default --threads divides the machine's cores among the ranks mpirun started on it.
using System.CommandLine;
using System.Globalization;
using Quill.Data;
using Quill.Distributed;
using Quill.Inference;
using Quill.Kernels;
using Quill.Models;
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
        var threads = new Option<int?>("--threads") { Description = "Kernel threads (default: all cores; under mpirun: cores / ranks on this machine)" };
        var zero = new Option<int>("--zero") { Description = "Under mpirun: 1 shards the AdamW moments and update over the ranks (ZeRO-1), 0 does not" };
        var init = new Option<string?>("--init") { Description = "Start from this model's weights and tokenizer (GGUF, HF folder, llama2.c .bin, Quill run or hf.co/ORG/REPO[:QUANT]): continued pretraining" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "With --init: the model's tokenizer when it has none beside it (llama2.c)" };
        var trainable = new Option<string[]>("--trainable") { Description = "Train only parameters whose names match these globs (e.g. '*norm*'); the rest stay frozen", AllowMultipleArgumentsPerToken = true };
        var pull = ModelLocator.PullOption();
        var earlyStop = EarlyStopping.PatienceOption();
        var earlyStopThreshold = EarlyStopping.ThresholdOption();
        var cmd = new Command("train", "Pretrain a GPT-2 or Llama-family model from scratch, or continue pretraining an open model (--init).")
        {
            preset, config, data, outDir, maxSteps, ckptEvery, resume, threads, zero, init, tokenizer, trainable, earlyStop, earlyStopThreshold, pull,
        };
        var evalOptions = new TrainingEvalOptions();
        evalOptions.AddTo(cmd);
        cmd.SetAction(r =>
        {
            using var job = MpiLaunch.Start();
            try
            {
                Action(r, job);
                job?.Finish();
            }
            catch (Exception e) when (job != null)
            {
                job.Fail(CliRunner.UserMessage(e) ?? e.ToString()); // ends every rank: the others would wait for this one
            }
        });
        return cmd;

        void Action(ParseResult r, MpiLaunch? job)
        {
            if (r.GetValue(threads) is int n) KernelThreads.Count = n;
            else if (MpiLaunch.LocalSize > 1) KernelThreads.Count = Math.Max(1, Environment.ProcessorCount / MpiLaunch.LocalSize);
            string? initPath = r.GetValue(init) is string given ? ModelLocator.Resolve(given, r.GetValue(pull)) : null;
            if (initPath == null && r.GetValue(tokenizer) != null) throw new InvalidConfigException("--tokenizer goes with --init (the tokenizer of the model to start from).");
            RunConfig run = initPath == null ? LoadRunConfig(r.GetValue(preset), r.GetValue(config)) : InitRunConfig(r.GetValue(preset), r.GetValue(config));
            if (r.GetValue(trainable) is { Length: > 0 } globs) run.Train.Trainable = [.. globs];
            EarlyStopping.Apply(r, earlyStop, earlyStopThreshold, run.Train);
            var options = new TrainOptions(r.GetValue(data)!, r.GetValue(outDir)!, r.GetValue(maxSteps), r.GetValue(ckptEvery), r.GetValue(resume))
            {
                StepEvaluation = evalOptions.Build(r), StepEvaluationEvery = evalOptions.EveryOrZero(r),
                Ranks = job?.World, Zero = r.GetValue(zero),
            };
            using var cts = Rendering.StopSignals();
            string? note = null;
            LanguageModel? start = initPath == null ? null : LoadInit(initPath, r.GetValue(tokenizer), r.GetValue(data)!, ref run, out note);
            var result = Resumable(() => Train(run, options, cts.Token, start, note));
            if (job != null && job.World.Rank == 0 && result.StepsRun > 0)
                Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"communication (rank 0): {1000 * job.World.WaitSeconds / result.StepsRun:F1} ms per step waiting for the other ranks, {job.World.PayloadBytes / result.StepsRun:N0} bytes per step handed to collectives"));
            if (MpiLaunch.WorldRank == 0) Console.WriteLine($"checkpoint: {result.CheckpointDir}");
        }
    }

    /// <summary>The train section for --init: a preset's or a config file's, else defaults for continued pretraining.</summary>
    private static RunConfig InitRunConfig(string? preset, string? configPath)
    {
        if (preset != null && configPath != null) throw new InvalidConfigException("give either --preset or --config, not both.");
        if (preset != null) return Presets.Get(preset);
        if (configPath != null) return RunConfig.Load(configPath, validate: false); // its train section is checked against the model's context
        return new RunConfig
        {
            Train = new TrainConfig { BatchSize = 8, SeqLen = 0, MaxSteps = 1000, LearningRate = 1e-4f, MinLr = 1e-5f, WarmupSteps = 10, EvalEvery = 50, EvalBatches = 10, CheckpointEvery = 50 },
        };
    }

    /// <summary>
    /// Loads the model to start from and makes a trainable f32 copy of it; refuses data prepared with another
    /// vocabulary. A train section without seq_len trains on min(256, the model's context).
    /// </summary>
    private static LanguageModel LoadInit(string path, string? tokenizerPath, string dataDir, ref RunConfig run, out string note)
    {
        string prepareWith = tokenizerPath ?? path;
        var manifest = TokenManifest.Load(dataDir);
        using var model = ModelLoader.Load(path, tokenizerPath);
        var spec = model.Spec;
        if (model.Tokenizer is { } tok && tok.VocabSize != manifest.VocabSize)
            throw new InvalidConfigException($"{dataDir} was prepared with a vocabulary of {manifest.VocabSize} tokens but {path}'s tokenizer has {tok.VocabSize}; prepare the data with the model's tokenizer (quill prepare --tokenizer {prepareWith}).");
        if (manifest.VocabSize > spec.VocabSize)
            throw new InvalidConfigException($"{dataDir} was prepared with a vocabulary of {manifest.VocabSize} tokens but {path} has {spec.VocabSize}; prepare the data with the model's tokenizer (quill prepare --tokenizer {prepareWith}).");
        var lm = LanguageModel.FromWeights(model.Weights);
        if (run.Train.SeqLen == 0 && lm.Config.BlockSize > 256) run.Train.SeqLen = 256;
        if (run.Train.SeqLen > lm.Config.BlockSize)
            throw new InvalidConfigException($"seq_len {run.Train.SeqLen} exceeds {path}'s context of {lm.Config.BlockSize} tokens; lower seq_len.");
        run.Model = lm.Config.Clone();
        run.Validate(path + " with the train section given");
        note = $"init: {path} ({spec.Arch}, weights {string.Join("/", model.Layers.SelectMany(l => l.Matrices()).Select(w => w.Type).Distinct())} -> f32 for training)";
        return lm;
    }

    public static RunConfig LoadRunConfig(string? preset, string? configPath)
    {
        if (preset != null && configPath != null) throw new InvalidConfigException("give either --preset or --config, not both.");
        if (preset == null && configPath == null) throw new InvalidConfigException($"give --preset NAME ({string.Join(", ", Presets.Names)}) or --config FILE.");
        return preset != null ? Presets.Get(preset) : RunConfig.Load(configPath!);
    }

    /// <summary>Runs a trainer with the progress display; shared by train and quickstart.</summary>
    public static TrainResult Train(RunConfig run, TrainOptions options, CancellationToken cancel, LanguageModel? init = null, string? initNote = null)
    {
        using var trainer = new Trainer(run, options, init);
        if (initNote != null && trainer.World.Rank == 0) Console.Error.WriteLine(initNote);
        return Run(trainer, options.OutDir, cancel);
    }

    /// <summary>
    /// Runs the training of a verb that takes --resume (train, finetune): a stop that saved its completed steps
    /// (Ctrl+C, SIGTERM) ends with a line that also says how to go on.
    /// </summary>
    internal static T Resumable<T>(Func<T> train)
    {
        try
        {
            return train();
        }
        catch (TrainingStoppedException e) when (e.CheckpointDir != null)
        {
            throw e.WithNote("run the same command with --resume to go on");
        }
    }

    /// <summary>The model line, then the trainer's run with live progress (a bar on a terminal, lines otherwise); shared with finetune.</summary>
    public static TrainResult Run(Trainer trainer, string outDir, CancellationToken cancel)
    {
        if (trainer.World.Rank != 0) return trainer.Run(null, cancel); // rank 0 speaks for the job
        var m = trainer.Config.Model;
        int maxSteps = trainer.Config.Train.MaxSteps;
        Console.Error.WriteLine($"model: {m.Arch}, {m.NLayer} layers, {m.NHead} heads, width {m.NEmbd}, context {m.BlockSize}, vocab {m.VocabSize}, {m.ParameterCount() / 1e6:F2}M parameters");
        var ps = trainer.Model.Parameters;
        if (ps.TrainableElementCount != ps.ElementCount)
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"trainable: {ps.TrainableElementCount / 1e6:F3}M of {ps.ElementCount / 1e6:F3}M parameters ({ps.Trainable.Count()} of {ps.Count} tensors); gradients + AdamW moments {trainer.TrainingStateBytes / 1048576.0:F1} MiB"));
        int ranks = trainer.World.Size;
        string workers = ranks > 1 ? $"{ranks} ranks x {KernelThreads.Count} thread{(KernelThreads.Count == 1 ? "" : "s")}" : $"{KernelThreads.Count} threads";
        Console.Error.WriteLine($"training: {maxSteps} steps of {trainer.TokensPerStep:N0} tokens ({trainer.MicroBatchesPerStep} micro-batch(es)), {workers}");
        if (ranks > 1)
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"data parallel: each rank takes {trainer.TokensPerStep / ranks:N0} tokens of a step; AdamW moments {trainer.Optimizer.StateBytes / 1048576.0:F2} MiB per rank ({trainer.Optimizer.StateBytes:N0} bytes){(trainer.Sharded ? $" (ZeRO-1: 1/{ranks} of them)" : "")}"));
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
                        if (p.Step == 0)
                        {
                            AnsiConsole.MarkupLine("step 0: val loss {0:F4} (before training)", p.ValLoss ?? float.NaN);
                            return;
                        }
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
                if (p.Step == 0)
                {
                    Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"step 0 | val {p.ValLoss:F4} (before training)"));
                    return;
                }
                if (p.Message != null) Console.Error.WriteLine(p.Message);
                if (p.Step % every == 0 || p.ValLoss != null || p.Step == p.MaxSteps)
                    Console.Error.WriteLine(Describe(p) + (p.Eta is TimeSpan eta ? $" | ETA {Rendering.Duration(eta)}" : ""));
            });
            result = trainer.Run(progress, cancel);
        }
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"done: {result.Steps} steps, loss {result.LastLoss:F4}{(result.ValLoss is float vl ? $", val loss {vl:F4}" : "")}, {result.TokensSeen:N0} tokens in {Rendering.Duration(result.Elapsed)}{(result.SkippedUpdates > 0 ? $", {result.SkippedUpdates} update(s) skipped" : "")}"));
        Console.Error.WriteLine($"metrics: {Path.Combine(outDir, "metrics.jsonl")}, plot: {Path.Combine(outDir, "loss.svg")}");
        return result;
    }

    private static string Describe(TrainProgress p) => string.Create(CultureInfo.InvariantCulture,
        $"step {p.Step}/{p.MaxSteps} | loss {p.Loss:F4}{(p.ValLoss is float v ? $" | val {v:F4}" : "")}{(p.Rewards is { } r ? $" | reward acc {r.Accuracy:F2} margin {r.Margin:F3}" : "")} | lr {p.Lr:E2} | {p.TokensPerSecond:N0} tok/s");
}
