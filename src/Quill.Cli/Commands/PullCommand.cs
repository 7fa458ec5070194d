// `quill pull hf.co/ORG/REPO[:QUANT] [--file NAME] [--revision REV]`, `quill list` and `quill rm ORG/REPO`: models
// from the Hugging Face hub in its own cache (Quill.Hub), with a progress bar; `--model hf.co/...` in the other verbs
// opens what was pulled (ModelLocator).
using System.CommandLine;
using Quill.Hub;
using Spectre.Console;

namespace Quill.Cli.Commands;

internal static class PullCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("model") { Description = "hf.co/ORG/REPO[:QUANT], e.g. hf.co/bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M" };
        var file = new Option<string?>("--file") { Description = "Fetch this file of the repo instead of choosing one" };
        var revision = new Option<string>("--revision") { Description = "Branch, tag or commit", DefaultValueFactory = _ => "main" };
        var cmd = new Command("pull", "Download a model from the Hugging Face hub into its cache (GGUF: Q4_K_M by default; else the safetensors folder).") { model, file, revision };
        cmd.SetAction(r =>
        {
            var reference = HubReference.Parse(r.GetValue(model)!);
            var result = Pull(reference, r.GetValue(revision)!, r.GetValue(file));
            Console.WriteLine($"{(result.Downloaded == 0 ? "already in the cache" : $"downloaded {Size(result.Downloaded)}")}: {reference} ({string.Join(", ", result.Files.Select(f => f.Path))}) at commit {result.Commit[..Math.Min(12, result.Commit.Length)]}");
            Console.WriteLine($"model: {result.ModelPath}");
            Console.WriteLine($"try: ./quill chat --model {reference}");
            return 0;
        });
        return cmd;
    }

    /// <summary>Pulls with a progress bar per file, on <paramref name="console"/> (default: standard output).</summary>
    public static HubPullResult Pull(HubReference reference, string revision, string? file, IAnsiConsole? console = null)
    {
        using var cts = Rendering.StopSignals("stopping the download (the same command resumes)");
        var client = new HubClient(HubSettings.FromEnvironment());
        HubPullResult result = null!;
        (console ?? AnsiConsole.Console).Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var tasks = new Dictionary<string, ProgressTask>(StringComparer.Ordinal);
                var progress = new SyncProgress<HubProgress>(p =>
                {
                    if (!tasks.TryGetValue(p.File, out var task)) tasks[p.File] = task = ctx.AddTask(p.File, maxValue: Math.Max(1, p.Total));
                    task.Value = Math.Min(p.Bytes, task.MaxValue);
                });
                result = client.PullAsync(reference, revision, file, progress, cts.Token).GetAwaiter().GetResult();
            });
        return result;
    }

    public static Command CreateList()
    {
        var cmd = new Command("list", "List the models in the Hugging Face cache (shared with Hugging Face's own tools).");
        cmd.SetAction(_ =>
        {
            var cache = new HubCache(HubSettings.FromEnvironment().CacheDir);
            var repos = cache.List();
            if (repos.Count == 0)
            {
                Console.WriteLine($"no models in {cache.Root}; get one with quill pull hf.co/ORG/REPO");
                return 0;
            }
            Console.WriteLine($"{"MODEL",-52} {"SIZE",10}  FILES");
            foreach (var repo in repos)
                Console.WriteLine($"{"hf.co/" + repo.Repo,-52} {Size(repo.Bytes),10}  {string.Join(", ", repo.Files.Take(4))}{(repo.Files.Count > 4 ? $", ... ({repo.Files.Count})" : "")}");
            return 0;
        });
        return cmd;
    }

    public static Command CreateRemove()
    {
        var model = new Argument<string>("model") { Description = "hf.co/ORG/REPO (or ORG/REPO)" };
        var cmd = new Command("rm", "Delete a model from the Hugging Face cache.") { model };
        cmd.SetAction(r =>
        {
            var reference = HubReference.Parse(r.GetValue(model)!);
            var cache = new HubCache(HubSettings.FromEnvironment().CacheDir);
            if (!cache.Remove(reference.Repo)) throw new InvalidConfigException($"hf.co/{reference.Repo} is not in the cache ({cache.Root}); see quill list.");
            Console.WriteLine($"deleted hf.co/{reference.Repo}");
            return 0;
        });
        return cmd;
    }

    internal static string Size(long bytes) =>
        bytes >= 1L << 30 ? $"{bytes / (double)(1L << 30):0.0} GB" : bytes >= 1L << 20 ? $"{bytes / (double)(1L << 20):0.0} MB" : $"{bytes / 1024.0:0.0} KB";
}
