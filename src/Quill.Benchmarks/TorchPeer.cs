// Runs one of the PyTorch peer scripts (../shared/peers/*.py, Debian's python3-torch) the way every benchmark
// should: same thread count as Quill, OMP_WAIT_POLICY=PASSIVE (PyTorch's best setting on two cores), and one
// figure read from the JSON lines it prints. Missing python3, torch or script means no peer, said once in the log.
using System.Diagnostics;
using System.Text.Json;

namespace Quill.Benchmarks;

/// <summary>Finds and runs a PyTorch peer script.</summary>
public static class TorchPeer
{
    private const string Python = "/usr/bin/python3";

    /// <summary>
    /// Runs the script with args and returns the first numeric value of field in its JSON output, or null (and a
    /// line in log) when python3 or the script is missing or the script gives no such value.
    /// </summary>
    public static double? Run(string scriptName, IEnumerable<string> args, string field, TextWriter? log, string? scriptPath = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        string? script = scriptPath ?? FindScript(scriptName);
        if (script == null || !File.Exists(Python))
        {
            log?.WriteLine($"peer: {scriptName} or {Python} not found; reporting Quill alone");
            return null;
        }
        var psi = Start(Python, script, args);
        return Launch(psi, field, log, "peer: no result");
    }

    /// <summary>
    /// PyTorch 2.10 (libtorch through TorchSharp): runs a TorchSharp peer's launcher with args (its first run builds
    /// it), by default ../shared/peers/torchsharp/run.sh (the training step), under the same OMP_WAIT_POLICY=PASSIVE
    /// and returns its tokens_per_s, or null (and a line in log) when the launcher, bash or a result is missing.
    /// </summary>
    public static double? RunTorchSharp(IEnumerable<string> args, TextWriter? log, string? launcherPath = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        string? launcher = launcherPath ?? FindScript(Path.Combine("torchsharp", "run.sh"));
        if (launcher == null || !File.Exists("/bin/bash"))
        {
            log?.WriteLine("peer: torchsharp/run.sh (PyTorch 2.10) not found; no PyTorch 2.10 figure");
            return null;
        }
        var psi = Start("/bin/bash", launcher, args);
        psi.Environment.Remove("OPENBLAS_CORETYPE"); // its own kernels for this CPU, never a pinned weaker set
        return Launch(psi, "tokens_per_s", log, "peer: PyTorch 2.10 gave no result");
    }

    /// <summary>`program script args...` with its output captured and OMP_WAIT_POLICY=PASSIVE.</summary>
    private static ProcessStartInfo Start(string program, string script, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(script);
        foreach (string a in args) psi.ArgumentList.Add(a);
        psi.Environment["OMP_WAIT_POLICY"] = "PASSIVE";
        return psi;
    }

    /// <summary>
    /// Runs the peer and returns the first numeric value of field in the JSON lines it prints, or null with
    /// "failure (first stderr line or exit code)" in log.
    /// </summary>
    private static double? Launch(ProcessStartInfo psi, string field, TextWriter? log, string failure)
    {
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        foreach (string line in stdout.Split('\n'))
        {
            if (!line.StartsWith('{')) continue;
            using var doc = JsonDocument.Parse(line);
            if (doc.RootElement.TryGetProperty(field, out var value) && value.ValueKind == JsonValueKind.Number) return value.GetDouble();
        }
        log?.WriteLine($"{failure} ({stderr.Result.Split('\n').FirstOrDefault(l => l.Length > 0) ?? "exit " + p.ExitCode})");
        return null;
    }

    /// <summary>bench/peers/name (the repository's own peers) above the working folder or the program, or null.</summary>
    public static string? FindRepoScript(string name)
    {
        foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "bench", "peers", name);
                if (File.Exists(candidate)) return candidate;
            }
        }
        return null;
    }

    /// <summary>Looks for a peer script in $QUILL_PEERS, then shared/peers above the working folder or the program.</summary>
    public static string? FindScript(string name)
    {
        string? env = Environment.GetEnvironmentVariable("QUILL_PEERS");
        if (env != null && File.Exists(Path.Combine(env, name))) return Path.Combine(env, name);
        foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "shared", "peers", name);
                if (File.Exists(candidate)) return candidate;
            }
        }
        return null;
    }
}
