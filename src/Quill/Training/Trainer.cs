// The training loop: sample micro-batches, forward, backward, accumulate to the step's token budget, guard
// against bad updates, clip, AdamW, evaluate, log metrics, checkpoint. The model is a fresh one from the config
// (pretraining) or one given by the caller (LanguageModel.FromWeights: continued pretraining, fine-tuning);
// parameters outside train.trainable are frozen (no gradient, no moments); batches come from an IBatchSource
// (token shards by default; given another, options.DataDir may be null), whose negative targets are masked out of
// the loss.
// A step's loss is the mean cross-entropy over every unmasked target of all its micro-batches (torchtune PR #1875,
// wave2-facts 1.3), not the mean of per-micro-batch means, which would weight a target of a short (mostly masked)
// micro-batch more than one of a long one: the step's micro-batches are filled first, their unmasked targets
// counted, and micro-batch i's mean loss is back-propagated with seed count_i / total. With every target counted
// (pretraining) each seed is exactly 1 / accum, as before. Validation uses the same token-weighted mean.
// Packed fine-tuning rows (train.packing, an IPackedBatchSource) come with each token's document start, which the
// model's forward turns into per-example attention and positions; the loss counts their unmasked targets as above.
// A step's data and dropout depend only on (seed, step, micro-batch), and every kernel splits its work the same way
// each time, so a run resumed from a checkpoint continues bit for bit as if it had never stopped. A model carrying a
// LoRA adapter checkpoints and resumes the adapter alone (Checkpoint); its frozen base is rebuilt by the caller.
// Preference tuning (a PreferenceSettings and PreferenceBatchSource batches): a micro-batch is B pairs, 2B rows
// (chosen, then rejected), whose summed completion log-probs (SequenceLogProbOp) feed PreferenceLossOp; each
// micro-batch's loss is already its share of the step's mean over pairs (the chosen replies' NLL of ORPO or RPO: over the step's chosen tokens),
// so every micro-batch back-propagates with seed 1. The step's reward accuracy, chosen / rejected rewards and margin
// go to metrics.jsonl and rewards.svg; validation is the same loss (and reward accuracy) over the held-out pairs.
// Early stopping (train.early_stopping_patience > 0): after each evaluation the best validation loss, its step and
// the evaluations since it are kept in the state (so a resumed run counts on); an improvement (a fall of more than
// train.early_stopping_threshold) also saves the weights (the adapter for LoRA), config and tokenizer without the
// optimizer to OUT/best, and `patience` evaluations in a row without one end the run after its checkpoint.
// Data parallelism (options.Ranks with more than one rank, DataParallel): every rank draws the whole step, trains
// on its share of the rows and joins in the gradient sums (or ZeRO-1's reduce-scatter / all-gather); rank 0 alone
// evaluates, logs, plots and writes checkpoints (gathering ZeRO-1's moments first); every rank resumes from the
// checkpoint in options.OutDir. A cancelled run (the token fires) saves the steps it completed, then throws
// TrainingStoppedException naming the step and the checkpoint; under several ranks it stops without that checkpoint.
// Glossary: B micro-batch sequences, T sequence length, V vocab.
using System.Diagnostics;
using Quill.Autograd;
using Quill.Autograd.Ops;
using Quill.Data;
using Quill.Models;
using Quill.Tensors;

namespace Quill.Training;

/// <summary>A progress report after a step or an evaluation.</summary>
public sealed record TrainProgress(int Step, int MaxSteps, float Loss, float Lr, float GradNorm, double TokensPerSecond,
    TimeSpan Elapsed, TimeSpan? Eta, float? ValLoss, string? Message)
{
    /// <summary>Preference tuning: the step's pairs' reward accuracy and mean margin (null otherwise).</summary>
    public (double Accuracy, double Margin)? Rewards { get; init; }
}

/// <summary>What a finished (or stopped) run reached.</summary>
public sealed record TrainResult(int Steps, float LastLoss, float? ValLoss, long TokensSeen, TimeSpan Elapsed, string CheckpointDir, int SkippedUpdates)
{
    /// <summary>Steps this invocation ran (Steps minus the step it resumed from).</summary>
    public int StepsRun { get; init; }
}

