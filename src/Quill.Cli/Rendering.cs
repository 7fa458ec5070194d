// How the CLI shows and stops long work: a live Spectre.Console progress bar with ETA on a terminal, and plain
// periodic lines when output is redirected (CI, pipes, log files); progress reports arrive synchronously on the
// working thread. StopSignals turns the first Ctrl+C or SIGTERM into a cancellation the work checks between steps.
using System.Runtime.InteropServices;
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

    /// <summary>
    /// A stop request tied to Ctrl+C and, outside a multi-rank MPI job, to SIGTERM (`kill`, `docker stop`, a service
    /// manager): the first asks work to stop cleanly after its current step; a second Ctrl+C or SIGTERM ends the
    /// process at once. (Under mpirun, SIGTERM means another rank failed: MpiLaunch reports it and the process ends.)
    /// `stopping` is what the first signal prints before its "(press Ctrl+C again to abort)".
    /// </summary>
    public static StopRequest StopSignals(string stopping = "stopping after the current step") => new(stopping);

    public static string Duration(TimeSpan t) => t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:D2}m" : t.TotalMinutes >= 1 ? $"{t.Minutes}m{t.Seconds:D2}s" : $"{t.TotalSeconds:F1}s";
}

/// <summary>The token Ctrl+C and SIGTERM cancel (Rendering.StopSignals); disposing it removes the handlers.</summary>
internal sealed class StopRequest : IDisposable
{
    private readonly CancellationTokenSource cts = new();
    private readonly PosixSignalRegistration? sigterm;
    private readonly string stopping;

    public StopRequest(string stopping)
    {
        this.stopping = stopping;
        Console.CancelKeyPress += OnCancelKey;
        if (Quill.Distributed.MpiLaunch.WorldSize > 1) return;
        try
        {
            sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSigterm);
        }
        catch (PlatformNotSupportedException)
        {
            // no SIGTERM here: Ctrl+C still stops cleanly
        }
    }

    public CancellationToken Token => cts.Token;

    private void OnCancelKey(object? sender, ConsoleCancelEventArgs e)
    {
        if (cts.IsCancellationRequested) return;
        e.Cancel = true;
        Console.Error.WriteLine($"{stopping} (press Ctrl+C again to abort)...");
        cts.Cancel();
    }

    private void OnSigterm(PosixSignalContext context)
    {
        if (cts.IsCancellationRequested) return; // the second one: end now
        context.Cancel = true;
        Console.Error.WriteLine($"terminate signal: {stopping} (send it again to abort)...");
        cts.Cancel();
    }

    public void Dispose()
    {
        Console.CancelKeyPress -= OnCancelKey;
        sigterm?.Dispose();
        cts.Dispose();
    }
}
