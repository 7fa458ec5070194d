// `quill finetune`: supervised fine-tuning of any model `quill generate` opens on a JSONL file of examples (Alpaca,
// chat messages, ShareGPT, prompt/completion), by method full, lora (an adapter beside the f32 base) or qlora (an
// adapter beside a base kept in its GGUF block type, a float base quantized in memory). Thin: loads the base with
// ModelLoader, makes the method's model (Finetuner.BaseModel), picks the chat template, hands everything to
// Quill.Training.Finetuner, prints the data report and the training progress (TrainCommand's display). --config gives
// the train section and, optionally, the lora section (method, rank, alpha, dropout, target_modules, use_rslora,
// quant_type); the --lora-* flags override its keys. --resume continues OUT/checkpoint with the base and LoRA
// settings it records unless flags say otherwise (then the trainer refuses a config that differs).
// --method dpo | ipo | orpo | simpo tunes on preference pairs instead (TRL's prompt / chosen / rejected JSONL,
// Quill.Training.PreferenceTuner), the whole model by default or an adapter with --lora / --qlora (or any --lora-*
// flag); --beta (0.1) and --gamma (SimPO, 0.5) set the loss; --loss sigmoid|ipo picks DPO's loss as TRL's loss_type.
// --packing (or train.packing) packs several examples into each row (SftBatchSource), none attending to another; the
// "rows" line reports how many rows one pass over the examples takes and their share of non-pad tokens, both ways.
// `quill finetune merge` folds an adapter into its base and writes a whole Quill model folder.
// Does not handle: data files other than JSONL, NF4.
using System.CommandLine;
using System.Globalization;
using Quill.Autograd.Ops;
using Quill.Data.Sft;
using Quill.Inference;
using Quill.Kernels;
using Quill.Models;
using Quill.Tokenization.ChatTemplates;
using Quill.Training;

namespace Quill.Cli.Commands;

