// Every test process writes its scratch files under one folder of its own. Tests (and the `quill` processes they
// start, which inherit the environment) call Path.GetTempPath(), which reads TMPDIR on Linux and macOS and TMP on
// Windows each time; pointing those at the process's folder keeps a run from leaving its checkpoints, shards and
// exports behind in the system temp folder (before this, about 80 folders a run). The folder is removed when the
// process exits normally; the test host is often ended without running exit handlers, so each run also removes the
// folders of earlier runs whose process is gone: at most one folder per test assembly is left between runs.
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Runtime.CompilerServices;

namespace Quill.Tests.Shared;

internal static class TestTempRoot
{
    private const string Prefix = "quill-tests-";

    [ModuleInitializer]
    [SuppressMessage("Usage", "CA2255:The 'ModuleInitializer' attribute should not be used in libraries",
        Justification = "A test assembly: the temp folder must be set before the first test asks for it.")]
    internal static void Enter()
    {
        string system = Path.GetTempPath();
        RemoveOrphans(system);
        string root = Path.Combine(system, Prefix + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        Directory.CreateDirectory(root);
        string withSlash = root + Path.DirectorySeparatorChar;
        Environment.SetEnvironmentVariable(OperatingSystem.IsWindows() ? "TMP" : "TMPDIR", withSlash);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => TryDelete(root);
    }

    private static void RemoveOrphans(string system)
    {
        foreach (string dir in Directory.EnumerateDirectories(system, Prefix + "*"))
        {
            if (!int.TryParse(Path.GetFileName(dir).AsSpan(Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) || Alive(pid))
                continue;
            TryDelete(dir);
        }
    }

    private static bool Alive(int pid)
    {
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    private static void TryDelete(string dir)
    {
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
