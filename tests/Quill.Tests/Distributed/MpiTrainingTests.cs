// `mpirun -np N quill train` against a single process on a tiny Llama (2 layers, width 32, 8 sequences of 32 tokens
// a step in 2 micro-batches): weights after 20 steps, ZeRO-1, optimizer memory per rank, a rank killed or stopped
// mid-run, and resuming the checkpoint on another number of ranks. The ranks are oversubscribed on CI's two cores.
// Needs Open MPI's mpirun (Debian: openmpi-bin); skipped without it unless QUILL_REQUIRE_MPI=1 (.ci/run sets it).
using System.Diagnostics;
using System.Text.RegularExpressions;
using Quill.Formats.SafeTensors;
using Quill.Tests.Cli;
using Quill.Tests.Training;

namespace Quill.Tests.Distributed;

/// <summary>A fact that needs Open MPI's mpirun.</summary>
public sealed class MpiFactAttribute : FactAttribute
{
    public MpiFactAttribute()
    {
        if (Mpi.Path == null && Environment.GetEnvironmentVariable("QUILL_REQUIRE_MPI") != "1")
            Skip = "needs Open MPI's mpirun (apt-get install openmpi-bin libopenmpi-dev); QUILL_REQUIRE_MPI=1 makes its absence a failure";
    }
}

internal static class Mpi
{
    public static string? Path { get; } = Environment.GetEnvironmentVariable("PATH")?.Split(':')
        .Select(d => System.IO.Path.Combine(d, "mpirun")).FirstOrDefault(File.Exists);

    /// <summary>mpirun -np N (oversubscribed, allowed as root) running the CLI with args.</summary>
    public static ProcessStartInfo StartInfo(int ranks, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var psi = new ProcessStartInfo(Path ?? throw new InvalidOperationException("mpirun not found on PATH (QUILL_REQUIRE_MPI=1 demands it)"))
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (string a in new[] { "-np", ranks.ToString(System.Globalization.CultureInfo.InvariantCulture), "--oversubscribe", "dotnet", CliProcess.Dll }.Concat(args))
            psi.ArgumentList.Add(a);
        psi.Environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
        psi.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
        if (environment != null) foreach (var (k, v) in environment) psi.Environment[k] = v;
        return psi;
    }

    public static (int Exit, string Out, string Err) Run(int ranks, params string[] args) =>
        CliProcess.Run(StartInfo(ranks, null, args), $"mpirun -np {ranks} quill {string.Join(' ', args)}");
}

[Trait("Category", "Mpi")]
public sealed class MpiTrainingTests
{
    private static readonly Lazy<(string Dir, string Config, string Data)> Setup = new(() =>
    {
        string dir = TrainerTests.PrepareStories(30_000);
        string cfg = Path.Combine(dir, "tiny.json");
        File.WriteAllText(cfg, """
            { "model": { "arch": "llama", "vocab_size": 64, "n_layer": 2, "n_head": 4, "n_kv_head": 2, "n_embd": 32, "block_size": 32 },
              "train": { "batch_size": 4, "tokens_per_step": 256, "max_steps": 20, "learning_rate": 0.003, "warmup_steps": 3, "eval_every": 10, "eval_batches": 2, "checkpoint_every": 2 } }
            """);
        return (dir, cfg, Path.Combine(dir, "data"));
    });

    private static string Train(int ranks, string name, params string[] extra)
    {
        var (dir, cfg, data) = Setup.Value;
        string run = Path.Combine(dir, name);
        string[] args = ["train", "--config", cfg, "--data", data, "--out", run, .. extra];
        var r = ranks == 1 ? CliProcess.Run(args) : Mpi.Run(ranks, args);
        Assert.True(r.Exit == 0, r.Err);
        return r.Err;
    }

    /// <summary>Per tensor, |a - b| / |a| (L2 norms); the largest over the file's tensors.</summary>
    private static double WorstRelative(string a, string b, out bool bitwise)
    {
        using var fa = SafeTensorsFile.Open(a);
        using var fb = SafeTensorsFile.Open(b);
        double worst = 0;
        bitwise = true;
        Assert.Equal(fa.Names.Order(StringComparer.Ordinal), fb.Names.Order(StringComparer.Ordinal));
        foreach (string name in fa.Names)
        {
            var x = new float[fa.GetInfo(name).Shape.Aggregate(1L, (n, d) => n * (long)d)];
            var y = new float[x.Length];
            fa.ReadSingle(name, x);
            fb.ReadSingle(name, y);
            double num = 0, den = 0;
            for (int i = 0; i < x.Length; i++)
            {
                num += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
                den += (double)x[i] * x[i];
                if (BitConverter.SingleToInt32Bits(x[i]) != BitConverter.SingleToInt32Bits(y[i])) bitwise = false;
            }
            worst = Math.Max(worst, den > 0 ? Math.Sqrt(num / den) : Math.Sqrt(num));
        }
        return worst;
    }

    private static string Model(string name) => Path.Combine(Setup.Value.Dir, name, "checkpoint", "model.safetensors");