/// <summary>
/// Options that belong to one invocation rather than to the config. DataDir: a folder `quill prepare` wrote (null
/// when the trainer is given its batch source). TokenizerPath: the tokenizer file copied into every checkpoint
/// (default: the prepared data's).
/// </summary>
public sealed record TrainOptions(string? DataDir, string OutDir, int? MaxSteps = null, int? CheckpointEvery = null, bool Resume = false,
    int? StopAfterSteps = null)
{
    public string? TokenizerPath { get; init; }

    /// <summary>
    /// A measurement of the model (e.g. `quill eval`'s perplexity of a held-out text) run every
    /// <see cref="StepEvaluationEvery"/> steps and at the last step, given the model and the run's tokenizer file (null
    /// when it has none); its figures go to metrics.jsonl as "eval_NAME" ("eval_nll" is also drawn in loss.svg). The
    /// model must not be changed by it. Null: none.
    /// </summary>
    public Func<LanguageModel, string?, IReadOnlyList<(string Name, double Value)>>? StepEvaluation { get; init; }

    public int StepEvaluationEvery { get; init; }

    /// <summary>The ranks of a data-parallel run (null or one rank: this process trains alone).</summary>
    public ICollectives? Ranks { get; init; }

    /// <summary>With Ranks: 1 shards the AdamW moments and update over the ranks (ZeRO-1), 0 does not.</summary>
    public int Zero { get; init; }
}

/// <summary>Trains a language model on a prepared dataset.</summary>
public sealed class Trainer : IDisposable
{
    private const int GuardWindow = 50;
    private readonly RunConfig config;
    private readonly TrainOptions options;
    private readonly TokenDataset? train;
    private readonly TokenDataset? val;
    private readonly IBatchSource trainSource;
    private readonly IBatchSource? valSource;
    private readonly Graph graph = new();
    private readonly int b, t, accum, maxSteps, checkpointEvery;
    private readonly int[][] inputs, targets; // [accum][B * T]: a step's micro-batches, filled before any forward
    private readonly long[] counts;            // [accum] unmasked targets per micro-batch (preference: pairs)
    private readonly PreferenceSettings? preference;
    private readonly int rows;                 // rows per micro-batch: B, or 2B for preference pairs
    private readonly int[][]? drawn;           // [accum][B] preference: the pairs of each micro-batch
    private readonly int[][]? docStarts;       // [accum][B * T] packed rows: where each token's example starts
    private readonly string? tokenizerPath;
    private readonly bool fromInit;
    private readonly DataParallel? parallel;
    private readonly Dictionary<int, (int[] X, int[] Y, int[] S)> chunks = [];
    private TrainState state = new();

