// AtomicFile's rename is followed by a flush of the folder (issue 19, item 8: renames were not followed by a
// directory fsync, so after a power loss the new name could be missing). The order is read from the system calls
// of a real `quill tokenizer train` run under strace (skipped where strace is not installed, unless CI requires it): the temporary file is
// fsynced, renamed over the target, then the folder is opened and fsynced. Also: SyncDirectory on an ordinary or
// missing folder returns quietly.
using System.Text.RegularExpressions;
using Quill.Tests.Cli;

namespace Quill.Tests;

public sealed partial class AtomicFileTests
{
    /// <summary>A fact that needs /usr/bin/strace: skipped without it, unless CI demands it (QUILL_REQUIRE_TESTDATA=1).</summary>
    public sealed class StraceFactAttribute : FactAttribute
    {
        public const string Strace = "/usr/bin/strace";

        public StraceFactAttribute()
        {
            if (!File.Exists(Strace) && !Support.TestData.Required) Skip = $"needs {Strace} (apt-get install strace)";
        }
    }

    [StraceFact]
    public void The_folder_is_fsynced_after_the_rename()
    {
        string dir = Directory.CreateTempSubdirectory("quill-atomic-").FullName;
        try
        {
            string text = Path.Combine(dir, "text.txt");
            File.WriteAllText(text, string.Concat(Enumerable.Repeat("the quick brown fox jumps over the lazy dog. ", 200)));
            string outDir = Path.Combine(dir, "out");
            Directory.CreateDirectory(outDir);
            string log = Path.Combine(dir, "strace.log");
            RunUnderStrace(log, "tokenizer", "train", "--input", text, "--vocab-size", "270", "--out", Path.Combine(outDir, "tok.json"), "--threads", "1");
            Assert.True(File.Exists(Path.Combine(outDir, "tok.json")));

            // syscalls without the pid prefix or strace's column padding, in order
            string[] calls = File.ReadAllLines(log).Select(l => Regex.Replace(Regex.Replace(l, @"^\d+\s+", ""), @"\s+", " ")).ToArray();
            int rename = Array.FindIndex(calls, c => c.StartsWith("rename", StringComparison.Ordinal) && c.Contains($"{outDir}/tok.json\"", StringComparison.Ordinal) && c.EndsWith("= 0", StringComparison.Ordinal));
            Assert.True(rename > 0, "no rename onto tok.json in the trace");
            string temp = TempName().Match(calls[rename]).Groups[1].Value;
            int tempOpen = Array.FindIndex(calls, c => c.Contains($"\"{temp}\"", StringComparison.Ordinal) && c.Contains("O_CREAT", StringComparison.Ordinal));
            int tempFd = int.Parse(Fd().Match(calls[tempOpen]).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            Assert.Contains(calls[tempOpen..rename], c => c.StartsWith($"fsync({tempFd})", StringComparison.Ordinal) || c.StartsWith($"fdatasync({tempFd})", StringComparison.Ordinal));
            int dirOpen = Array.FindIndex(calls, rename, c => c.Contains($"\"{outDir}\"", StringComparison.Ordinal) && c.Contains("O_RDONLY", StringComparison.Ordinal));
            Assert.True(dirOpen > rename, "the folder was not opened after the rename");
            int dirFd = int.Parse(Fd().Match(calls[dirOpen]).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            Assert.Contains(calls[dirOpen..], c => c == $"fsync({dirFd}) = 0");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [StraceFact]
    public void A_checkpoint_swap_flushes_the_run_folder_after_the_rename()
    {
        string dir = Quill.Tests.Training.TrainerTests.PrepareStories(20_000);
        try
        {
            string run = Path.Combine(dir, "run"), log = Path.Combine(dir, "strace.log");
            RunUnderStrace(log, "train", "--preset", "tiny", "--data", Path.Combine(dir, "data"), "--out", run, "--max-steps", "1", "--threads", "1");
            string[] calls = File.ReadAllLines(log).Select(l => Regex.Replace(Regex.Replace(l, @"^\d+\s+", ""), @"\s+", " ")).ToArray();
            // checkpoint.tmp -> checkpoint, then the run folder is opened and fsynced
            int swap = Array.FindIndex(calls, c => c.StartsWith("rename", StringComparison.Ordinal) && c.Contains($"{run}/checkpoint.tmp\"", StringComparison.Ordinal)
                && c.Contains($"{run}/checkpoint\"", StringComparison.Ordinal) && c.EndsWith("= 0", StringComparison.Ordinal));
            Assert.True(swap > 0, "no rename of checkpoint.tmp onto checkpoint in the trace");
            // ... before anything else is renamed (later writes into the run folder, e.g. loss.svg, flush it too)
            int next = Array.FindIndex(calls, swap + 1, c => c.StartsWith("rename", StringComparison.Ordinal));
            if (next < 0) next = calls.Length;
            int dirOpen = Array.FindIndex(calls, swap, next - swap, c => c.Contains($"\"{run}\"", StringComparison.Ordinal) && c.Contains("O_RDONLY", StringComparison.Ordinal));
            Assert.True(dirOpen > swap, "the run folder was not opened after the swap");
            int dirFd = int.Parse(Fd().Match(calls[dirOpen]).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            Assert.Contains(calls[dirOpen..next], c => c == $"fsync({dirFd}) = 0");
            // the tokenizer copied into the checkpoint is fsynced before the swap too
            Assert.Contains(calls[..swap], c => c.Contains("checkpoint.tmp/tokenizer.json", StringComparison.Ordinal) && c.StartsWith("rename", StringComparison.Ordinal));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Runs the CLI under strace (file syscalls of every thread into log) and asserts it succeeded.</summary>
    private static void RunUnderStrace(string log, params string[] args)
    {
        var psi = CliProcess.StartInfo(args);
        psi.ArgumentList.Insert(0, psi.FileName);
        foreach (string a in new[] { "-f", "-qq", "-o", log, "-e", "trace=openat,open,fsync,fdatasync,rename,renameat,renameat2,close" }.Reverse())
            psi.ArgumentList.Insert(0, a);
        psi.FileName = StraceFactAttribute.Strace;
        using var p = System.Diagnostics.Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, err);
    }

    [Fact]
    public void Sync_directory_is_quiet_on_ordinary_and_missing_folders()
    {
        string dir = Directory.CreateTempSubdirectory("quill-atomic-").FullName;
        try
        {
            AtomicFile.SyncDirectory(dir);
            AtomicFile.SyncDirectory(Path.Combine(dir, "missing"));
            AtomicFile.WriteAllText(Path.Combine(dir, "a.txt"), "one");
            AtomicFile.WriteAllText(Path.Combine(dir, "a.txt"), "two");
            Assert.Equal("two", File.ReadAllText(Path.Combine(dir, "a.txt")));
            Assert.Single(Directory.GetFiles(dir)); // no temporary file left behind
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [GeneratedRegex("^rename\\w*\\((?:AT_FDCWD, )?\"([^\"]+)\"")]
    private static partial Regex TempName();

    [GeneratedRegex("= (\\d+)$")]
    private static partial Regex Fd();
}
