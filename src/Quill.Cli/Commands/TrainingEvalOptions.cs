// `--eval-task ppl|bpb --eval-data FILE [--eval-every N] [--eval-windows N] [--eval-context N]` on `quill train` and
// `quill finetune`: every N steps (and at the last) the model in training is measured as `quill eval ppl` measures a
// model (llama-perplexity's windows, Evaluation.Perplexity) on a held-out text, and eval_ppl, eval_nll and eval_bpb go
// into metrics.jsonl (eval_nll is drawn in loss.svg beside the losses, on the same scale). The model is viewed without
// copying (a LoRA model is merged into a copy first); the text is tokenized once with the run's tokenizer, without BOS
// (as Quill checkpoints run). A text the run's tokenizer cannot read, or too short for two windows, turns the
// measurement off with one warning and training goes on. Only ppl / bpb: the other tasks take minutes and belong on a checkpoint (`quill eval`).
using System.CommandLine;
using Quill.Evaluation;
using Quill.Inference;
using Quill.Models;
using Quill.Tokenization;

namespace Quill.Cli.Commands;

internal sealed class TrainingEvalOptions
{
    public Option<string?> Task { get; } = new("--eval-task") { Description = "Measure the model while it trains: ppl or bpb of --eval-data" };
    public Option<string?> Data { get; } = new("--eval-data") { Description = "Held-out UTF-8 text for --eval-task" };
    public Option<int> Every { get; } = new("--eval-every") { Description = "Steps between measurements (and at the last step)", DefaultValueFactory = _ => 100 };
    public Option<int> Windows { get; } = new("--eval-windows") { Description = "Windows scored per measurement", DefaultValueFactory = _ => 8 };
    public Option<int> Context { get; } = new("--eval-context") { Description = "Tokens per window (0: the model's context, at most 256)", DefaultValueFactory = _ => 0 };

    public void AddTo(Command cmd)
    {
        foreach (Option o in new Option[] { Task, Data, Every, Windows, Context }) cmd.Add(o);
    }

    /// <summary>The measurement to hand the trainer, or null without --eval-task.</summary>
    public Func<LanguageModel, string?, IReadOnlyList<(string Name, double Value)>>? Build(ParseResult r)
    {
        string? task = r.GetValue(Task);
        if (task == null)
        {
            if (r.GetValue(Data) != null) throw new InvalidConfigException("--eval-data goes with --eval-task ppl or bpb.");
            return null;
        }
        if (task is not ("ppl" or "bpb"))
            throw new InvalidConfigException($"--eval-task {task}: training runs ppl or bpb (the other tasks take minutes; run `quill eval {task}` on a checkpoint).");
        string path = r.GetValue(Data) ?? throw new InvalidConfigException("--eval-task needs --eval-data FILE (held-out text).");
        int every = r.GetValue(Every), windows = r.GetValue(Windows), context = r.GetValue(Context);
        if (every < 1) throw new InvalidConfigException($"--eval-every must be at least 1 (got {every}).");
        if (windows < 1) throw new InvalidConfigException($"--eval-windows must be at least 1 (got {windows}).");
        string text = EvalOptions.ReadText(path);
        ITokenizer? tokenizer = null;
        int[]? tokens = null;
        bool off = false;
        return (model, tokenizerPath) =>
        {
            if (off) return [];
            var view = InferenceModel.FromLanguageModel(model.Lora != null ? model.MergeLora() : model);
            try
            {
                tokenizer ??= tokenizerPath != null ? TokenizerLoader.Load(tokenizerPath)
                    : throw new InvalidConfigException("the run has no tokenizer file to read the text with.");
                view.Tokenizer = tokenizer;
                tokens ??= Perplexity.Tokenize(view, text, task);
                Perplexity.Windows(tokens.Length, new PerplexityOptions { Context = context > 0 ? context : Math.Min(256, view.Spec.MaxContext), MaxWindows = windows }, false);
            }
            catch (QuillException ex)
            {
                // the text does not suit the run: say so once and train on, rather than lose the run
                off = true;
                Console.Error.WriteLine($"warning: --eval-task {task} is off for this run: {path}: {ex.Message}");
                return [];
            }
            int n = context > 0 ? context : Math.Min(256, view.Spec.MaxContext);
            var result = Perplexity.Run(view, tokens, new PerplexityOptions { Context = n, MaxWindows = windows });
            return [("ppl", result.Ppl), ("nll", result.MeanNll), ("bpb", result.BitsPerByte)];
        };
    }

    /// <summary>How often to measure (0 without --eval-task).</summary>
    public int EveryOrZero(ParseResult r) => r.GetValue(Task) == null ? 0 : r.GetValue(Every);
}