    /// <summary>
    /// A trainer for config on the prepared data in options.DataDir. init: start from this model (its architecture
    /// replaces config's model section) instead of fresh weights. trainSource / valSource: batches other than random
    /// windows of the data's token shards (with a trainSource, options.DataDir may be null). preference: train on
    /// preference pairs with this loss (trainSource and valSource are then PreferenceBatchSources; the reference
    /// log-probs are computed before the first update when the loss needs them).
    /// </summary>
    public Trainer(RunConfig config, TrainOptions options, LanguageModel? init = null, IBatchSource? trainSource = null, IBatchSource? valSource = null,
        PreferenceSettings? preference = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(options);
        if (options.DataDir == null && trainSource == null) throw new ArgumentException("give TrainOptions.DataDir or a trainSource.", nameof(options));
        this.options = options;
        config = config.Clone();
        train = options.DataDir != null ? new TokenDataset(options.DataDir, "train") : null;
        try
        {
            var manifest = train?.Manifest;
            if (init != null) config.Model = init.Config.Clone();
            else if (config.Preset != null && manifest != null) config.Model.VocabSize = manifest.VocabSize; // a preset adopts the dataset's vocabulary
            if (manifest != null && manifest.VocabSize > config.Model.VocabSize)
                throw new InvalidConfigException(init != null
                    ? $"{options.DataDir} was prepared with a vocabulary of {manifest.VocabSize} tokens but the model has {config.Model.VocabSize}; prepare the data with the model's own tokenizer (quill prepare --tokenizer MODEL)."
                    : $"model vocab_size {config.Model.VocabSize} is smaller than the dataset's vocabulary of {manifest.VocabSize} ({options.DataDir}); raise vocab_size.");
            config.Validate("config");
            this.config = config;
            b = config.Train.BatchSize;
            t = config.Train.SeqLen > 0 ? config.Train.SeqLen : config.Model.BlockSize;
            accum = config.Train.TokensPerStep > 0 ? config.Train.TokensPerStep / (b * t) : 1;
            maxSteps = options.MaxSteps ?? config.Train.MaxSteps;
            if (maxSteps < 1) throw new InvalidConfigException($"--max-steps must be at least 1 (got {maxSteps}).");
            config.Train.MaxSteps = maxSteps; // the checkpoint records the planned length the schedule follows
            checkpointEvery = options.CheckpointEvery ?? config.Train.CheckpointEvery;
            if (checkpointEvery < 0) throw new InvalidConfigException($"--checkpoint-every must not be negative (got {checkpointEvery}).");
            this.preference = preference;
            if (preference != null && (trainSource is not PreferenceBatchSource || (valSource != null && valSource is not PreferenceBatchSource)))
                throw new ArgumentException("preference training takes PreferenceBatchSource batches.", nameof(trainSource));
            rows = preference != null ? 2 * b : b;
            this.trainSource = trainSource ?? new TokenBatchSource(train!, config.Model.VocabSize);
            if (!this.trainSource.CanSample(t))
                throw new InvalidFileException(options.DataDir != null
                    ? $"{options.DataDir}: the training split has fewer than {t + 1} tokens in every shard; use more data or a shorter seq_len."
                    : $"the training batch source cannot fill rows of {t} tokens (no examples, or longer ones); check the data or raise seq_len.");
            if (valSource == null && manifest != null)
            {
                bool hasVal = manifest.Val.Any(s => s.Tokens > 0);
                val = hasVal ? new TokenDataset(options.DataDir!, "val") : null;
                if (val != null && !val.CanSample(t)) { val.Dispose(); val = null; }
                if (val != null) valSource = new TokenBatchSource(val, config.Model.VocabSize);
            }
            this.valSource = valSource != null && valSource.CanSample(t) ? valSource : null;
            if (config.Train.EarlyStoppingPatience > 0 && this.valSource == null)
                throw new InvalidConfigException("early stopping watches the validation loss, but this run has no validation data; hold some out (--val-fraction, or a val split in `quill prepare`) or turn it off.");
            bool packs = this.trainSource is IPackedBatchSource { Packs: true };
            if (config.Train.Packing != packs)
            {
                if (packs) throw new ArgumentException("the batch source packs rows but train.packing is off.", nameof(trainSource));
                throw new InvalidConfigException("train.packing applies to fine-tuning examples (quill finetune); pretraining windows and preference pairs are not packed.");
            }
            inputs = new int[accum][];
            targets = new int[accum][];
            for (int i = 0; i < accum; i++)
            {
                inputs[i] = new int[rows * t];
                targets[i] = new int[rows * t];
            }
            counts = new long[accum];
            if (packs)
            {
                docStarts = new int[accum][];
                for (int i = 0; i < accum; i++) docStarts[i] = new int[rows * t];
            }
            if (preference != null)
            {
                drawn = new int[accum][];
                for (int i = 0; i < accum; i++) drawn[i] = new int[b];
            }
            tokenizerPath = options.TokenizerPath ?? (manifest != null ? Path.Combine(options.DataDir!, manifest.Tokenizer) : null);
            fromInit = init != null;
            Model = init ?? LanguageModel.Create(config.Model, config.Train.Seed);
            Model.Parameters.FreezeAllBut(config.Train.Trainable);
            if (!Model.Parameters.Trainable.Any())
                throw new InvalidConfigException($"train.trainable ({string.Join(", ", config.Train.Trainable)}) matches no parameter name; nothing would train (names look like {Model.Parameters[0].Name}).");
            Model.Parameters.EnableGrads();
            if (options.Ranks is { Size: > 1 } ranks)
            {
                if (preference != null) throw new InvalidConfigException("preference tuning (dpo, ipo, orpo, simpo) runs in one process; start it without mpirun.");
                if ((accum * b) % ranks.Size != 0)
                    throw new InvalidConfigException($"a step's {accum * b} sequences ({accum} micro-batch(es) of {b}) do not split evenly over {ranks.Size} ranks; make batch_size x micro-batches a multiple of {ranks.Size}.");
                parallel = new DataParallel(ranks, Model, options.Zero);
            }
            else if (options.Zero != 0)
            {
                throw new InvalidConfigException("--zero shards the optimizer over the ranks of an MPI job; start the run with mpirun -np N (N > 1).");
            }
            Optimizer = parallel is { Zero: true } ? new AdamWOptimizer(Model.Parameters, config.Train, parallel.Shard.Start, parallel.Shard.Length)
                : new AdamWOptimizer(Model.Parameters, config.Train);
        }
        catch
        {
            train?.Dispose();
            val?.Dispose();
            throw;
        }
    }

