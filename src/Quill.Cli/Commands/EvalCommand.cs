// `quill eval TASK`: measure a model. Every task shares --model / --tokenizer / --adapter / --dtype / --threads /
// --limit / --out, shows a progress bar with ETA (plain lines with ETA when output is redirected), prints a table of
// its metrics on stdout and, with --out, writes the JSON report and the per-item JSONL beside it (Evaluation.EvalReport).
// The measurements themselves live in the library (Quill.Evaluation); this file parses, loads and prints.
using System.CommandLine;
using System.Globalization;
using Quill.Evaluation;
using Quill.Inference;
using Spectre.Console;

namespace Quill.Cli.Commands;

internal static class EvalCommand
{
    public static Command Create()
    {
        var eval = new Command("eval", "Evaluate a model: perplexity, KL divergence, benchmarks and your own test sets.");
        eval.Add(PerplexityTask("ppl", "Perplexity of a text file, by llama-perplexity's method (PPL = x +/- y)."));
        eval.Add(PerplexityTask("bpb", "Bits per byte of a text file (the same run as ppl, bits per UTF-8 byte first)."));
        eval.Add(KldTask());
        eval.Add(ChoiceTask("hellaswag", "HellaSwag acc / acc_norm (llama.cpp's 6-line text file or lm-evaluation-harness JSONL).", HellaSwag.Read));
        eval.Add(ChoiceTask("mmlu", "MMLU-style multiple choice from JSONL (question, choices, answer): letters scored by log-likelihood.", Mmlu.Read));
        eval.Add(Gsm8kTask());
        eval.Add(OverlapTask("bleu"));
        eval.Add(OverlapTask("rouge"));
        eval.Add(PromptsTask());
        return eval;
    }

