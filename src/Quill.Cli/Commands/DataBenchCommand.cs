// `quill data bench [--size-mb 200] [--corpora DIR] [--work DIR] [--threads N]`: runs
// Quill.Benchmarks.DataCleanBenchmark and prints its JSON lines.
using System.CommandLine;
using Quill.Benchmarks;

namespace Quill.Cli.Commands;

internal static class DataBenchCommand
{
    public static Command Create()
    {
        var size = new Option<int>("--size-mb") { Description = "Size of the synthesized corpus in MB.", DefaultValueFactory = _ => 200 };
        var corpora = new Option<string?>("--corpora") { Description = "Folder of .txt corpora (default: $QUILL_TESTDATA/corpora or ../shared/data/corpora)." };
        var work = new Option<string?>("--work") { Description = "Scratch folder (default: a temporary folder, removed after)." };
        var threads = new Option<int>("--threads") { Description = "Worker threads (0: all cores).", DefaultValueFactory = _ => 0 };
        var cmd = new Command("bench", "Benchmark clean + dedup throughput (MB/s) and peak memory on a synthesized corpus with planted duplicates.")
        {
            size, corpora, work, threads,
        };
        cmd.SetAction(parse =>
        {
            string corporaDir = parse.GetValue(corpora) ?? DefaultCorpora();
            if (!Directory.Exists(corporaDir)) throw new InvalidFileException($"corpora folder {corporaDir} not found; pass --corpora DIR.");
            string? workDir = parse.GetValue(work);
            bool temporary = workDir == null;
            workDir ??= Path.Combine(Path.GetTempPath(), "quill-data-bench-" + Environment.ProcessId);
            Directory.CreateDirectory(workDir);
            try
            {
                DataCleanBenchmark.Run(corporaDir, (long)parse.GetValue(size) * 1_000_000, workDir, parse.GetValue(threads), Console.Out);
            }
            finally
            {
                if (temporary) Directory.Delete(workDir, recursive: true);
            }
            return 0;
        });
        return cmd;
    }

    private static string DefaultCorpora()
    {
        string? env = Environment.GetEnvironmentVariable("QUILL_TESTDATA");
        return env != null ? Path.Combine(env, "corpora") : Path.Combine("..", "shared", "data", "corpora");
    }
}