    public LanguageModel Model { get; }

    public AdamWOptimizer Optimizer { get; }

    /// <summary>The configuration actually used (a preset's vocab adapted to the data).</summary>
    public RunConfig Config => config;

    public int MicroBatchesPerStep => accum;

    public int TokensPerStep => accum * rows * t;

    /// <summary>This process's rank and the world size (0 of 1 alone).</summary>
    public (int Rank, int Size) World => parallel == null ? (0, 1) : (parallel.Rank, parallel.Size);

    /// <summary>True when the run shards the optimizer over ranks (ZeRO-1).</summary>
    public bool Sharded => parallel?.Zero ?? false;

    /// <summary>Bytes of gradient buffers and optimizer moments: 12 per trainable value, none for frozen ones.</summary>
    public long TrainingStateBytes => 4L * Model.Parameters.Where(p => p.Grad != null).Sum(p => (long)p.Length) + Optimizer.StateBytes;

    /// <summary>Runs from step 0 (or the checkpoint with Resume) to MaxSteps.</summary>
    public TrainResult Run(IProgress<TrainProgress>? progress = null, CancellationToken cancel = default)
    {
        string ckptDir = Path.Combine(options.OutDir, Checkpoint.FolderName);
        bool lead = parallel == null || parallel.Rank == 0; // logs, plots, evaluates and writes checkpoints
        if (!lead) progress = null;
        if (lead) Directory.CreateDirectory(options.OutDir);
        if (!options.Resume && Checkpoint.Locate(options.OutDir) != null)
            throw new QuillException($"{options.OutDir} already holds a checkpoint; pass --resume to continue it or choose another --out.");
        if (preference is { NeedsReference: true })
        {
            // before any update (and before a checkpoint's weights are loaded): the reference is the starting model
            foreach (var source in new[] { trainSource, valSource }.OfType<PreferenceBatchSource>())
            {
                if (!source.HasReference) source.ComputeReference(Model, b, t, ReferenceProgress);
            }
        }
        if (options.Resume) LoadCheckpoint();
        if (lead && fromInit && !options.Resume && valSource != null)
        {
            // Where the loaded model starts: the validation loss before any update.
            InitialValLoss = Evaluate(valSource);
            progress?.Report(new TrainProgress(0, maxSteps, float.NaN, 0f, 0f, 0, TimeSpan.Zero, null, InitialValLoss, null));
        }
        using var metrics = lead ? new MetricsLog(Path.Combine(options.OutDir, "metrics.jsonl"), state.Step) : null;
        var clock = Stopwatch.StartNew();
        double startElapsed = state.ElapsedSeconds;
        int firstStep = state.Step;
        float lastLoss = float.NaN;
        int stopAt = options.StopAfterSteps is int k ? Math.Min(maxSteps, firstStep + k) : maxSteps;
        StoppedEarly = false;
        int patience = config.Train.EarlyStoppingPatience;
        bool stoppedEarly = false;
        for (int step = state.Step; step < stopAt && !stoppedEarly; step++)
        {
            if (cancel.IsCancellationRequested)
            {
                // Never lose work: keep what the completed steps learned, then stop, saying where they are.
                bool save = state.Step > firstStep && parallel == null;
                if (save) Checkpoint.Save(options.OutDir, config, Model, Optimizer, state, tokenizerPath);
                throw new TrainingStoppedException(state.Step, maxSteps, save ? Path.Combine(options.OutDir, Checkpoint.FolderName) : null, cancel);
            }
            float lr = LrSchedule.At(config.Train, step, maxSteps);
            Model.Parameters.ZeroGrads();
            long total = 0, totalChosen = 0;
            for (int micro = 0; micro < accum; micro++)
            {
                var rng = new Rng(Rng.Mix(config.Train.Seed, (ulong)step, (ulong)micro));
                if (preference != null)
                {
                    var pairs = (PreferenceBatchSource)trainSource;
                    pairs.FillPairs(rng, b, t, inputs[micro], targets[micro], drawn![micro]);
                    counts[micro] = b;
                    totalChosen += CountTargets(targets[micro].AsSpan(0, b * t)); // the chosen rows come first
                }
                else
                {
                    if (docStarts != null) ((IPackedBatchSource)trainSource).Fill(rng, b, t, inputs[micro], targets[micro], docStarts[micro]);
                    else trainSource.Fill(rng, b, t, inputs[micro], targets[micro]);
                    counts[micro] = CountTargets(targets[micro]);
                }
                total += counts[micro];
            }
            double lossSum = 0;
            var stats = default(PreferenceStats);
            for (int micro = 0; micro < accum && parallel == null; micro++)
            {
                if (counts[micro] == 0) continue; // nothing to learn here; the other micro-batches keep their seeds
                graph.Reset();
                ulong dropoutSeed = Rng.Mix(config.Train.Seed ^ 0xD409_0D0D, (ulong)step, (ulong)micro);
                if (preference != null)
                {
                    var loss = PairLoss(graph, (PreferenceBatchSource)trainSource, inputs[micro], targets[micro], drawn![micro], b, total, totalChosen, dropoutSeed, ref stats);
                    lossSum += loss.Item();
                    graph.Backward(loss); // already the micro-batch's share of the step's mean
                }
                else
                {
                    var loss = Model.Loss(graph, inputs[micro], targets[micro], b, t, dropoutSeed, docStarts?[micro]);
                    lossSum += loss.Item() * (double)counts[micro];
                    // The op's mean times count_i / total is its share of the step's global mean. For equal counts the
                    // double quotient is round(1 / accum) and its float is exactly 1f / accum (a double-rounding slip
                    // needs accum >= 2^29), so pretraining gradients are bit for bit what they were.
                    graph.Backward(loss, (float)((double)counts[micro] / total));
                }
            }
            graph.Reset();
            float gradNorm;
            if (parallel != null) (lossSum, gradNorm) = parallel.Reduce(LocalBackward(step, total), Optimizer);
            else gradNorm = (float)Optimizer.GradNorm();
            float stepLoss = total == 0 ? float.NaN : preference != null ? (float)lossSum : (float)(lossSum / total);
            string? message = total == 0 ? $"skipped update at step {state.Step + 1}: every target of the step is masked" : Guard(stepLoss, gradNorm);
            if (message == null)
            {
                if (parallel != null) parallel.Step(Optimizer, lr, AdamWOptimizer.ClipScale(gradNorm, config.Train.GradClip));
                else Optimizer.Step(lr, AdamWOptimizer.ClipScale(gradNorm, config.Train.GradClip));
                Remember(state.RecentLosses, stepLoss);
                Remember(state.RecentGradNorms, gradNorm);
            }
            else
            {
                state.SkippedUpdates++;
            }
            state.Step = step + 1;
            state.OptimizerStep = Optimizer.StepCount;
            state.TokensSeen += TokensPerStep;
            lastLoss = stepLoss;
            double elapsed = clock.Elapsed.TotalSeconds;
            double tps = (state.Step - firstStep) * (double)TokensPerStep / Math.Max(1e-9, elapsed);
            float? valLoss = null;
            bool last = state.Step == maxSteps;
            List<KeyValuePair<string, double>>? extra = preference != null && stats.Pairs > 0 ? Figures(stats, "") : null;
            bool evalStep = valSource != null && ((config.Train.EvalEvery > 0 && state.Step % config.Train.EvalEvery == 0) || last);
            if (lead && evalStep)
            {
                valLoss = Evaluate(valSource!);
                state.LastValLoss = valLoss;
                if (preference != null && LastValStats.Pairs > 0) extra?.Add(new("val_reward_accuracy", (double)LastValStats.Correct / LastValStats.Pairs));
                if (patience > 0) stoppedEarly = WatchValidation(valLoss.Value, patience);
            }
            if (patience > 0 && parallel != null && evalStep)
            {
                Span<double> flag = [lead && stoppedEarly ? 1 : 0]; // rank 0 evaluated: every rank learns whether to stop
                options.Ranks!.Sum(flag);
                stoppedEarly = flag[0] > 0;
            }
            string? report = message;
            if (stoppedEarly)
            {
                report = (message == null ? "" : message + "; ") + string.Create(System.Globalization.CultureInfo.InvariantCulture,
                    $"early stop: the validation loss has not improved for {patience} evaluation(s); best {state.BestValLoss:F4} at step {state.BestStep}, kept in {Path.Combine(options.OutDir, BestFolder)}");
                StoppedEarly = true;
            }
            if (lead && options.StepEvaluation != null && options.StepEvaluationEvery > 0 && (state.Step % options.StepEvaluationEvery == 0 || last))
            {
                extra ??= [];
                foreach (var (name, value) in options.StepEvaluation(Model, tokenizerPath)) extra.Add(new("eval_" + name, value));
            }
            state.ElapsedSeconds = startElapsed + elapsed;
            LastStats = stats;
            metrics?.Append(state.Step, stepLoss, lr, gradNorm, tps, valLoss, state.ElapsedSeconds, message != null, extra);
            TimeSpan? eta = state.Step > firstStep ? TimeSpan.FromSeconds(elapsed / (state.Step - firstStep) * (maxSteps - state.Step)) : null;
            progress?.Report(new TrainProgress(state.Step, maxSteps, stepLoss, lr, gradNorm, tps, TimeSpan.FromSeconds(state.ElapsedSeconds), eta, valLoss, report)
            {
                Rewards = stats.Pairs > 0 ? ((double)stats.Correct / stats.Pairs, stats.Margin / stats.Pairs) : null,
            });
            if (last || stoppedEarly || (checkpointEvery > 0 && state.Step % checkpointEvery == 0) || state.Step == stopAt)
            {
                parallel?.GatherState(Optimizer);
                if (lead) Checkpoint.Save(options.OutDir, config, Model, Optimizer, state, tokenizerPath);
            }
        }
        if (!lead) return new TrainResult(state.Step, lastLoss, state.LastValLoss, state.TokensSeen, TimeSpan.FromSeconds(state.ElapsedSeconds), ckptDir, state.SkippedUpdates) { StepsRun = state.Step - firstStep };
        metrics!.Flush();
        LossPlot.Write(Path.Combine(options.OutDir, "metrics.jsonl"), Path.Combine(options.OutDir, "loss.svg"));
        if (preference != null) LossPlot.WriteRewards(Path.Combine(options.OutDir, "metrics.jsonl"), Path.Combine(options.OutDir, "rewards.svg"));
        return new TrainResult(state.Step, lastLoss, state.LastValLoss, state.TokensSeen, TimeSpan.FromSeconds(state.ElapsedSeconds), ckptDir, state.SkippedUpdates) { StepsRun = state.Step - firstStep };
    }