    private static Command PerplexityTask(string name, string description)
    {
        var o = new EvalOptions();
        var w = new WindowOptions();
        var cmd = new Command(name, description);
        o.AddTo(cmd);
        w.AddTo(cmd);
        cmd.SetAction((r, cancel) =>
        {
            string text = EvalOptions.ReadText(r.GetValue(w.Data)!);
            using var model = o.LoadModel(r);
            var options = w.Options(r, o);
            var result = Show(name, p => Perplexity.Run(model, text, options, p, cancel));
            var report = result.ToReport(name, r.GetValue(o.Model)!, w.Settings(r, options));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{name}: {result.Windows.Count} windows of {result.Context} tokens, {result.Count:N0} tokens scored of {result.TextTokens:N0}, {result.TokensPerSecond:N0} tokens/s"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Final estimate: PPL = {result.Ppl:F4} +/- {result.PplError:F5}"));
            Finish(report, r.GetValue(o.Out));
            return Task.CompletedTask;
        });
        return cmd;
    }

    private static Command KldTask()
    {
        var o = new EvalOptions();
        var w = new WindowOptions();
        var baseModel = new Option<string>("--base") { Description = "The reference model (e.g. the F32 or F16 original of a quantization)", Required = true };
        var cmd = new Command("kld", "KL divergence of --model from --base on the same text (llama-perplexity --kl-divergence figures).") { baseModel };
        o.AddTo(cmd);
        w.AddTo(cmd);
        cmd.SetAction((r, cancel) =>
        {
            string text = EvalOptions.ReadText(r.GetValue(w.Data)!);
            using var model = o.LoadModel(r);
            using var reference = GenerateOptions.Load(ModelLocator.Resolve(r.GetValue(baseModel)!, r.GetValue(o.Pull)), r.GetValue(o.Tokenizer), null, null, r.GetValue(o.Threads));
            var options = w.Options(r, o);
            var result = Show("kld", p => KlDivergence.Run(model, reference, text, options, p, cancel));
            var settings = w.Settings(r, options);
            settings["base"] = r.GetValue(baseModel);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"kld: {result.Windows} windows of {options.Context} tokens, {result.Count:N0} tokens scored"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Mean    KLD: {result.MeanKld,10:F6} ± {result.MeanKldError,10:F6}"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"RMS Δp     : {100 * result.RmsDeltaP,6:F3} ± {100 * result.RmsDeltaPError,6:F3} %"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Same top p : {100 * result.SameTop,6:F3} ± {100 * result.SameTopError,6:F3} %"));
            Finish(result.ToReport(r.GetValue(o.Model)!, settings), r.GetValue(o.Out));
            return Task.CompletedTask;
        });
        return cmd;
    }

    private static Command ChoiceTask(string name, string description, Func<string, int, IReadOnlyList<ChoiceItem>> read)
    {
        var o = new EvalOptions();
        var data = new Option<string>("--data") { Description = "Task file", Required = true };
        var cmd = new Command(name, description) { data };
        o.AddTo(cmd);
        cmd.SetAction((r, cancel) =>
        {
            var items = read(r.GetValue(data)!, r.GetValue(o.Limit));
            if (items.Count == 0) throw new InvalidFileException($"{r.GetValue(data)}: no items.");
            using var model = o.LoadModel(r);
            var result = Show(name, p => MultipleChoice.Run(model, name, items, " ", p, cancel));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name}: {items.Count} items, acc {100 * result.Acc:F2}%, acc_norm {100 * result.AccNorm:F2}%"));
            var settings = new Dictionary<string, object?> { ["data"] = r.GetValue(data), ["limit"] = r.GetValue(o.Limit), ["threads"] = Kernels.KernelThreads.Count };
            Finish(result.ToReport(r.GetValue(o.Model)!, settings), r.GetValue(o.Out));
            return Task.CompletedTask;
        });
        return cmd;
    }

    private static Command Gsm8kTask()
    {
        var o = new EvalOptions();
        var data = new Option<string>("--data") { Description = "GSM8K JSONL (question, answer ending in '#### number')", Required = true };
        var shots = new Option<int>("--shots") { Description = "Solved examples before each question", DefaultValueFactory = _ => 5 };
        var fewshot = new Option<string?>("--fewshot") { Description = "JSONL to take the examples from (the train split); default: the first --shots problems of --data, then not evaluated" };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Most tokens generated per answer", DefaultValueFactory = _ => 256 };
        var cmd = new Command("gsm8k", "GSM8K: k-shot, greedy, strict-match and flexible-extract exact match as lm-evaluation-harness defines them.") { data, shots, fewshot, maxTokens };
        o.AddTo(cmd);
        cmd.SetAction((r, cancel) =>
        {
            int k = r.GetValue(shots);
            if (k < 0) throw new InvalidConfigException($"--shots must not be negative (got {k}).");
            var problems = Gsm8k.Read(r.GetValue(data)!);
            string? shotFile = r.GetValue(fewshot);
            IReadOnlyList<MathProblem> examples;
            string source;
            if (shotFile != null)
            {
                examples = [.. Gsm8k.Read(shotFile).Take(k)];
                source = $"first {examples.Count} of {shotFile}";
            }
            else
            {
                examples = [.. problems.Take(k)];
                problems = [.. problems.Skip(k)];
                source = $"first {examples.Count} of --data (not evaluated)";
            }
            if (examples.Count < k) throw new InvalidFileException($"{shotFile ?? r.GetValue(data)}: only {examples.Count} problems for --shots {k}.");
            int limit = r.GetValue(o.Limit);
            if (limit > 0) problems = [.. problems.Take(limit)];
            using var model = o.LoadModel(r);
            var result = Show("gsm8k", p => Gsm8k.Run(model, problems, examples, source, r.GetValue(maxTokens), p, cancel));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"gsm8k: {result.Outcomes.Count} problems, {k}-shot, strict-match {100 * result.StrictMatch:F2}%, flexible-extract {100 * result.FlexibleExtract:F2}%"));
            var settings = new Dictionary<string, object?> { ["data"] = r.GetValue(data), ["limit"] = limit, ["max_tokens"] = r.GetValue(maxTokens), ["threads"] = Kernels.KernelThreads.Count };
            Finish(result.ToReport(r.GetValue(o.Model)!, settings), r.GetValue(o.Out));
            return Task.CompletedTask;
        });
        return cmd;
    }

    private static Command OverlapTask(string name)
    {
        var o = new EvalOptions();
        o.Model.Required = false;
        var predictions = new Option<string?>("--predictions") { Description = "Predictions, one a line (or give --model and --data)" };
        var references = new Option<string[]>("--references") { Description = "References, one a line (repeat for several reference sets)", AllowMultipleArgumentsPerToken = false };
        var data = new Option<string?>("--data") { Description = "JSONL of {\"prompt\", \"reference\"}: the model answers each prompt (greedy, its chat layout)" };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Most tokens per generated answer", DefaultValueFactory = _ => 128 };
        string what = name == "bleu" ? "Corpus BLEU (sacreBLEU defaults: 13a tokenizer, exp smoothing)" : "ROUGE-1 / ROUGE-2 / ROUGE-L F-measure (rouge-score defaults)";
        var cmd = new Command(name, what + " of predictions against references, or of the model's answers to a prompt file.") { predictions, references, data, maxTokens };
        o.AddTo(cmd);
        cmd.SetAction((r, cancel) =>
        {
            string? predPath = r.GetValue(predictions), dataPath = r.GetValue(data), modelPath = r.GetValue(o.Model);
            IReadOnlyList<string> preds;
            IReadOnlyList<IReadOnlyList<string>> refs;
            var settings = new Dictionary<string, object?> { ["limit"] = r.GetValue(o.Limit) };
            var sw = System.Diagnostics.Stopwatch.StartNew();
            if (predPath != null)
            {
                string[] refPaths = r.GetValue(references) ?? [];
                if (refPaths.Length == 0) throw new InvalidConfigException("--predictions needs --references FILE (one reference a line).");
                preds = TextOverlap.ReadLines(predPath);
                refs = [.. refPaths.Select(TextOverlap.ReadLines)];
                int limit = r.GetValue(o.Limit);
                if (limit > 0)
                {
                    preds = [.. preds.Take(limit)];
                    refs = [.. refs.Select(x => (IReadOnlyList<string>)[.. x.Take(limit)])];
                }
                settings["predictions"] = predPath;
                settings["references"] = refPaths;
            }
            else if (dataPath != null && modelPath != null)
            {
                var (prompts, fromFile) = TextOverlap.ReadPromptFile(dataPath, r.GetValue(o.Limit));
                using var model = o.LoadModel(r);
                preds = Show(name, p => TextOverlap.Generate(model, prompts, r.GetValue(maxTokens), p, cancel));
                refs = fromFile;
                settings["data"] = dataPath;
                settings["max_tokens"] = r.GetValue(maxTokens);
            }
            else throw new InvalidConfigException($"{name} needs --predictions FILE --references FILE, or --model MODEL --data PROMPTS.jsonl.");
            var report = name == "bleu"
                ? TextOverlap.BleuReport(preds, refs, modelPath ?? predPath!, settings, sw.Elapsed)
                : TextOverlap.RougeReport(preds, refs, modelPath ?? predPath!, settings, sw.Elapsed);
            Finish(report, r.GetValue(o.Out));
            return Task.CompletedTask;
        });
        return cmd;
    }

    private static Command PromptsTask()
    {
        var o = new EvalOptions();
        var file = new Argument<string>("file") { Description = "JSONL test set: {\"prompt\", \"expected\" | \"regex\" | \"forbidden\", \"tags\"} per line" };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Most tokens per reply", DefaultValueFactory = _ => 256 };
        var cmd = new Command("prompts", "Your own test set: each prompt answered greedily, checked for expected text, a regex or forbidden text; pass rate per tag.") { file, maxTokens };
        o.AddTo(cmd);
        cmd.SetAction((r, cancel) =>
        {
            var cases = PromptTests.Read(r.GetValue(file)!, r.GetValue(o.Limit));
            if (cases.Count == 0) throw new InvalidFileException($"{r.GetValue(file)}: no prompts.");
            using var model = o.LoadModel(r);
            var result = Show("prompts", p => PromptTests.Run(model, cases, r.GetValue(maxTokens), p, cancel));
            foreach (var f in result.Outcomes.Where(x => !x.Passed).Take(5))
                Console.WriteLine($"FAIL line {f.Case.Line}: {string.Join("; ", f.Failures)}");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"prompts: {result.Outcomes.Count(x => x.Passed)}/{result.Outcomes.Count} passed"));
            var settings = new Dictionary<string, object?> { ["file"] = r.GetValue(file), ["limit"] = r.GetValue(o.Limit), ["max_tokens"] = r.GetValue(maxTokens) };
            Finish(result.ToReport(r.GetValue(o.Model)!, settings), r.GetValue(o.Out));
            return Task.CompletedTask;
        });
        return cmd;
    }

    /// <summary>Runs work with a progress bar and ETA on a terminal, periodic lines otherwise.</summary>
    internal static T Show<T>(string label, Func<IProgress<EvalProgress>, T> work)
    {
        if (Rendering.Interactive)
        {
            return AnsiConsole.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask(label, maxValue: 1);
                    return work(new SyncProgress<EvalProgress>(p =>
                    {
                        task.MaxValue = Math.Max(1, p.Total);
                        task.Value = p.Done;
                        task.Description = Markup.Escape($"{label} {p.Done}/{p.Total} {p.Status}");
                    }));
                });
        }
        var last = TimeSpan.Zero;
        return work(new SyncProgress<EvalProgress>(p =>
        {
            if (p.Done != p.Total && p.Done != 1 && p.Elapsed - last < TimeSpan.FromSeconds(5)) return;
            last = p.Elapsed;
            string eta = p.Eta is TimeSpan e ? Rendering.Duration(e) : "?";
            Console.Error.WriteLine($"{label} {p.Done}/{p.Total} | {p.Status} | {Rendering.Duration(p.Elapsed)} | ETA {eta}");
        }));
    }

    /// <summary>Prints the metrics table and writes the report when asked.</summary>
    internal static void Finish(EvalReport report, string? outPath)
    {
        var table = new Table().AddColumn("metric").AddColumn(new TableColumn("value").RightAligned()).AddColumn(new TableColumn("± stderr").RightAligned()).AddColumn("95% interval");
        foreach (var m in report.Metrics)
        {
            string Fmt(double x) => x.ToString(Math.Abs(x) >= 1e5 || (x != 0 && Math.Abs(x) < 1e-3) ? "G6" : "0.######", CultureInfo.InvariantCulture);
            string ci = m.Interval95 is var (lo, hi) ? Markup.Escape($"[{Fmt(lo)}, {Fmt(hi)}]") : "";
            table.AddRow(Markup.Escape(m.Name), Fmt(m.Value), m.StdErr is double e ? Fmt(e) : "", ci);
        }
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });
        console.Write(table);
        if (outPath == null) return;
        report.Write(outPath);
        Console.Error.WriteLine($"report: {outPath}, items: {EvalReport.ItemsPath(outPath)}");
    }
}

