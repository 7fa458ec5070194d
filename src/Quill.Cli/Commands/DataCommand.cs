// `quill data`: the parent of the data verbs (clean, fetch). Each verb lives in its own file.
using System.CommandLine;

namespace Quill.Cli.Commands;

internal static class DataCommand
{
    public static Command Create()
    {
        var cmd = new Command("data", "Prepare training text: clean and deduplicate corpora, download well-known datasets.");
        cmd.Add(DataCleanCommand.Create());
        cmd.Add(DataFetchCommand.Create());
        cmd.Add(DataBenchCommand.Create());
        return cmd;
    }

    /// <summary>Cancels the token on Ctrl+C (the library stops at the next batch and keeps its checkpoint).</summary>
    public static CancellationTokenSource CancelOnCtrlC()
    {
        var cts = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cts.Cancel();
        };
        return cts;
    }
}

/// <summary>An IProgress that calls back on the reporting thread (Progress&lt;T&gt; would post to the thread pool).</summary>
internal sealed class InlineProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
