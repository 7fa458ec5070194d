// AtomicFile's rename is followed by a flush of the folder (issue 19, item 8: renames were not followed by a
// directory fsync, so after a power loss the new name could be missing). The order is read from the system calls
// of a real `quill tokenizer train` run under strace (skipped where strace is not installed): the temporary file is
// fsynced, renamed over the target, then the folder is opened and fsynced. Also: SyncDirectory on an ordinary or
// missing folder returns quietly.
using System.Text.RegularExpressions;
using Quill.Tests.Cli;

namespace Quill.Tests;

public sealed partial class AtomicFileTests
{
    /// <summary>A fact that needs /usr/bin/strace (skipped without it).</summary>
    public sealed class StraceFactAttribute : FactAttribute
    {
        public const string Strace = "/usr/bin/strace";

        public StraceFactAttribute()
        {
            if (!File.Exists(Strace)) Skip = $"needs {Strace} (apt-get install strace)";
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
            var psi = CliProcess.StartInfo("tokenizer", "train", "--input", text, "--vocab-size", "270", "--out", Path.Combine(outDir, "tok.json"), "--threads", "1");
            psi.ArgumentList.Insert(0, psi.FileName);
            foreach (string a in new[] { "-f", "-qq", "-o", log, "-e", "trace=openat,open,fsync,fdatasync,rename,renameat,renameat2,close" }.Reverse())
                psi.ArgumentList.Insert(0, a);
            psi.FileName = StraceFactAttribute.Strace;
            using (var p = System.Diagnostics.Process.Start(psi)!)
            {
                p.StandardInput.Close();
                string err = p.StandardError.ReadToEnd();
                p.WaitForExit();
                Assert.True(p.ExitCode == 0, err);
            }
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
