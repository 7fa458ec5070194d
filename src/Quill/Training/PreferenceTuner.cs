// Preference tuning of a loaded model on a JSONL file of pairs (Data.Sft.PreferenceDataset: TRL's prompt / chosen /
// rejected): DPO, IPO, ORPO or SimPO (Autograd.Ops.PreferenceLossOp), full or with a LoRA / QLoRA adapter, on the
// Trainer. The model, method, adapter, seq_len, tokenizer copy and checkpoints are handled as in Finetuner (same
// FinetuneBase and FinetuneOptions; Finetuner.Prepare); what differs is the data (pairs, rendered by the same
// SftRenderer, so prompts look as in SFT and chat) and the loss. DPO and IPO compare with the frozen starting model:
// with an adapter the same weights with the adapter switched off, in full fine-tuning the weights before the first
// update; its log-probs are computed once before training (PreferenceBatchSource.ComputeReference), so no second copy
// of the model is held. A micro-batch is train.batch_size pairs (2x rows).
// Does not handle: TRL's other loss types (hinge, robust, bco_pair, ...), label smoothing, reference syncing, KTO.
using Quill.Autograd.Ops;
using Quill.Data.Sft;

namespace Quill.Training;

/// <summary>Tunes a model on preference pairs with the Trainer.</summary>
public sealed class PreferenceTuner : IDisposable
{
    /// <summary>The settings' constants as a user gives them (one-line errors naming the flags); the constructor calls it.</summary>
    public static void Validate(PreferenceSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (!(settings.Beta > 0) || !double.IsFinite(settings.Beta))
            throw new InvalidConfigException($"--beta must be a positive number (got {settings.Beta}); TRL's default is 0.1.");
        if (!double.IsFinite(settings.Gamma) || settings.Gamma < 0)
            throw new InvalidConfigException($"--gamma (SimPO's target margin) must be zero or positive (got {settings.Gamma}).");
        if (!(settings.NllWeight >= 0) || double.IsInfinity(settings.NllWeight))
            throw new InvalidConfigException(FormattableString.Invariant($"--rpo-alpha must be a finite number at least 0 (got {settings.NllWeight})."));
    }

    /// <summary>Validates the run, reads and renders the pairs, builds the trainer.</summary>
    public PreferenceTuner(FinetuneBase model, RunConfig run, FinetuneOptions options, PreferenceSettings settings)
    {
        Validate(settings);
        run = Finetuner.Prepare(model, run, options);
        Settings = settings;
        var renderer = new SftRenderer(model.Tokenizer, model.Template, model.AddBos, model.ExtraStopIds);
        Data = PreferenceDataset.Load(options.DataPath, renderer, run.Train.SeqLen + 1, options.ValFraction);
        if (Data.Train.Count == 0)
            throw new InvalidFileException($"{options.DataPath}: no pair left to train ({Data.Report.Describe()}); add pairs, lower the held-out fraction or raise seq_len.");
        var trainOptions = Finetuner.RunFolder(model, options, out int pad);
        var val = Data.Val.Count > 0 ? new PreferenceBatchSource(Data.Val, pad) : null;
        Trainer = new Trainer(run, trainOptions, model.Model, new PreferenceBatchSource(Data.Train, pad), val, settings);
    }

    /// <summary>The rendered pairs and the report of what was read and skipped.</summary>
    public PreferenceDataset Data { get; }

    public PreferenceSettings Settings { get; }

    /// <summary>The trainer (its Config, Model, progress and LastStats are the run's).</summary>
    public Trainer Trainer { get; }

    /// <summary>Runs to MaxSteps (or from the checkpoint with Resume).</summary>
    public TrainResult Run(IProgress<TrainProgress>? progress = null, CancellationToken cancel = default) => Trainer.Run(progress, cancel);

    /// <summary>
    /// The train section used when none is given: 4 pairs per micro-batch, learning rate 1e-5 (TRL suggests about
    /// 1e-5 for adapters, 1e-6 for full models: wave2-facts section 2), 100 steps.
    /// </summary>
    public static RunConfig DefaultConfig() => new()
    {
        Train = new TrainConfig { BatchSize = 4, SeqLen = 0, MaxSteps = 100, LearningRate = 1e-5f, MinLr = 1e-6f, WarmupSteps = 10, EvalEvery = 25, EvalBatches = 10, CheckpointEvery = 50 },
    };

    public void Dispose() => Trainer.Dispose();
}
