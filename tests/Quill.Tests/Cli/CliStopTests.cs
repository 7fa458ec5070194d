// Stopping `quill train` from outside, as `kill`, `docker stop` or a service manager does: SIGTERM makes it finish the
// current step, save a checkpoint and exit with 130 and one line saying where the steps are and how to go on;
// --resume then continues from that step. Linux only (the test sends the signal with kill).
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Quill.Tests.Training;
using Quill.Training;

namespace Quill.Tests.Cli;

[AttributeUsage(AttributeTargets.Method)]
public sealed class LinuxFactAttribute : FactAttribute
{
    public LinuxFactAttribute()
    {
        if (!OperatingSystem.IsLinux()) Skip = "sends SIGTERM with kill (Linux)";
    }
}

public sealed partial class CliStopTests
{
    [LinuxFact]
    public void Sigterm_saves_the_completed_steps_and_resume_goes_on_from_them()
    {
        string dir = TrainerTests.PrepareStories(20_000);
        Process? child = null;
        try
        {
            string cfg = Path.Combine(dir, "tiny.json"), data = Path.Combine(dir, "data"), run = Path.Combine(dir, "run");
            File.WriteAllText(cfg, """
                { "model": { "arch": "gpt2", "vocab_size": 64, "n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 32 },
                  "train": { "batch_size": 2, "max_steps": 1000000, "warmup_steps": 1, "eval_every": 0, "eval_batches": 1, "checkpoint_every": 0 } }
                """);
            var psi = CliProcess.StartInfo("train", "--config", cfg, "--data", data, "--out", run, "--threads", "1");
            var p = child = Process.Start(psi)!;
            p.StandardInput.Close();
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            // wait for a few steps in metrics.jsonl (no checkpoint exists before the stop: checkpoint_every 0)
            string metrics = Path.Combine(run, "metrics.jsonl");
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < TimeSpan.FromSeconds(120) && !p.HasExited && Lines(metrics) < 3) Thread.Sleep(50);
            if (p.HasExited) Assert.Fail("quill train ended before it was stopped: " + stderr.Result);
            Assert.False(Directory.Exists(Path.Combine(run, "checkpoint")), "a checkpoint was written before the stop");
            using (var kill = Process.Start("kill", ["-TERM", p.Id.ToString(CultureInfo.InvariantCulture)])) kill.WaitForExit();
            Assert.True(p.WaitForExit(120_000), "quill train did not stop after SIGTERM");
            string err = stderr.Result;
            Assert.Equal(130, p.ExitCode);
            var line = Stopped().Match(err);
            Assert.True(line.Success, err);
            int step = int.Parse(line.Groups[1].Value, CultureInfo.InvariantCulture);
            Assert.Equal($"{run}/checkpoint", line.Groups[2].Value);
            Assert.DoesNotContain("error:", err, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", err, StringComparison.Ordinal);
            Assert.Equal(step, Checkpoint.LoadState(Path.Combine(run, "checkpoint")).Step);
            Assert.True(step >= 3, $"stopped at step {step}");
            _ = stdout.Result;

            var resumed = CliProcess.Run("train", "--config", cfg, "--data", data, "--out", run, "--threads", "1", "--resume", "--max-steps", (step + 2).ToString(CultureInfo.InvariantCulture));
            Assert.True(resumed.Exit == 0, resumed.Err);
            Assert.Equal(step + 2, Checkpoint.LoadState(Path.Combine(run, "checkpoint")).Step);
            Assert.Equal(step + 2, Lines(metrics));
        }
        finally
        {
            child?.Kill(entireProcessTree: true);
            child?.Dispose();
            Directory.Delete(dir, recursive: true);
        }
    }

    private static int Lines(string path)
    {
        try
        {
            using var reader = new StreamReader(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete));
            return reader.ReadToEnd().Count(c => c == '\n');
        }
        catch (IOException)
        {
            return 0;
        }
    }

    [GeneratedRegex(@"^stopped at step (\d+) of 1000000; the completed steps are saved in (\S+); run the same command with --resume to go on$", RegexOptions.Multiline)]
    private static partial Regex Stopped();
}
