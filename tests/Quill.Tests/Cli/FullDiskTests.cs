// A real full disk: a small tmpfs holds one checkpoint but not the next (the new one is written beside the old
// one before the swap). The save must fail with one line naming the problem, and the previous checkpoint must
// stay complete and loadable. Needs root (to mount); skipped otherwise.
using System.Diagnostics;
using Quill.Tests.Training;
using Quill.Training;

namespace Quill.Tests.Cli;

[AttributeUsage(AttributeTargets.Method)]
public sealed class RootLinuxFactAttribute : FactAttribute
{
    public RootLinuxFactAttribute()
    {
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root") Skip = "needs root on Linux to mount a small tmpfs";
    }
}

public class FullDiskTests
{
    [RootLinuxFact]
    public void Disk_full_while_saving_keeps_the_previous_checkpoint()
    {
        string dir = TrainerTests.PrepareStories(20_000);
        string cfg = Path.Combine(dir, "tiny.json");
        File.WriteAllText(cfg, """
            { "model": { "arch": "gpt2", "vocab_size": 64, "n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32 },
              "train": { "batch_size": 4, "max_steps": 6, "warmup_steps": 2, "eval_every": 0, "eval_batches": 1, "checkpoint_every": 3 } }
            """);
        string mount = Path.Combine(dir, "small-disk");
        Directory.CreateDirectory(mount);
        Sh("mount", "-t", "tmpfs", "-o", "size=560k", "tmpfs", mount);
        try
        {
            string run = Path.Combine(mount, "run");
            var r = CliProcess.Run("train", "--config", cfg, "--data", Path.Combine(dir, "data"), "--out", run);
            Assert.Equal(1, r.Exit);
            string line = Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("error:", StringComparison.Ordinal));
            Assert.Contains("No space left on device", line);
            Assert.Contains("previous checkpoint is intact", line);
            Assert.DoesNotContain("   at ", r.Err);
            Assert.Equal(3, Checkpoint.LoadState(Path.Combine(run, "checkpoint")).Step);
            var model = Checkpoint.LoadModel(run, out _);
            Assert.True(model.Parameters.Count > 0);
            Assert.False(Directory.Exists(Path.Combine(run, "checkpoint.tmp")));
        }
        finally
        {
            Sh("umount", mount);
        }
    }

    internal static void Sh(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{file} {string.Join(' ', args)}: {err}");
    }
}
