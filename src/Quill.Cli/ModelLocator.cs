// What `--model` means in every verb: a path as before, or hf.co/ORG/REPO[:QUANT], which opens the model pulled into
// the Hugging Face cache (the GGUF file, or the snapshot folder). A model not pulled yet is pulled when --pull is
// given or when the user says yes at a terminal; otherwise one line says how to get it.
using System.CommandLine;
using Quill.Hub;
using Spectre.Console;

namespace Quill.Cli;

internal static class ModelLocator
{
    /// <summary>The local path for a --model value (pulling it when allowed).</summary>
    public static string Resolve(string model, bool pull = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (!HubReference.IsHubName(model) || File.Exists(model) || Directory.Exists(model)) return model;
        var reference = HubReference.Parse(model);
        var settings = HubSettings.FromEnvironment();
        if (Cached(settings, reference) is { } path) return path;
        if (!pull && !Console.IsInputRedirected && !Console.IsOutputRedirected)
        {
            Console.Error.Write($"{reference} is not downloaded yet. Pull it now from {settings.Endpoint.Host}? [y/N] ");
            pull = Console.ReadLine()?.Trim().ToLowerInvariant() is "y" or "yes";
        }
        if (!pull) throw new InvalidConfigException($"{reference} is not in the cache ({settings.CacheDir}); run quill pull {reference} first, or add --pull.");
        // another verb's output (generated text, perplexity, a file list) owns standard output: the bars go to stderr
        var stderr = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        return Commands.PullCommand.Pull(reference, "main", null, stderr).ModelPath;
    }

    /// <summary>--pull for verbs that open a model: download an hf.co/ORG/REPO[:QUANT] reference not in the cache yet.</summary>
    public static Option<bool> PullOption() => new("--pull") { Description = "Download an hf.co/ORG/REPO[:QUANT] model that is not in the cache yet" };

    /// <summary>The pulled file or folder for a reference, or null.</summary>
    private static string? Cached(HubSettings settings, HubReference reference)
    {
        var cache = new HubCache(settings.CacheDir);
        if (cache.Snapshot(reference.Repo, "main") is not { } snapshot) return null;
        var ggufs = Directory.EnumerateFiles(snapshot, "*.gguf", SearchOption.AllDirectories)
            .Select(p => new HubFile(Path.GetRelativePath(snapshot, p).Replace('\\', '/'), 0, "x", null)).ToList();
        if (ggufs.Count == 0) return File.Exists(Path.Combine(snapshot, "config.json")) && reference.Quant == null ? snapshot : null;
        try
        {
            return Path.Combine(snapshot, HubClient.Choose(reference.Repo, ggufs, reference.Quant, null)[0].Path);
        }
        catch (QuillException)
        {
            return null; // that quant was not pulled
        }
    }
}
