// Supervised fine-tuning of a loaded model on a JSONL file of examples. Methods: full (every parameter, or those
// train.trainable names), lora (an adapter beside the f32 base, which is frozen) and qlora (an adapter beside a frozen
// base kept in its block type or quantized in memory: LanguageModel.QuantizedBase). The caller loads the base
// (Inference.ModelLoader), makes the method's model of its weights (BaseModel) and hands it over with its tokenizer,
// chat template (null: the pinned Alpaca layout), whether prompts start with BOS and its extra stop ids; the
// finetuner loads nothing itself. For lora / qlora it adds the adapter (FinetuneOptions.Lora, A drawn from
// train.seed) unless the model carries one, and records the lora section and the base's path (FinetuneOptions.Base)
// in the run's config, so each checkpoint is the adapter alone (Checkpoint) and --resume knows the base to reload.
// It reads and renders the data (Data.Sft: replies trained, prompt masked unless TrainOnPrompt; examples cut to
// seq_len + 1 tokens), holds out a content-hashed share for validation, writes the tokenizer to OUT/tokenizer.json
// (copied into every checkpoint, so the checkpoint generates on its own) and runs the Trainer on padded rows
// (SftBatchSource; packed rows with train.packing) with the step's loss the mean over all trained targets of the step.
// A run resumes from OUT/checkpoint like `quill train --resume`, bit for bit.
// Does not handle: recording the base's chat template or BOS rule in the checkpoint (a
// Quill checkpoint loads without BOS and with the plain chat layout), NF4 (QLoRA uses GGML block types).
using Quill.Data.Sft;
using Quill.Models;
using Quill.Quantization;
using Quill.Tokenization;
using Quill.Tokenization.ChatTemplates;

namespace Quill.Training;

/// <summary>The model to fine-tune and what its prompts look like.</summary>
/// <param name="Model">The trainable base (LanguageModel.FromWeights of the loaded weights).</param>
/// <param name="Tokenizer">The base's tokenizer.</param>
/// <param name="Template">The base's chat template, or null for the pinned Alpaca layout.</param>
/// <param name="AddBos">Whether the base's prompts start with BOS.</param>
/// <param name="ExtraStopIds">Ids besides EOS that end a turn.</param>
public sealed record FinetuneBase(LanguageModel Model, ITokenizer Tokenizer, ChatTemplate? Template, bool AddBos, IReadOnlyList<int> ExtraStopIds);

/// <summary>Options of one fine-tuning invocation.</summary>
/// <param name="DataPath">The JSONL file of examples.</param>
/// <param name="OutDir">The run folder (checkpoint/, metrics.jsonl, loss.svg, tokenizer.json).</param>
public sealed record FinetuneOptions(string DataPath, string OutDir)
{
    /// <summary>Full, Lora or QLora (the model handed over must be made for it: see Finetuner.BaseModel).</summary>
    public FinetuneMethod Method { get; init; } = FinetuneMethod.Full;

    /// <summary>Lora / QLora: the adapter's settings (null: LoraConfig's defaults); ignored when the model carries an adapter.</summary>
    public LoraConfig? Lora { get; init; }

    /// <summary>QLora: the block type a float base is quantized to (recorded in the lora section; Finetuner.BaseModel applies it).</summary>
    public GgmlType QuantType { get; init; } = GgmlType.Q4_0;

    /// <summary>The base's path (and the tokenizer given with it), recorded in an adapter run's checkpoint; null: not recorded.</summary>
    public BaseModelConfig? Base { get; init; }

    public bool TrainOnPrompt { get; init; }

    public OverlongPolicy Overlong { get; init; } = OverlongPolicy.Truncate;

    public double ValFraction { get; init; } = 0.05;

    public int? MaxSteps { get; init; }

    public int? CheckpointEvery { get; init; }

    public bool Resume { get; init; }