    /// <summary>
    /// Data parallelism: back-propagates this rank's rows of the step (already drawn into inputs / targets), at most B
    /// per forward, each chunk's mean loss seeded with its share of the step's total targets; the last chunk's
    /// backward starts the gradient sums layer by layer. Returns the rank's loss sum (mean loss x targets, summed).
    /// </summary>
    private double LocalBackward(int step, long total)
    {
        var dp = parallel!;
        var (first, count) = dp.LocalRows(accum * b);
        double lossSum = 0;
        for (int done = 0; done < count;)
        {
            int row = first + done, micro = row / b, r0 = row % b, n = Math.Min(b - r0, count - done);
            done += n;
            if (!chunks.TryGetValue(n, out var chunk)) chunks[n] = chunk = (new int[n * t], new int[n * t], new int[docStarts != null ? n * t : 0]);
            inputs[micro].AsSpan(r0 * t, n * t).CopyTo(chunk.X);
            targets[micro].AsSpan(r0 * t, n * t).CopyTo(chunk.Y);
            docStarts?[micro].AsSpan(r0 * t, n * t).CopyTo(chunk.S); // row-relative: a packed row's starts travel with it
            long here = CountTargets(chunk.Y);
            if (here == 0) continue;
            graph.Reset();
            graph.OnBackwardMark = done == count ? dp.MarkHook : null;
            var loss = Model.Loss(graph, chunk.X, chunk.Y, n, t, Rng.Mix(config.Train.Seed ^ 0xD409_0D0D, (ulong)step, (ulong)micro), docStarts != null ? chunk.S : null);
            lossSum += loss.Item() * (double)here;
            graph.Backward(loss, (float)((double)here / total));
            graph.OnBackwardMark = null;
        }
        graph.Reset();
        dp.AfterBackward();
        return lossSum;
    }

