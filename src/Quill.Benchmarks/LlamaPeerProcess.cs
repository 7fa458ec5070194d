// Runs bench/Quill.LlamaPeer (llama.cpp through LLamaSharp) as a child process through `dotnet`, for the benchmarks
// that compare against it: finds the built peer, passes the arguments, and returns the one JSON line it prints.
// A peer that exits non-zero or prints no JSON is a QuillException carrying its first line of stderr.
using System.Diagnostics;
using System.Text.Json;

namespace Quill.Benchmarks;

internal static class LlamaPeerProcess
{
    /// <summary>Where `dotnet build bench/Quill.LlamaPeer -c Release` puts the peer, relative to the repository.</summary>
    public const string RelativeDll = "bench/Quill.LlamaPeer/bin/Release/net10.0/Quill.LlamaPeer.dll";

    /// <summary>The built peer above the working folder or the program, or null.</summary>
    public static string? Find()
    {
        foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, RelativeDll);
                if (File.Exists(candidate)) return candidate;
            }
        }
        return null;
    }

    /// <summary>Runs the peer at dll with args; passiveWait sets OMP_WAIT_POLICY=PASSIVE for its OpenMP threads.</summary>
    public static JsonElement Run(string dll, IEnumerable<string> args, bool passiveWait = false)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (string a in args) psi.ArgumentList.Add(a);
        if (passiveWait) psi.Environment["OMP_WAIT_POLICY"] = "PASSIVE";
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string? line = p.StandardOutput.ReadToEnd().Split('\n').LastOrDefault(l => l.StartsWith('{'));
        p.WaitForExit();
        if (p.ExitCode != 0 || line == null)
        {
            string why = err.Result.Split('\n').FirstOrDefault(l => l.Length > 0) ?? "exit " + p.ExitCode;
            throw new QuillException($"Quill.LlamaPeer {string.Join(' ', psi.ArgumentList.Skip(1))} gave no result: {why}");
        }
        return JsonDocument.Parse(line).RootElement.Clone();
    }
}