internal static class FinetuneCommand
{
    public static Command Create()
    {
        var baseModel = new Option<string?>("--base") { Description = "The model to fine-tune: GGUF, HF folder, llama2.c .bin, Quill run or hf.co/ORG/REPO[:QUANT] (with --resume: the one the checkpoint records)" };
        var data = new Option<string?>("--data") { Description = "JSONL examples: Alpaca, chat (messages), ShareGPT (conversations) or prompt/completion" };
        var outDir = new Option<string?>("--out") { Description = "Run folder (checkpoint/, metrics.jsonl, loss.svg)" };
        var method = new Option<string?>("--method") { Description = "full (every parameter), lora (adapter beside the f32 base) or qlora (adapter beside the base in its block type); or a preference method on prompt/chosen/rejected pairs: dpo, ipo, orpo, simpo; default: the config's lora.method, else full" };
        var beta = new Option<double?>("--beta") { Description = "Preference methods: beta (DPO, IPO, SimPO) or ORPO's lambda (default 0.1, as TRL)" };
        var gamma = new Option<double?>("--gamma") { Description = "SimPO: the target reward margin gamma (default 0.5, as TRL)" };
        var rpoAlpha = new Option<double?>("--rpo-alpha") { Description = "DPO, IPO, SimPO: add alpha times the chosen replies' NLL to the loss (RPO; TRL's rpo_alpha, 1 in its paper; default 0: none)" };
        var loss = new Option<string?>("--loss") { Description = "With --method dpo: sigmoid (DPO, default) or ipo (TRL's loss_type)" };
        var useLora = new Option<bool>("--lora") { Description = "Preference methods: train a LoRA adapter beside the frozen f32 base (default: the whole model)" };
        var useQlora = new Option<bool>("--qlora") { Description = "Preference methods: train a LoRA adapter beside the base kept in its block type" };
        var config = new Option<string?>("--config") { Description = "Config file (JSON or YAML): its 'train' section sets batch, seq_len, lr, steps; its 'lora' section the adapter" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "The base's tokenizer when none is found with it (llama2.c)" };
        var trainOnPrompt = new Option<bool>("--train-on-prompt") { Description = "Also train on prompt tokens (default: replies only)" };
        var packing = new Option<bool>("--packing") { Description = "Pack several examples into each row of seq_len tokens, none attending to another (default: one example per padded row; or the config's train.packing)" };
        var skipLong = new Option<bool>("--skip-long") { Description = "Leave out examples longer than seq_len + 1 tokens (default: keep their start)" };
        var valFraction = new Option<double>("--val-fraction") { Description = "Share of examples held out for validation (by content hash)", DefaultValueFactory = _ => 0.05 };
        var maxSteps = new Option<int?>("--max-steps") { Description = "Planned number of steps (the LR schedule follows it)" };
        var resume = new Option<bool>("--resume") { Description = "Continue from OUT/checkpoint" };
        var threads = new Option<int?>("--threads") { Description = "Kernel threads (default: all cores)" };
        var rank = new Option<int?>("--lora-rank") { Description = "LoRA: rank r of A [r, in] and B [out, r] (default 8)" };
        var alpha = new Option<double?>("--lora-alpha") { Description = "LoRA: lora_alpha; the update is scaled by alpha / r (default 16)" };
        var dropout = new Option<float?>("--lora-dropout") { Description = "LoRA: dropout on the adapter's input while training (default 0)" };
        var targets = new Option<string[]?>("--lora-targets") { Description = "LoRA: projections to adapt (q_proj k_proj v_proj o_proj gate_proj up_proj down_proj, GPT-2: c_attn c_proj c_fc, or all-linear; default q, k, v, o)", AllowMultipleArgumentsPerToken = true };
        var rslora = new Option<bool?>("--rslora") { Description = "LoRA: scale by alpha / sqrt(r) (rank-stabilized)" };
        var quantType = new Option<string?>("--qlora-type") { Description = "QLoRA: the block type a float base's matrices are quantized to in memory (q4_0 default, nf4, q8_0, ...); a GGUF base stays as stored" };
        var pull = ModelLocator.PullOption();
        var earlyStop = EarlyStopping.PatienceOption();
        var earlyStopThreshold = EarlyStopping.ThresholdOption();
        var cmd = new Command("finetune", "Supervised fine-tuning (SFT) of a model on JSONL examples, full or with a LoRA / QLoRA adapter; the loss counts only the replies.")
        {
            baseModel, data, outDir, method, config, tokenizer, trainOnPrompt, packing, skipLong, valFraction, maxSteps, resume, threads,
            rank, alpha, dropout, targets, rslora, quantType, beta, gamma, rpoAlpha, loss, useLora, useQlora, earlyStop, earlyStopThreshold, pull,
        };
        cmd.Add(MergeCommand());
        var evalOptions = new TrainingEvalOptions();
        evalOptions.AddTo(cmd);
        cmd.SetAction(r =>
        {
            if (r.GetValue(threads) is int n) KernelThreads.Count = n;
            string dataPath = r.GetValue(data) ?? throw new InvalidConfigException("give --data FILE.jsonl (the examples to fine-tune on).");
            string run = r.GetValue(outDir) ?? throw new InvalidConfigException("give --out DIR (the run folder).");
            string? requested = r.GetValue(method);
            var pref = Preference(requested, r.GetValue(loss));
            RunConfig cfg = r.GetValue(config) is string c ? RunConfig.Load(c, validate: false) : pref != null ? PreferenceTuner.DefaultConfig() : Finetuner.DefaultConfig();
            // --resume: the checkpoint's base and lora section fill in what the command line and config leave out
            RunConfig? saved = r.GetValue(resume) && Checkpoint.Locate(run) is { } ckpt ? Checkpoint.LoadConfig(ckpt) : null;
            string path = ModelLocator.Resolve(r.GetValue(baseModel) ?? cfg.Base?.Model ?? saved?.Base?.Model
                ?? throw new InvalidConfigException("give --base MODEL (the model to fine-tune)."), r.GetValue(pull));
            string? tok = r.GetValue(tokenizer) ?? (saved?.Base is { } sb && SamePath(sb.Model, path) ? sb.Tokenizer : null);
            var section = cfg.Lora?.Clone() ?? saved?.Lora?.Clone();
            bool Given(Option o) => r.GetResult(o) is { Implicit: false };
            bool loraFlags = new Option[] { rank, alpha, dropout, targets, rslora, quantType }.Any(Given);
            if (pref == null && new Option[] { beta, gamma, rpoAlpha, useLora, useQlora }.Any(Given))
                throw new InvalidConfigException("--beta / --gamma / --rpo-alpha / --lora / --qlora go with a preference method (--method dpo, ipo, orpo or simpo).");
            if (pref != null && (r.GetValue(packing) || cfg.Train.Packing)) throw new InvalidConfigException("--packing / train.packing apply to SFT examples; preference pairs are not packed.");
            if (r.GetValue(packing)) cfg.Train.Packing = true;
            EarlyStopping.Apply(r, earlyStop, earlyStopThreshold, cfg.Train);
            if (pref != null && r.GetValue(trainOnPrompt)) throw new InvalidConfigException("--train-on-prompt does not apply to preference pairs: only the replies are compared.");
            string methodName = pref == null ? requested ?? section?.Method ?? "full"
                : r.GetValue(useQlora) ? "qlora" : r.GetValue(useLora) || loraFlags ? "lora" : section?.Method ?? "full";
            var m = methodName switch
            {
                "full" => FinetuneMethod.Full,
                "lora" => FinetuneMethod.Lora,
                "qlora" => FinetuneMethod.QLora,
                _ => throw new InvalidConfigException($"--method {methodName} is not a fine-tuning method; use full, lora, qlora, dpo, ipo, orpo or simpo."),
            };
            if (m == FinetuneMethod.Full && loraFlags) throw new InvalidConfigException("--lora-* / --rslora / --qlora-type go with --method lora or qlora, not full.");
            if (m != FinetuneMethod.Full)
            {
                section ??= new LoraRunConfig();
                section.Method = methodName;
                if (r.GetValue(rank) is int rk) section.Rank = rk;
                if (r.GetValue(alpha) is double al) section.Alpha = al;
                if (r.GetValue(dropout) is float dr) section.Dropout = dr;
                if (Given(targets)) section.TargetModules = [.. r.GetValue(targets) ?? []];
                if (Given(rslora)) section.UseRslora = r.GetValue(rslora) ?? true;
                if (r.GetValue(quantType) is string qt) section.QuantType = qt;
                section.Validate("the LoRA settings");
            }
            var options = new FinetuneOptions(dataPath, run)
            {
                Method = m, Lora = section?.ToLoraConfig(), QuantType = section?.ParsedQuantType ?? Quantization.GgmlType.Q4_0,
                Base = new BaseModelConfig { Model = Path.GetFullPath(path), Tokenizer = tok == null ? null : Path.GetFullPath(tok) },
                TrainOnPrompt = r.GetValue(trainOnPrompt), Overlong = r.GetValue(skipLong) ? OverlongPolicy.Skip : OverlongPolicy.Truncate,
                ValFraction = r.GetValue(valFraction), MaxSteps = r.GetValue(maxSteps), Resume = r.GetValue(resume),
                StepEvaluation = evalOptions.Build(r), StepEvaluationEvery = evalOptions.EveryOrZero(r),
            };
            cfg.Lora = null; // the finetuner records the section it trains with
            var open = ModelLoader.Load(path, tok);
            try
            {
                var lm = Finetuner.BaseModel(open.Weights, options);
                var tk = open.Tokenizer ?? throw new InvalidConfigException($"{path} has no tokenizer beside it; pass --tokenizer FILE.");
                var template = ChatTemplate.FromMetadata(open.ChatTemplate, open.Spec.Arch);
                var start = new FinetuneBase(lm, tk, template, open.AddBos, open.ExtraStopIds);
                if (m != FinetuneMethod.QLora)
                {
                    open.Dispose(); // the f32 copy is made: unmap the file
                    open = null;
                }
                using var cts = Rendering.StopSignals();
                if (pref != null)
                {
                    double nll = r.GetValue(rpoAlpha) ?? 0;
                    if (pref == PreferenceLoss.Orpo && Given(rpoAlpha)) throw new InvalidConfigException("--rpo-alpha adds an NLL term to DPO, IPO or SimPO; ORPO has its own (weight 1).");
                    var settings = new PreferenceSettings(pref.Value, r.GetValue(beta) ?? 0.1, r.GetValue(gamma) ?? 0.5, nll);
                    if (settings.Loss != PreferenceLoss.SimPo && Given(gamma)) throw new InvalidConfigException("--gamma is SimPO's target margin; use it with --method simpo.");
                    using var tuner = new PreferenceTuner(start, cfg, options, settings);
                    Console.Error.WriteLine($"base: {path} ({lm.Config.Arch}), {requested} ({Describe(settings)}), {methodName}{Storage(lm, m)}");
                    PrintAdapter(lm);
                    Console.Error.WriteLine($"pairs: {tuner.Data.Report.Describe()}");
                    tuner.Trainer.ReferenceProgress = ReferenceProgress(settings);
                    var done = TrainCommand.Resumable(() => TrainCommand.Run(tuner.Trainer, options.OutDir, cts.Token));
                    Console.Error.WriteLine($"reward accuracy plot: {Path.Combine(options.OutDir, "rewards.svg")}");
                    var last = tuner.Trainer.LastValStats.Pairs > 0 ? tuner.Trainer.LastValStats : tuner.Trainer.LastStats;
                    if (last.Pairs > 0)
                    {
                        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"rewards ({(tuner.Trainer.LastValStats.Pairs > 0 ? $"{last.Pairs} held-out pairs" : "last step's pairs")}): accuracy {(double)last.Correct / last.Pairs:F3}, chosen {last.ChosenReward / last.Pairs:F3}, rejected {last.RejectedReward / last.Pairs:F3}, margin {last.Margin / last.Pairs:F3}"));
                    }
                    Console.WriteLine($"checkpoint: {done.CheckpointDir}");
                    if (lm.Lora != null)
                        Console.WriteLine($"adapter: {done.CheckpointDir} (PEFT; run it with --model {path}{(tok != null ? $" --tokenizer {tok}" : "")} --adapter {done.CheckpointDir}, or quill finetune merge)");
                    return;
                }
                using var finetuner = new Finetuner(start, cfg, options);
                var report = finetuner.Data.Report;
                Console.Error.WriteLine($"base: {path} ({lm.Config.Arch}), method {methodName}{Storage(lm, m)}");
                PrintAdapter(lm);
                Console.Error.WriteLine($"data: {report.Describe()}");
                Console.Error.WriteLine(Rows(finetuner));
                if (report.EndOfReplyId < 0) Console.Error.WriteLine("warning: the tokenizer has no EOS token, so replies end without one and the model will not learn to stop.");
                var result = TrainCommand.Resumable(() => TrainCommand.Run(finetuner.Trainer, options.OutDir, cts.Token));
                Console.WriteLine($"checkpoint: {result.CheckpointDir}");
                if (lm.Lora != null)
                    Console.WriteLine($"adapter: {result.CheckpointDir} (PEFT; run it with --model {path}{(tok != null ? $" --tokenizer {tok}" : "")} --adapter {result.CheckpointDir}, or quill finetune merge)");
            }
            finally
            {
                open?.Dispose();
            }
        });
        return cmd;
    }