    private static string Moments(string name) => Path.Combine(Setup.Value.Dir, name, "checkpoint", "optimizer.safetensors");

    private static long MomentBytes(string log) =>
        long.Parse(Regex.Match(log, @"AdamW moments [\d.]+ MiB per rank \(([\d,]+) bytes\)").Groups[1].Value.Replace(",", "", StringComparison.Ordinal), System.Globalization.CultureInfo.InvariantCulture);

    [MpiFact]
    public void Two_and_four_ranks_after_20_steps_equal_one_rank_and_zero_1_shards_the_moments()
    {
        Train(1, "one");
        string two = Train(2, "two");
        Train(4, "four");
        string twoZero = Train(2, "two-zero", "--zero", "1");
        string fourZero = Train(4, "four-zero", "--zero", "1");
        Assert.Contains("2 ranks x 1 thread", two, StringComparison.Ordinal);

        // Not bitwise: a rank sums the gradient of its rows, the ranks' sums are added by MPI, where one process
        // accumulates row by row, so the float additions happen in another order.
        foreach (string run in new[] { "two", "four", "two-zero", "four-zero" })
        {
            double rel = WorstRelative(Model("one"), Model(run), out _);
            Assert.True(rel < 1e-6, $"{run}: weights differ from one rank's by {rel:G3} (relative)");
        }
        // ZeRO-1 makes the same update element for element, from the same summed gradients: bitwise at equal N.
        Assert.Equal(0, WorstRelative(Model("two"), Model("two-zero"), out bool same2));
        Assert.True(same2);
        Assert.Equal(0, WorstRelative(Model("four"), Model("four-zero"), out bool same4));
        Assert.True(same4);
        // The checkpoint holds every moment (gathered to rank 0), as one process writes them.
        Assert.True(WorstRelative(Moments("one"), Moments("four-zero"), out _) < 1e-5);

        // Memory: the moments each rank holds, 1/N of one process's (the shard is ceil(P / N) values).
        long full = MomentBytes(two), half = MomentBytes(twoZero), quarter = MomentBytes(fourZero);
        Assert.InRange(half, full / 2, full / 2 + 8);
        Assert.InRange(quarter, full / 4, full / 4 + 8 * 3);
    }

