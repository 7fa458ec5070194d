// `quill bench gemm`: SGEMM GFLOP/s against OpenBLAS on this machine (JSON lines).
using System.CommandLine;
using Quill.Benchmarks;

namespace Quill.Cli.Commands;

internal static class BenchGemmCommand
{
    public static Command Create()
    {
        var threads = new Option<string?>("--threads") { Description = "Thread counts to measure, e.g. 1,2 (default: 1 and all cores)" };
        var quick = new Option<bool>("--quick") { Description = "A few gpt-mini shapes only" };
        var seconds = new Option<double>("--seconds") { Description = "Seconds per side per shape", DefaultValueFactory = _ => 0.25 };
        var clock = new Option<string?>("--clock") { Description = "cpu: time one-thread runs by thread CPU time" };
        var only = new Option<string?>("--only") { Description = "Only the shapes whose name contains this, e.g. 110M" };
        var cmd = new Command("gemm", "SGEMM GFLOP/s against OpenBLAS on gpt-mini training shapes, squares and decode shapes.") { threads, quick, seconds, clock, only };
        cmd.SetAction(r =>
        {
            var args = new List<string> { "--seconds", r.GetValue(seconds).ToString(System.Globalization.CultureInfo.InvariantCulture) };
            if (r.GetValue(threads) is string t) args.AddRange(["--threads", t]);
            if (r.GetValue(quick)) args.Add("--quick");
            if (r.GetValue(clock) is string c) args.AddRange(["--clock", c]);
            if (r.GetValue(only) is string o) args.AddRange(["--only", o]);
            return GemmBenchmark.Run([.. args], Console.Out);
        });
        return cmd;
    }
}