    /// <summary>The preference loss a --method names (with --loss for dpo), or null for supervised methods.</summary>
    private static PreferenceLoss? Preference(string? method, string? loss)
    {
        PreferenceLoss? p = method switch
        {
            "dpo" => PreferenceLoss.Dpo,
            "ipo" => PreferenceLoss.Ipo,
            "orpo" => PreferenceLoss.Orpo,
            "simpo" => PreferenceLoss.SimPo,
            _ => null,
        };
        if (loss == null) return p;
        if (p != PreferenceLoss.Dpo) throw new InvalidConfigException("--loss goes with --method dpo (sigmoid or ipo).");
        return loss switch
        {
            "sigmoid" => PreferenceLoss.Dpo,
            "ipo" => PreferenceLoss.Ipo,
            _ => throw new InvalidConfigException($"--loss {loss} is not a DPO loss; use sigmoid or ipo."),
        };
    }

    /// <summary>The loss's constants for the start line; reference names what the reference model is.</summary>
    internal static string Describe(PreferenceSettings s, string reference = "the base") => s.Loss switch
    {
        PreferenceLoss.Orpo => FormattableString.Invariant($"lambda {s.Beta}, no reference"),
        PreferenceLoss.SimPo => FormattableString.Invariant($"beta {s.Beta}, gamma {s.Gamma}, no reference{Nll(s)}"),
        _ => FormattableString.Invariant($"beta {s.Beta}, reference: {reference}{(s.Loss == PreferenceLoss.Ipo ? ", length-averaged" : "")}{Nll(s)}"),
    };