    /// <summary>The folder under OUT that early stopping keeps the best weights in.</summary>
    public const string BestFolder = "best";

    /// <summary>True when the last Run ended because the validation loss stopped improving.</summary>
    public bool StoppedEarly { get; private set; }

    /// <summary>
    /// Early stopping's bookkeeping after an evaluation (rank 0): a new best saves the weights to OUT/best; true when
    /// patience evaluations in a row have not improved on the best.
    /// </summary>
    private bool WatchValidation(float valLoss, int patience)
    {
        if (state.BestValLoss is not float best || valLoss < best - config.Train.EarlyStoppingThreshold)
        {
            state.BestValLoss = valLoss;
            state.BestStep = state.Step;
            state.EvalsSinceBest = 0;
            Checkpoint.Save(Path.Combine(options.OutDir, BestFolder), config, Model, null, state, tokenizerPath);
            return false;
        }
        return ++state.EvalsSinceBest >= patience;
    }

    /// <summary>The validation loss of a model given to the constructor, before the first update (null otherwise).</summary>
    public float? InitialValLoss { get; private set; }

    /// <summary>The validation batches (null when the data has no usable validation split).</summary>
    public IBatchSource? Validation => valSource;

    /// <summary>Preference tuning: told (pairs done, pairs in the split) while the reference log-probs are computed.</summary>
    public IProgress<(int Done, int Total)>? ReferenceProgress { get; set; }

