// `quill bench`: the benchmarks a user can run, each printing one JSON line per figure.
using System.CommandLine;

namespace Quill.Cli.Commands;

internal static class BenchCommand
{
    public static Command Create()
    {
        var bench = new Command("bench", "Measure Quill against a peer on this machine (JSON lines).");
        bench.Add(BenchGemmCommand.Create());
        bench.Add(BenchQgemmCommand.Create());
        bench.Add(BenchTrainCommand.Create());
        bench.Add(BenchLoraCommand.Create());
        bench.Add(BenchServeCommand.Create());
        bench.Add(BenchTokenizeCommand.Create());
        bench.Add(BenchDecodeCommand.Create());
        bench.Add(BenchPplCommand.Create());
        bench.Add(BenchFuzzCommand.Create());
        return bench;
    }
}
