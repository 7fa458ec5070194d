// `quill bench fuzz`: the loader fuzz harness's full run. Seeded mutants of every format Quill reads, each opened as
// the CLI opens it; prints a table of outcomes per format and one line per failure (a crash, a hang or a memory
// blow-up), and exits non-zero when there is any. --out writes every case as JSONL.
using System.CommandLine;
using System.Text.Json;
using Quill.Benchmarks.Fuzz;

namespace Quill.Cli.Commands;

/// <summary>The `fuzz` subcommand of `quill bench`.</summary>
public static class BenchFuzzCommand
{
    public static Command Create()
    {
        var mutants = new Option<int>("--mutants") { Description = "Mutants in all, spread over the formats.", DefaultValueFactory = _ => 10_000 };
        var seed = new Option<int>("--seed") { Description = "Seed of the mutations (the same seed gives the same mutants).", DefaultValueFactory = _ => 1 };
        var data = new Option<string?>("--data") { Description = "Shared reference-data folder with the GGUF, llama2.c and SentencePiece seeds (default: $QUILL_TESTDATA)." };
        var timeout = new Option<double>("--timeout") { Description = "Seconds after which a case counts as hung.", DefaultValueFactory = _ => 20 };
        var only = new Option<string?>("--only") { Description = "Only the targets whose name contains this text." };
        var output = new Option<string?>("--out") { Description = "Write every case as JSONL here." };
        var cmd = new Command("fuzz", "Fuzz every loader with seeded mutants of valid files; count crashes, hangs and one-line errors.") { mutants, seed, data, timeout, only, output };
        cmd.SetAction(r =>
        {
            string work = Directory.CreateTempSubdirectory("quill-fuzz-").FullName;
            try
            {
                string? shared = r.GetValue(data) ?? Environment.GetEnvironmentVariable("QUILL_TESTDATA");
                var targets = FuzzSeeds.Create(Path.Combine(work, "seeds"), shared);
                if (r.GetValue(only) is { } filter) targets = [.. targets.Where(t => t.Name.Contains(filter, StringComparison.Ordinal))];
                if (targets.Count == 0) throw new InvalidConfigException("no fuzz target matches --only.");
                int per = Math.Max(1, r.GetValue(mutants) / targets.Count);
                Console.Error.WriteLine($"fuzzing {targets.Count} targets x {per} mutants (seed {r.GetValue(seed)}){(shared == null ? "; no --data: GGUF, llama2.c and SentencePiece seeds skipped" : "")}");
                var all = new List<FuzzCase>();
                using var log = r.GetValue(output) is { } o ? new StreamWriter(o) : null;
                var cases = Path.Combine(work, "cases");
                foreach (var t in targets)
                {
                    var started = DateTime.UtcNow;
                    var results = LoaderFuzzer.Run(t, per, r.GetValue(seed), cases, TimeSpan.FromSeconds(r.GetValue(timeout)), onCase: c =>
                    {
                        if (c.Failed) Console.WriteLine($"FAIL {c.Target} #{c.Index} ({c.Mutation}): {c.Outcome} {c.Detail}");
                        log?.WriteLine(JsonSerializer.Serialize(c));
                    });
                    all.AddRange(results);
                    Console.Error.WriteLine($"{t.Name}: {results.Count} mutants in {(DateTime.UtcNow - started).TotalSeconds:0.0}s, {results.Count(c => c.Failed)} failed");
                }
                Console.WriteLine(FuzzSeeds.Table(all));
                int failed = all.Count(c => c.Failed);
                Console.WriteLine($"{all.Count} mutants: {all.Count(c => c.Outcome == FuzzOutcome.Loaded)} loaded, {all.Count(c => c.Outcome == FuzzOutcome.Refused)} refused with one line, {failed} failed");
                return failed == 0 ? 0 : 3;
            }
            finally
            {
                try
                {
                    Directory.Delete(work, recursive: true);
                }
                catch (IOException)
                {
                }
            }
        });
        return cmd;
    }
}
