// `quill data clean --input PATH... --out DIR [--config FILE]`: parses flags, runs Quill.Data.Cleaning.CleanPipeline
// with a progress bar (documents/s, MB/s, ETA), then prints the report summary. All logic lives in the library.
using System.CommandLine;
using System.Globalization;
using Quill.Data.Cleaning;
using Spectre.Console;

namespace Quill.Cli.Commands;

internal static class DataCleanCommand
{
    public static Command Create()
    {
        var input = new Option<string[]>("--input", "-i") { Description = "Input files or folders (.txt, .jsonl, .jsonl.gz, .html); repeat or list several.", Required = true, AllowMultipleArgumentsPerToken = true };
        var output = new Option<string>("--out", "-o") { Description = "Output folder: clean.jsonl, report.json (and a checkpoint while running).", Required = true };
        var config = new Option<string?>("--config") { Description = "YAML or JSON settings (see the Data section of README.md); defaults apply to anything left out." };
        var threads = new Option<int>("--threads") { Description = "Worker threads (0: all cores).", DefaultValueFactory = _ => 0 };
        var restart = new Option<bool>("--restart") { Description = "Ignore a checkpoint or finished run in --out and start over." };
        var textField = new Option<string?>("--text-field") { Description = "JSONL field holding the text (overrides input.text_field)." };
        var txtSplit = new Option<string?>("--txt-split") { Description = "How .txt files become documents: file, paragraph, line or separator." };

        var cmd = new Command("clean", "Clean, filter and deduplicate text into OUT/clean.jsonl with a report of what was removed and why.")
        {
            input, output, config, threads, restart, textField, txtSplit,
        };
        cmd.SetAction(parse =>
        {
            string? configPath = parse.GetValue(config);
            CleanConfig cfg = configPath == null ? new CleanConfig() : CleanConfig.Load(configPath);
            if (parse.GetValue(textField) is string tf) cfg.Input.TextField = tf;
            if (parse.GetValue(txtSplit) is string ts) cfg.Input.TxtSplit = ts;
            int t = parse.GetValue(threads);
            if (t < 0) throw new InvalidConfigException($"--threads must be 0 (all cores) or more (got {t}).");
            if (t > 0) cfg.Threads = t;
            cfg.Validate(configPath == null ? "flags" : configPath + " with flags");

            var pipeline = new CleanPipeline(cfg) { Restart = parse.GetValue(restart) };
            string outDir = parse.GetValue(output)!;
            string[] inputs = parse.GetValue(input) ?? [];
            using var cts = Rendering.StopSignals("stopping after the current batch (the same command resumes)");
            CleanReport report = null!;
            if (!Rendering.Interactive)
            {
                report = pipeline.Run(inputs, outDir, null, cts.Token); // no live bar when output is redirected
            }
            else AnsiConsole.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask("cleaning", maxValue: 1);
                    var progress = new SyncProgress<CleanProgress>(p =>
                    {
                        task.MaxValue = Math.Max(1, p.TotalBytes);
                        task.Value = Math.Min(p.Bytes, task.MaxValue);
                        string eta = p.Eta is TimeSpan e ? e.ToString(@"h\:mm\:ss", CultureInfo.InvariantCulture) : "?";
                        task.Description = string.Create(CultureInfo.InvariantCulture,
                            $"{p.Documents:N0} docs  {p.DocumentsPerSecond:N0} docs/s  {p.MegabytesPerSecond:F1} MB/s  files {p.FilesDone}/{p.FilesTotal}  ETA {eta}");
                    });
                    report = pipeline.Run(inputs, outDir, progress, cts.Token);
                    task.Value = task.MaxValue;
                });
            Console.WriteLine(report.ToSummary());
            Console.WriteLine($"wrote {Path.Combine(outDir, "clean.jsonl")} and {Path.Combine(outDir, "report.json")}");
            return 0;
        });
        return cmd;
    }
}
