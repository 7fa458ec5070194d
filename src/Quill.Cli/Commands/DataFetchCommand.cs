// `quill data fetch NAME|URL --out DIR [--sha256 HEX]` and `quill data fetch --list`: downloads with a progress
// bar through Quill.Data.Fetch.DatasetFetcher (resume, checksum, zip extraction live there).
using System.CommandLine;
using Quill.Data.Fetch;
using Spectre.Console;

namespace Quill.Cli.Commands;

internal static class DataFetchCommand
{
    public static Command Create()
    {
        var what = new Argument<string?>("dataset") { Description = "A catalogue name (see --list) or an http(s) URL.", Arity = ArgumentArity.ZeroOrOne };
        var output = new Option<string>("--out", "-o") { Description = "Destination folder.", DefaultValueFactory = _ => "data" };
        var sha = new Option<string?>("--sha256") { Description = "Expected SHA-256 (hex); the download fails if it differs." };
        var list = new Option<bool>("--list") { Description = "List the catalogue and exit." };
        var cmd = new Command("fetch", "Download a well-known dataset or any URL, resuming partial downloads and checking the SHA-256.")
        {
            what, output, sha, list,
        };
        cmd.SetAction(parse =>
        {
            if (parse.GetValue(list))
            {
                foreach (DatasetEntry e in DatasetCatalog.Entries) Console.WriteLine($"{e.Name,-18} {e.Description}");
                return 0;
            }
            string target = parse.GetValue(what) ?? throw new InvalidConfigException("name a dataset (quill data fetch --list) or pass a URL.");
            using var cts = Rendering.StopSignals("stopping the download (the .part file is kept; the same command resumes)");
            var fetcher = new DatasetFetcher();
            FetchResult result = null!;
            AnsiConsole.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask(target, maxValue: 1);
                    task.IsIndeterminate = true;
                    var progress = new SyncProgress<FetchProgress>(p =>
                    {
                        if (p.TotalBytes is long total)
                        {
                            task.IsIndeterminate = false;
                            task.MaxValue = Math.Max(1, total);
                        }
                        task.Value = Math.Min(p.Bytes, task.MaxValue);
                    });
                    result = fetcher.FetchAsync(target, parse.GetValue(output)!, parse.GetValue(sha), progress, cts.Token).GetAwaiter().GetResult();
                    task.Value = task.MaxValue;
                });
            string how = result.AlreadyPresent ? "already present" : result.Resumed ? "resumed" : "downloaded";
            Console.WriteLine($"{how}: {result.Path} ({result.Bytes:N0} bytes) sha256 {result.Sha256}{(result.Verified ? " (verified)" : " (no checksum on record)")}");
            if (result.ExtractedTo != null) Console.WriteLine($"extracted to {result.ExtractedTo}");
            return 0;
        });
        return cmd;
    }
}