    /// <summary>Stop (with a checkpoint) after this many steps of this invocation; the schedule still follows MaxSteps.</summary>
    public int? StopAfterSteps { get; init; }

    /// <summary>A measurement run every <see cref="StepEvaluationEvery"/> steps (see TrainOptions.StepEvaluation).</summary>
    public Func<LanguageModel, string?, IReadOnlyList<(string Name, double Value)>>? StepEvaluation { get; init; }

    public int StepEvaluationEvery { get; init; }
}

/// <summary>Fine-tunes a model on SFT examples with the Trainer.</summary>
public sealed class Finetuner : IDisposable
{
    /// <summary>seq_len when the train section leaves it 0: the model's context, at most this.</summary>
    public const int DefaultSeqLen = 512;

    /// <summary>Validates the run, reads and renders the data, builds the trainer.</summary>
    public Finetuner(FinetuneBase model, RunConfig run, FinetuneOptions options)
    {
        run = Prepare(model, run, options);
        var lm = model.Model;
        var renderer = new SftRenderer(model.Tokenizer, model.Template, model.AddBos, model.ExtraStopIds);
        Data = SftDataset.Load(options.DataPath, renderer, new SftOptions
        {
            MaxTokens = run.Train.SeqLen + 1, TrainOnPrompt = options.TrainOnPrompt, Overlong = options.Overlong, ValFraction = options.ValFraction,
        });
        if (Data.Train.Count == 0)
            throw new InvalidFileException($"{options.DataPath}: no example left to train ({Data.Report.Summary()}); add examples, lower the held-out fraction or raise seq_len.");
        var trainOptions = RunFolder(model, options, out int pad);
        bool packing = run.Train.Packing;
        var val = Data.Val.Count > 0 ? new SftBatchSource(Data.Val, pad, packing) : null;
        Source = new SftBatchSource(Data.Train, pad, packing);
        Trainer = new Trainer(run, trainOptions, lm, Source, val);
    }

    /// <summary>
    /// Creates the run folder with the tokenizer in it (copied into every checkpoint) and returns the trainer's
    /// options; pad is the id written after a row's tokens (the EOS, else 0).
    /// </summary>
    internal static TrainOptions RunFolder(FinetuneBase model, FinetuneOptions options, out int pad)
    {
        Directory.CreateDirectory(options.OutDir);
        string tokenizerPath = Path.Combine(options.OutDir, "tokenizer.json");
        model.Tokenizer.Save(tokenizerPath);
        pad = Math.Max(model.Tokenizer.EosId, 0);
        return new TrainOptions(null, options.OutDir, options.MaxSteps, options.CheckpointEvery, options.Resume, options.StopAfterSteps)
        {
            TokenizerPath = tokenizerPath, StepEvaluation = options.StepEvaluation, StepEvaluationEvery = options.StepEvaluationEvery,
        };
    }

