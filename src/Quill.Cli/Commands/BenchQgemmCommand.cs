// `quill bench qgemm`: quantized prefill's integer GEMM against dequantize + SGEMM on this machine (JSON lines).
using System.CommandLine;
using Quill.Benchmarks;

namespace Quill.Cli.Commands;

internal static class BenchQgemmCommand
{
    public static Command Create()
    {
        var threads = new Option<int>("--threads") { Description = "Threads (default: all cores)", DefaultValueFactory = _ => Environment.ProcessorCount };
        var runs = new Option<int>("--runs") { Description = "Timed runs per path and shape (best is printed)", DefaultValueFactory = _ => 9 };
        var cmd = new Command("qgemm", "Integer GEMM of quantized weights (prefill) against dequantize + SGEMM, stories15M/110M shapes.") { threads, runs };
        cmd.SetAction(r => QuantGemmBenchmark.Run(r.GetValue(threads), r.GetValue(runs), Console.Out));
        return cmd;
    }
}