    [MpiFact]
    public void A_killed_rank_ends_the_job_within_30_s_naming_it_and_the_checkpoint_resumes_on_1_2_and_4_ranks()
    {
        var (dir, cfg, data) = Setup.Value;
        string run = Path.Combine(dir, "killed");
        var psi = Mpi.StartInfo(2, null, "train", "--config", cfg, "--data", data, "--out", run, "--max-steps", "100000");
        string err;
        TimeSpan ended;
        int exit;
        using (var p = Process.Start(psi)!)
        {
            var stderr = p.StandardError.ReadToEndAsync();
            var stdout = p.StandardOutput.ReadToEndAsync();
            var sw = Stopwatch.StartNew();
            while (!File.Exists(Path.Combine(run, "checkpoint", "state.json")) && !p.HasExited && sw.Elapsed < TimeSpan.FromMinutes(2)) Thread.Sleep(20);
            Thread.Sleep(300);
            if (p.HasExited) Assert.Fail(stderr.Result); // (not Assert.False(.., stderr.Result): that waits for the end)
            int rank1 = RankProcess(p.Id, 1);
            Process.GetProcessById(rank1).Kill(); // SIGKILL
            var killed = Stopwatch.StartNew();
            if (!p.WaitForExit(60_000)) p.Kill(entireProcessTree: true);
            ended = killed.Elapsed;
            exit = p.ExitCode;
            err = stderr.Result + stdout.Result;
        }
        Assert.True(ended < TimeSpan.FromSeconds(30), $"the job took {ended.TotalSeconds:F1} s to end");
        Assert.NotEqual(0, exit);
        // mpirun's line names the dead rank; rank 0's own "stopped by mpirun" line shows only when mpirun still
        // forwards its output when it terminates it, which depends on timing, so it is not asserted.
        Assert.Matches(@"process rank 1 .* exited on signal 9", err);

        // The last checkpoint is whole: it resumes on 1, 2 and (ZeRO-1) 4 ranks to the same weights.
        int step = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "checkpoint", "state.json"))).RootElement.GetProperty("step").GetInt32();
        string until = (step + 4).ToString(System.Globalization.CultureInfo.InvariantCulture);
        foreach (string copy in new[] { "resumed-1", "resumed-2", "resumed-4" }) CopyDirectory(run, Path.Combine(dir, copy));
        Train(1, "resumed-1", "--resume", "--max-steps", until);
        string log2 = Train(2, "resumed-2", "--resume", "--max-steps", until);
        Train(4, "resumed-4", "--resume", "--max-steps", until, "--zero", "1");
        Assert.DoesNotContain("error", log2, StringComparison.Ordinal);
        Assert.True(WorstRelative(Model("resumed-1"), Model("resumed-2"), out _) < 1e-6);
        Assert.True(WorstRelative(Model("resumed-1"), Model("resumed-4"), out _) < 1e-6);
        Assert.Equal(step + 4, System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "resumed-4", "checkpoint", "state.json"))).RootElement.GetProperty("step").GetInt32());
    }

    [MpiFact]
    public void A_rank_that_stops_answering_ends_the_job_after_QUILL_MPI_TIMEOUT()
    {
        var (dir, cfg, data) = Setup.Value;
        var psi = Mpi.StartInfo(2, new Dictionary<string, string> { ["QUILL_MPI_TIMEOUT"] = "3" },
            "train", "--config", cfg, "--data", data, "--out", Path.Combine(dir, "stopped"), "--max-steps", "100000");
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var sw = Stopwatch.StartNew();
        while (!File.Exists(Path.Combine(dir, "stopped", "checkpoint", "state.json")) && !p.HasExited && sw.Elapsed < TimeSpan.FromMinutes(2)) Thread.Sleep(20);
        if (p.HasExited) Assert.Fail(stderr.Result); // (not Assert.False(.., stderr.Result): that waits for the end)
        int rank1 = RankProcess(p.Id, 1);
        using (var stop = Process.Start("kill", ["-STOP", rank1.ToString(System.Globalization.CultureInfo.InvariantCulture)])) stop.WaitForExit();
        if (!p.WaitForExit(60_000)) p.Kill(entireProcessTree: true);
        Assert.NotEqual(0, p.ExitCode);
        Assert.Contains("error: rank 0 of 2: no answer from the other ranks for 3 s during the", stderr.Result + stdout.Result, StringComparison.Ordinal);
    }

    [MpiFact]
    public void Bad_input_under_mpirun_is_one_line_per_rank()
    {
        var (dir, cfg, data) = Setup.Value;
        var r = Mpi.Run(3, "train", "--config", cfg, "--data", data, "--out", Path.Combine(dir, "uneven"));
        Assert.NotEqual(0, r.Exit);
        Assert.Contains("a step's 8 sequences (2 micro-batch(es) of 4) do not split evenly over 3 ranks", r.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", r.Err, StringComparison.Ordinal);
        r = Mpi.Run(2, "train", "--config", cfg, "--data", data, "--out", Path.Combine(dir, "zero2"), "--zero", "2");
        Assert.NotEqual(0, r.Exit);
        Assert.Contains("--zero takes 0 (no sharding) or 1", r.Err, StringComparison.Ordinal);
    }

    [MpiFact]
    public void Early_stopping_under_mpirun_ends_every_rank_at_the_step_one_process_stops_at()
    {
        var (dir, cfg, data) = Setup.Value;
        // eval every 10 steps, patience 1 and a threshold no fall can pass: the evaluation at step 20 stops a 40-step plan
        string[] args = ["train", "--config", cfg, "--data", data, "--max-steps", "40", "--early-stop", "1", "--early-stop-threshold", "1000"];
        var alone = CliProcess.Run([.. args, "--out", Path.Combine(dir, "es-alone")]);
        Assert.True(alone.Exit == 0, alone.Err);
        var two = Mpi.Run(2, [.. args, "--out", Path.Combine(dir, "es-two")]);
        Assert.True(two.Exit == 0, two.Err);
        foreach (var r in new[] { alone.Err, two.Err })
        {
            Assert.Contains("early stop: the validation loss has not improved for 1 evaluation(s); best", r, StringComparison.Ordinal);
            Assert.Contains("done: 20 steps", r, StringComparison.Ordinal);
        }
        Assert.Equal(20, File.ReadAllLines(Path.Combine(dir, "es-two", "metrics.jsonl")).Length);
        Assert.True(File.Exists(Path.Combine(dir, "es-two", "best", "checkpoint", "model.safetensors")));
    }

    [Fact]
    public void Zero_without_mpirun_is_refused_in_one_line()
    {
        var (dir, cfg, data) = Setup.Value;
        var r = CliProcess.Run("train", "--config", cfg, "--data", data, "--out", Path.Combine(dir, "alone-zero"), "--zero", "1");
        Assert.Equal(1, r.Exit);
        Assert.Equal("error: --zero shards the optimizer over the ranks of an MPI job; start the run with mpirun -np N (N > 1).", r.Err.Trim());
    }

    /// <summary>The child of mpirun (pid) that runs the given rank (from OMPI_COMM_WORLD_RANK in its environment).</summary>
    private static int RankProcess(int mpirun, int rank)
    {
        foreach (string dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
            try
            {
                string stat = File.ReadAllText(Path.Combine(dir, "stat"));
                int parent = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
                if (parent != mpirun) continue;
                if (File.ReadAllText(Path.Combine(dir, "environ")).Split('\0').Contains($"OMPI_COMM_WORLD_RANK={rank}")) return pid;
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
        throw new InvalidOperationException($"no process of rank {rank} under mpirun {mpirun}");
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
        foreach (string d in Directory.GetDirectories(from)) CopyDirectory(d, Path.Combine(to, Path.GetFileName(d)));
    }
}