/// <summary>The options every eval task has.</summary>
internal sealed class EvalOptions
{
    public Option<string> Model { get; } = new("--model") { Description = "Model: .gguf, llama2.c .bin, HF folder, Quill run/checkpoint folder, or hf.co/ORG/REPO[:QUANT] (see quill pull)", Required = true };
    public Option<bool> Pull { get; } = ModelLocator.PullOption();
    public Option<string?> Tokenizer { get; } = new("--tokenizer") { Description = "Tokenizer file (default: the one in or beside the model)" };
    public Option<string?> Adapter { get; } = new("--adapter") { Description = "PEFT LoRA adapter folder, run beside the model unmerged" };
    public Option<string?> Dtype { get; } = new("--dtype") { Description = "Convert weights on load: f32, f16, bf16, q8_0, q4_0, ..." };
    public Option<int> Threads { get; } = new("--threads") { Description = "Threads (default: all cores)", DefaultValueFactory = _ => 0 };
    public Option<int> Limit { get; } = new("--limit") { Description = "Evaluate at most N items (windows, questions, prompts); 0 = all", DefaultValueFactory = _ => 0 };
    public Option<string?> Out { get; } = new("--out") { Description = "Write the JSON report here and the per-item JSONL beside it (NAME.items.jsonl)" };

