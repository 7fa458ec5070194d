// `quill finetune`: supervised fine-tuning of any model `quill generate` opens on a JSONL file of examples (Alpaca,
// chat messages, ShareGPT, prompt/completion). Thin: loads the base with ModelLoader, makes it trainable, picks its
// chat template, hands everything to Quill.Training.Finetuner, prints the data report and the training progress
// (TrainCommand's display). Full fine-tuning only; --config gives the train section (its model section is ignored:
// the architecture is the base's).
// Does not handle: LoRA (--method lora is refused until the adapter code arrives), data files other than JSONL.
using System.CommandLine;
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
        var baseModel = new Option<string>("--base") { Description = "The model to fine-tune: GGUF, HF folder, llama2.c .bin or Quill run", Required = true };
        var data = new Option<string>("--data") { Description = "JSONL examples: Alpaca, chat (messages), ShareGPT (conversations) or prompt/completion", Required = true };
        var outDir = new Option<string>("--out") { Description = "Run folder (checkpoint/, metrics.jsonl, loss.svg)", Required = true };
        var method = new Option<string>("--method") { Description = "full (every parameter; LoRA arrives later)", DefaultValueFactory = _ => "full" };
        var config = new Option<string?>("--config") { Description = "Config file (JSON or YAML) whose 'train' section sets batch, seq_len, lr, steps" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "The base's tokenizer when none is found with it (llama2.c)" };
        var trainOnPrompt = new Option<bool>("--train-on-prompt") { Description = "Also train on prompt tokens (default: replies only)" };
        var skipLong = new Option<bool>("--skip-long") { Description = "Leave out examples longer than seq_len + 1 tokens (default: keep their start)" };
        var valFraction = new Option<double>("--val-fraction") { Description = "Share of examples held out for validation (by content hash)", DefaultValueFactory = _ => 0.05 };
        var maxSteps = new Option<int?>("--max-steps") { Description = "Planned number of steps (the LR schedule follows it)" };
        var resume = new Option<bool>("--resume") { Description = "Continue from OUT/checkpoint" };
        var threads = new Option<int?>("--threads") { Description = "Kernel threads (default: all cores)" };
        var cmd = new Command("finetune", "Supervised fine-tuning (SFT) of a model on JSONL examples; the loss counts only the replies.")
        {
            baseModel, data, outDir, method, config, tokenizer, trainOnPrompt, skipLong, valFraction, maxSteps, resume, threads,
        };
        cmd.SetAction(r =>
        {
            if (r.GetValue(threads) is int n) KernelThreads.Count = n;
            string path = r.GetValue(baseModel)!;
            RunConfig run = r.GetValue(config) is string c ? RunConfig.Load(c, validate: false) : Finetuner.DefaultConfig();
            FinetuneBase start;
            using (var model = ModelLoader.Load(path, r.GetValue(tokenizer)))
            {
                var tok = model.Tokenizer ?? throw new InvalidConfigException($"{path} has no tokenizer beside it; pass --tokenizer FILE.");
                var template = ChatTemplate.FromMetadata(model.ChatTemplate, model.Spec.Arch);
                start = new FinetuneBase(LanguageModel.FromWeights(model.Weights), tok, template, model.AddBos, model.ExtraStopIds);
            }
            var options = new FinetuneOptions(r.GetValue(data)!, r.GetValue(outDir)!)
            {
                Method = r.GetValue(method)!, TrainOnPrompt = r.GetValue(trainOnPrompt), Overlong = r.GetValue(skipLong) ? OverlongPolicy.Skip : OverlongPolicy.Truncate,
                ValFraction = r.GetValue(valFraction), MaxSteps = r.GetValue(maxSteps), Resume = r.GetValue(resume),
            };
            using var cts = Rendering.CtrlC();
            using var finetuner = new Finetuner(start, run, options);
            var report = finetuner.Data.Report;
            Console.Error.WriteLine($"base: {path} ({start.Model.Config.Arch}), method full");
            Console.Error.WriteLine($"data: {report.Describe()}");
            if (report.EndOfReplyId < 0) Console.Error.WriteLine("warning: the tokenizer has no EOS token, so replies end without one and the model will not learn to stop.");
            var result = TrainCommand.Run(finetuner.Trainer, options.OutDir, cts.Token);
            Console.WriteLine($"checkpoint: {result.CheckpointDir}");
        });
        return cmd;
    }
}
