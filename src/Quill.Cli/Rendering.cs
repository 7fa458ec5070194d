// How the CLI shows long work: a live Spectre.Console progress bar with ETA on a terminal, and plain periodic
// lines when output is redirected (CI, pipes, log files). Progress reports arrive synchronously on the working
// thread.
using Spectre.Console;

namespace Quill.Cli;

/// <summary>An IProgress that calls its handler on the reporting thread (no synchronization context).</summary>
internal sealed class SyncProgress<T>(Action<T> handler) : IProgress<T>
{
    public void Report(T value) => handler(value);
}

/// <summary>Console helpers shared by the verbs.</summary>
internal static class Rendering
{
    public static bool Interactive => !Console.IsErrorRedirected && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    /// <summary>A cancellation source tied to Ctrl+C (the first press asks work to stop cleanly).</summary>
    public static CancellationTokenSource CtrlC()
    {
        var cts = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            if (cts.IsCancellationRequested) return;
            e.Cancel = true;
            Console.Error.WriteLine("stopping after the current step (press Ctrl+C again to abort)...");
            cts.Cancel();
        };
        return cts;
    }

    public static string Duration(TimeSpan t) => t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:D2}m" : t.TotalMinutes >= 1 ? $"{t.Minutes}m{t.Seconds:D2}s" : $"{t.TotalSeconds:F1}s";
}