    public void AddTo(Command cmd)
    {
        foreach (Option opt in new Option[] { Model, Tokenizer, Adapter, Dtype, Threads, Limit, Out, Pull }) cmd.Add(opt);
    }

    public InferenceModel LoadModel(ParseResult r) =>
        GenerateOptions.Load(ModelLocator.Resolve(r.GetValue(Model)!, r.GetValue(Pull)), r.GetValue(Tokenizer), r.GetValue(Dtype), r.GetValue(Adapter), r.GetValue(Threads));

    /// <summary>A UTF-8 text file, or a one-line error.</summary>
    public static string ReadText(string path)
    {
        if (!File.Exists(path)) throw new InvalidFileException($"{path}: file not found.");
        return File.ReadAllText(path);
    }
}

/// <summary>The text and window options of ppl, bpb and kld.</summary>
internal sealed class WindowOptions
{
    public Option<string> Data { get; } = new("--data") { Description = "UTF-8 text file to score", Required = true };
    public Option<int> Context { get; } = new("--context") { Description = "Tokens per window (llama-perplexity -c)", DefaultValueFactory = _ => 512 };
    public Option<int> Stride { get; } = new("--stride") { Description = "Sliding windows every N tokens, scoring their last N (llama-perplexity --ppl-stride); 0 = non-overlapping windows, second half scored", DefaultValueFactory = _ => 0 };

    public void AddTo(Command cmd)
    {
        cmd.Add(Data);
        cmd.Add(Context);
        cmd.Add(Stride);
    }

    public PerplexityOptions Options(ParseResult r, EvalOptions o) =>
        new() { Context = r.GetValue(Context), Stride = r.GetValue(Stride), MaxWindows = r.GetValue(o.Limit) };

    public Dictionary<string, object?> Settings(ParseResult r, PerplexityOptions options) => new()
    {
        ["data"] = r.GetValue(Data), ["context"] = options.Context, ["stride"] = options.Stride, ["limit"] = options.MaxWindows,
        ["threads"] = Kernels.KernelThreads.Count,
    };
}