    /// <summary>Preference tuning: the rewards and accuracy of the last step's pairs (sums; divide by Pairs).</summary>
    public PreferenceStats LastStats { get; private set; }

    /// <summary>Preference tuning: the rewards and accuracy of the last evaluation's held-out pairs.</summary>
    public PreferenceStats LastValStats { get; private set; }

    /// <summary>metrics.jsonl's preference figures of summed stats: means per pair.</summary>
    private static List<KeyValuePair<string, double>> Figures(PreferenceStats s, string prefix) =>
    [
        new(prefix + "reward_accuracy", (double)s.Correct / s.Pairs), new(prefix + "chosen_reward", s.ChosenReward / s.Pairs),
        new(prefix + "rejected_reward", s.RejectedReward / s.Pairs), new(prefix + "margin", s.Margin / s.Pairs),
    ];

    /// <summary>One micro-batch's preference loss: policy log-probs of its 2B rows against the pairs' reference.</summary>
    private Tensor PairLoss(Graph g, PreferenceBatchSource pairs, int[] x, int[] y, int[] which, int p, long stepPairs, long stepChosen, ulong dropoutSeed, ref PreferenceStats stats)
    {
        var pref = preference!;
        var lengths = new int[2 * p];
        pairs.Lengths(which, p, lengths);
        float[]? refs = null;
        if (pref.NeedsReference)
        {
            refs = new float[2 * p];
            pairs.Reference(which, p, refs);
        }
        var logp = SequenceLogProbOp.Forward(g, Model.Forward(g, x, 2 * p, t, dropoutSeed), y, 2 * p);
        var loss = PreferenceLossOp.Forward(g, logp, refs, lengths, pref, stepPairs, stepChosen, out var s);
        stats.Add(s);
        return loss;
    }

    /// <summary>
    /// Mean loss over every unmasked target of the fixed validation batches (NaN when all are masked), without
    /// recording a graph. Preference tuning: the mean pair loss over the held-out pairs in order (at most
    /// eval_batches micro-batches), with their reward accuracy in LastValStats.
    /// </summary>
    public float Evaluate(IBatchSource split)
    {
        ArgumentNullException.ThrowIfNull(split);
        if (preference != null) return EvaluatePairs((PreferenceBatchSource)split);
        var g = new Graph(recording: false);
        double sum = 0;
        long total = 0;
        var rng = new Rng(Rng.Mix(config.Train.Seed, 0xE7A1));
        int[] x = inputs[0], y = targets[0];
        int[]? starts = split is IPackedBatchSource { Packs: true } ? docStarts?[0] ?? new int[b * t] : null;
        for (int i = 0; i < config.Train.EvalBatches; i++)
        {
            if (starts != null) ((IPackedBatchSource)split).Fill(rng, b, t, x, y, starts);
            else split.Fill(rng, b, t, x, y);
            long count = CountTargets(y);
            if (count == 0) continue;
            g.Reset();
            sum += Model.Loss(g, x, y, b, t, 0, starts).Item() * (double)count;
            total += count;
        }
        return total > 0 ? (float)(sum / total) : float.NaN;
    }