    private static string Nll(PreferenceSettings s) => s.NllWeight > 0 ? FormattableString.Invariant($", + {s.NllWeight} x chosen NLL (RPO)") : "";

    /// <summary>Prints the reference pass (a forward over every pair before the first step) at each quarter.</summary>
    internal static IProgress<(int Done, int Total)>? ReferenceProgress(PreferenceSettings settings)
    {
        if (!settings.NeedsReference) return null;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        int shown = 0;
        return new SyncProgress<(int Done, int Total)>(p =>
        {
            if (p.Done * 4 < (shown + 1) * p.Total && p.Done < p.Total) return;
            shown = p.Done * 4 / p.Total;
            Console.Error.WriteLine($"reference log-probs: {p.Done}/{p.Total} pairs ({Rendering.Duration(clock.Elapsed)})");
            if (p.Done == p.Total) clock.Restart();
        });
    }

    /// <summary>The rows one pass over the training examples takes in each layout, and the share of their inputs that is not padding.</summary>
    private static string Rows(Finetuner f)
    {
        var (padded, packed) = f.RowFills;
        bool packing = f.Trainer.Config.Train.Packing;
        string P(RowFill x) => string.Create(CultureInfo.InvariantCulture, $"{x.Rows:N0} rows, {100 * x.Efficiency:F1}% tokens");
        return string.Create(CultureInfo.InvariantCulture,
            $"rows of {padded.SeqLen} (one pass over {f.Data.Train.Count:N0} examples): {(packing ? $"packed {P(packed)} (padded: {P(padded)})" : $"padded {P(padded)} (packed: {P(packed)})")}");
    }

