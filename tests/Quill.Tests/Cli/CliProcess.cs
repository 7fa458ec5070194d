// Runs the real `quill` CLI (Quill.Cli.dll next to the tests) in a child process and captures its output.
using System.Diagnostics;

namespace Quill.Tests.Cli;

internal static class CliProcess
{
    public static string Dll => Path.Combine(AppContext.BaseDirectory, "Quill.Cli.dll");

    public static ProcessStartInfo StartInfo(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        psi.ArgumentList.Add(Dll);
        foreach (string a in args) psi.ArgumentList.Add(a);
        return psi;
    }

    public static (int Exit, string Out, string Err) Run(params string[] args) => Run(null, args);

    /// <summary>Runs the CLI with extra environment variables (e.g. a GC heap limit).</summary>
    public static (int Exit, string Out, string Err) Run(IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var psi = StartInfo(args);
        if (environment != null) foreach (var (k, v) in environment) psi.Environment[k] = v;
        return Run(psi, "quill " + string.Join(' ', args));
    }

    /// <summary>Runs a prepared process (stdout and stderr redirected) with no input; 5 minutes at most.</summary>
    public static (int Exit, string Out, string Err) Run(ProcessStartInfo psi, string what)
    {
        ArgumentNullException.ThrowIfNull(psi);
        psi.RedirectStandardInput = true;
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(300_000))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException(what + " did not finish in 5 minutes");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
