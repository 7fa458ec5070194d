// The CLI as a user meets it: bad input gives one line and a non-zero exit, a run killed with SIGKILL at an
// arbitrary moment resumes to exactly the weights of an uninterrupted run, and sample prints a continuation.
using System.Diagnostics;
using Quill.Tests.Training;

namespace Quill.Tests.Cli;

public class CliTrainingTests
{
    private static string WriteConfig(string dir)
    {
        string path = Path.Combine(dir, "tiny.json");
        File.WriteAllText(path, """
            { "model": { "arch": "llama", "vocab_size": 64, "n_layer": 2, "n_head": 4, "n_kv_head": 2, "n_embd": 32, "block_size": 32 },
              "train": { "batch_size": 4, "max_steps": 20, "learning_rate": 0.003, "warmup_steps": 3, "eval_every": 10, "eval_batches": 2, "checkpoint_every": 2 } }
            """);
        return path;
    }

    [Fact]
    public void Sigkill_at_an_arbitrary_moment_then_resume_equals_an_uninterrupted_run()
    {
        string dir = TrainerTests.PrepareStories(30_000);
        string cfg = WriteConfig(dir), data = Path.Combine(dir, "data");
        var full = CliProcess.Run("train", "--config", cfg, "--data", data, "--out", Path.Combine(dir, "full"), "--max-steps", "20");
        Assert.True(full.Exit == 0, full.Err);

        string run = Path.Combine(dir, "killed");
        var rng = new Random(Environment.TickCount);
        using (var p = Process.Start(CliProcess.StartInfo("train", "--config", cfg, "--data", data, "--out", run, "--max-steps", "20"))!)
        {
            var sw = Stopwatch.StartNew();
            while (!Directory.Exists(Path.Combine(run, "checkpoint")) && !p.HasExited && sw.Elapsed < TimeSpan.FromMinutes(2)) Thread.Sleep(5);
            Thread.Sleep(rng.Next(0, 400));
            if (!p.HasExited) p.Kill(entireProcessTree: true); // SIGKILL
            p.WaitForExit();
        }
        var resumed = CliProcess.Run("train", "--config", cfg, "--data", data, "--out", run, "--max-steps", "20", "--resume");
        Assert.True(resumed.Exit == 0, resumed.Err);
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "full", "checkpoint", "model.safetensors")),
            File.ReadAllBytes(Path.Combine(run, "checkpoint", "model.safetensors")));

        var sample = CliProcess.Run("sample", "--checkpoint", run, "--prompt", "Once", "--max-tokens", "40", "--seed", "3");
        Assert.Equal(0, sample.Exit);
        Assert.True(sample.Out.Trim().Length >= 20, sample.Out);
    }

    [Theory]
    [InlineData("train --preset nope --data x --out y", "unknown preset 'nope'")]
    [InlineData("train --preset shakespeare-char --data /nonexistent --out y", "manifest.json not found")]
    [InlineData("prepare --input /nonexistent.txt --out y", "not found")]
    [InlineData("sample --checkpoint /nonexistent", "no checkpoint in /nonexistent")]
    [InlineData("bench train --preset tiny --no-peer --rounds 0", "--rounds must be at least 1")]
    [InlineData("bench lora --no-peer --rounds 0", "--rounds must each be at least 1")]
    public void Bad_input_is_one_line_and_exit_code_one(string args, string expected)
    {
        var r = CliProcess.Run(args.Split(' '));
        Assert.Equal(1, r.Exit);
        string line = Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: ", line);
        Assert.Contains(expected, line);
        Assert.DoesNotContain("   at ", r.Err);
    }

    [Fact]
    public void Impossible_config_shape_is_refused_with_the_field_named()
    {
        string dir = TrainerTests.PrepareStories(10_000);
        string cfg = Path.Combine(dir, "bad.yaml");
        File.WriteAllText(cfg, "model:\n  arch: gpt2\n  n_embd: 100\n  n_head: 3\n  vocab_size: 64\n");
        var r = CliProcess.Run("train", "--config", cfg, "--data", Path.Combine(dir, "data"), "--out", Path.Combine(dir, "run"));
        Assert.Equal(1, r.Exit);
        Assert.Contains("n_embd 100 is not divisible by n_head 3", r.Err);
    }
}