    private static void PrintAdapter(LanguageModel lm)
    {
        if (lm.Lora is not { } adapter) return;
        var a = adapter.Config;
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"adapter: r {a.Rank}, alpha {a.Alpha}, dropout {a.Dropout}{(a.UseRsLora ? ", rsLoRA" : "")}, scaling {adapter.Scaling}, {string.Join(" ", a.TargetModules ?? [])} ({adapter.Modules.Count} modules, {adapter.ElementCount:N0} values)"));
    }

    /// <summary>How the base's matrices are held: f32 copies (full, lora) or their stored / quantized types (qlora).</summary>
    private static string Storage(LanguageModel lm, FinetuneMethod m)
    {
        if (m != FinetuneMethod.QLora) return " (weights widened to f32" + (m == FinetuneMethod.Lora ? ", frozen)" : ")");
        var types = lm.Parameters.Where(p => p.Rank == 2 && p.IsForeign).GroupBy(p => p.DType).Select(g => $"{g.Count()} {g.Key}");
        return string.Create(CultureInfo.InvariantCulture,
            $" (base matrices {string.Join(", ", types)}, not widened; the base owns {lm.Parameters.Where(p => !p.RequiresGrad).Sum(p => p.IsForeign ? 0L : 4L * p.Length) / 1048576.0:F1} MiB of floats)");
    }

    private static bool SamePath(string a, string b) => string.Equals(Path.GetFullPath(a), Path.GetFullPath(b), StringComparison.Ordinal);

    private static Command MergeCommand()
    {
        var baseModel = new Option<string>("--base") { Description = "The model the adapter was trained on (GGUF, HF folder, llama2.c .bin or Quill run)", Required = true };
        var adapter = new Option<string>("--adapter") { Description = "PEFT adapter folder (adapter_config.json, adapter_model.safetensors) or a LoRA run folder", Required = true };
        var outDir = new Option<string>("--out") { Description = "Folder for the merged model (model.safetensors, config.json, tokenizer.json); must not exist or be empty", Required = true };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "The base's tokenizer when none is found with it (llama2.c)" };
        var pull = ModelLocator.PullOption();
        var cmd = new Command("merge", "Fold a LoRA adapter into its base (W += scaling B A) and write a whole Quill model folder that generate, chat and serve open.")
        {
            baseModel, adapter, outDir, tokenizer, pull,
        };
        cmd.SetAction(r =>
        {
            string path = ModelLocator.Resolve(r.GetValue(baseModel)!, r.GetValue(pull)), dir = PeftAdapterFiles.Resolve(r.GetValue(adapter)!), output = r.GetValue(outDir)!;
            using var open = ModelLoader.Load(path, r.GetValue(tokenizer));
            var tok = open.Tokenizer ?? throw new InvalidConfigException($"{path} has no tokenizer beside it; pass --tokenizer FILE so the merged model generates on its own.");
            var merged = LanguageModel.Merged(open.Weights, dir, out var lora);
            Checkpoint.SaveModel(output, merged, tok, new PromptFormat(open.AddBos, open.ChatTemplate, open.ExtraStopIds));
            var a = lora.Config;
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"merged: {dir} (r {a.Rank}, alpha {a.Alpha}, {string.Join(" ", a.TargetModules ?? [])}; {lora.Modules.Count} modules) into {path} ({merged.Config.Arch}, {merged.Parameters.ElementCount / 1e6:F2}M parameters)"));
            Console.WriteLine($"model: {output}");
        });
        return cmd;
    }
}