    private float EvaluatePairs(PreferenceBatchSource split)
    {
        var g = new Graph(recording: false);
        int[] which = new int[b];
        var stats = default(PreferenceStats);
        double sum = 0;
        for (int start = 0, batch = 0; start < split.Count && batch < config.Train.EvalBatches; start += b, batch++)
        {
            int n = Math.Min(b, split.Count - start); // the last batch may hold fewer pairs
            for (int i = 0; i < n; i++) which[i] = start + i;
            split.WriteRows(which, n, t, inputs[0], targets[0]);
            g.Reset();
            sum += PairLoss(g, split, inputs[0], targets[0], which, n, n, CountTargets(targets[0].AsSpan(0, n * t)), 0, ref stats).Item() * (double)n;
        }
        LastValStats = stats;
        return stats.Pairs > 0 ? (float)(sum / stats.Pairs) : float.NaN;
    }

    private static long CountTargets(ReadOnlySpan<int> targets)
    {
        long n = 0;
        foreach (int y in targets) if (y >= 0) n++;
        return n;
    }

    /// <summary>Null when the update may proceed, else why it is skipped.</summary>
    private string? Guard(float loss, float gradNorm)
    {
        if (!float.IsFinite(loss)) return $"skipped update at step {state.Step + 1}: loss is {loss}";
        if (!float.IsFinite(gradNorm)) return $"skipped update at step {state.Step + 1}: gradient norm is {gradNorm}";
        if (!config.Train.SkipOutliers || state.RecentGradNorms.Count < 20) return null;
        float medNorm = Median(state.RecentGradNorms), medLoss = Median(state.RecentLosses);
        if (gradNorm > 20f * medNorm) return $"skipped update at step {state.Step + 1}: gradient norm {gradNorm:G4} is {gradNorm / medNorm:F0}x the recent median {medNorm:G4}";
        if (loss > medLoss + 5f) return $"skipped update at step {state.Step + 1}: loss {loss:F3} is far above the recent median {medLoss:F3}";
        return null;
    }

    private static float Median(List<float> xs)
    {
        var sorted = xs.ToArray();
        Array.Sort(sorted);
        return sorted[sorted.Length / 2];
    }

    private static void Remember(List<float> window, float x)
    {
        window.Add(x);
        if (window.Count > GuardWindow) window.RemoveAt(0);
    }

    private void LoadCheckpoint()
    {
        string ckpt = Checkpoint.Locate(options.OutDir)
            ?? throw new InvalidFileException($"--resume: no checkpoint in {Path.Combine(options.OutDir, Checkpoint.FolderName)}; start without --resume.");
        var saved = Checkpoint.LoadConfig(ckpt);
        saved.Train.MaxSteps = config.Train.MaxSteps; // a longer (or shorter) planned run may continue a checkpoint
        saved.Inference ??= config.Inference; // fine-tune checkpoints of earlier versions recorded no prompt format
        if (saved.ToJson() != config.ToJson())
            throw new InvalidConfigException($"--resume: the config in {ckpt} differs from this run's config; resume with the same --preset/--config (or start a new --out).");
        Checkpoint.LoadTrained(ckpt, Model);
        Optimizer.LoadState(Path.Combine(ckpt, Checkpoint.OptimizerFile));
        state = Checkpoint.LoadState(ckpt);
        Optimizer.StepCount = state.OptimizerStep;
        if (state.Step > maxSteps) throw new InvalidConfigException($"--resume: the checkpoint is at step {state.Step}, past --max-steps {maxSteps}.");
    }

    public void Dispose()
    {
        train?.Dispose();
        val?.Dispose();
    }
}