    /// <summary>
    /// The run's config for a base and method (shared with PreferenceTuner): checks the model suits the method,
    /// adopts its architecture and a seq_len within its context, adds the adapter for lora / qlora (unless the model
    /// carries one) and records the lora section and base.
    /// </summary>
    internal static RunConfig Prepare(FinetuneBase model, RunConfig run, FinetuneOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(options);
        var lm = model.Model;
        if (options.Method == FinetuneMethod.Full && lm.Lora != null)
            throw new InvalidConfigException("the model carries a LoRA adapter; fine-tune it with method lora or qlora, or merge it (MergeLora) for full fine-tuning.");
        if (options.Method == FinetuneMethod.QLora && !lm.Parameters.Any(p => p.IsForeign))
            throw new InvalidConfigException("method qlora needs a base that stays in its stored or quantized form (LanguageModel.QuantizedBase, Finetuner.BaseModel); this one holds f32 copies: use method lora.");
        if (options.Method == FinetuneMethod.Lora && lm.Parameters.Any(p => p.IsForeign))
            throw new InvalidConfigException("method lora trains beside an f32 base (LanguageModel.FromWeights), but this one views stored or quantized weights: use method qlora.");
        if (model.Tokenizer.VocabSize > lm.Config.VocabSize)
            throw new InvalidConfigException($"the tokenizer has {model.Tokenizer.VocabSize} tokens but the model only {lm.Config.VocabSize}; pass the model's own tokenizer.");
        run = run.Clone();
        run.Model = lm.Config.Clone();
        if (run.Train.SeqLen == 0) run.Train.SeqLen = Math.Min(lm.Config.BlockSize, DefaultSeqLen);
        if (run.Train.SeqLen > lm.Config.BlockSize)
            throw new InvalidConfigException($"seq_len {run.Train.SeqLen} exceeds the model's context of {lm.Config.BlockSize} tokens; lower seq_len.");
        run.Lora = null;
        run.Base = null;
        // how the base's prompts are laid out, so that the fine-tuned checkpoint chats as it was trained (config.json's
        // "inference" section, which ModelLoader reads back): BOS, the chat template by name, end-of-turn ids
        run.Inference = new PromptFormatConfig { AddBos = model.AddBos, ChatTemplate = model.Template?.Name, ExtraStopIds = [.. model.ExtraStopIds] };
        if (options.Method != FinetuneMethod.Full)
        {
            var adapter = lm.Lora ?? lm.AddLora(options.Lora ?? new LoraConfig(), run.Train.Seed);
            run.Lora = LoraRunConfig.From(options.Method, adapter.Config, options.QuantType);
            run.Base = options.Base?.Clone();
        }
        run.Validate("the fine-tuning config");
        return run;
    }

    /// <summary>The rendered examples and the report of what was read, skipped and truncated.</summary>
    public SftDataset Data { get; }

    /// <summary>The training rows (padded or packed, as train.packing says).</summary>
    public SftBatchSource Source { get; }

    /// <summary>The training examples laid out once in seq_len rows, padded (Padded) and packed (Packed): rows and share of non-pad inputs.</summary>
    public (RowFill Padded, RowFill Packed) RowFills => (Source.Layout(Trainer.Config.Train.SeqLen, false), Source.Layout(Trainer.Config.Train.SeqLen, true));

    /// <summary>The trainer (its Config, Model and progress are the run's).</summary>
    public Trainer Trainer { get; }

    /// <summary>Runs the fine-tuning to MaxSteps (or from the checkpoint with Resume).</summary>
    public TrainResult Run(IProgress<TrainProgress>? progress = null, CancellationToken cancel = default) => Trainer.Run(progress, cancel);

    /// <summary>
    /// The model a method trains, made of loaded weights: an f32 copy (LanguageModel.FromWeights) for full and lora,
    /// a frozen base in its stored block type, or a float base quantized to options.QuantType, for qlora
    /// (LanguageModel.QuantizedBase; then keep <paramref name="weights"/> undisposed while training).
    /// </summary>
    public static LanguageModel BaseModel(ModelWeights weights, FinetuneOptions options)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(options);
        return options.Method == FinetuneMethod.QLora ? LanguageModel.QuantizedBase(weights, options.QuantType) : LanguageModel.FromWeights(weights);
    }

    /// <summary>
    /// The train section used when none is given: learning rate 2e-5 (TRL SFTConfig's default, wave2-facts 1.3),
    /// 4 examples per micro-batch, seq_len from the model (at most DefaultSeqLen), 200 steps.
    /// </summary>
    public static RunConfig DefaultConfig() => new()
    {
        Train = new TrainConfig { BatchSize = 4, SeqLen = 0, MaxSteps = 200, LearningRate = 2e-5f, MinLr = 2e-6f, WarmupSteps = 10, EvalEvery = 50, EvalBatches = 10, CheckpointEvery = 50 },
    };

    public void Dispose() => Trainer.Dispose();
}
