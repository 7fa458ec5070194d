// Benchmark of `quill data clean`: synthesizes a JSONL corpus of the requested size from the .txt files of a
// corpora folder (documents of random paragraphs, so they are distinct), plants exact and near duplicates
// (one document in 20 each, copied from a recent document that passes the quality filters), then times the full default pipeline (decode, repair,
// NFC, whitespace, Gopher/C4 filters, exact + MinHash/LSH dedup, write) and reports MB/s, the process's peak
// resident memory, and how many planted duplicates were found. Prints one JSON line per figure. No peer: there is
// no comparable cleaner on this machine, so the figures carry no ratio.
// Does not handle: measuring generation (excluded from the timing).
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Quill.Data.Cleaning;

namespace Quill.Benchmarks;

/// <summary>Throughput and memory of the cleaning pipeline on a synthesized corpus.</summary>
public static class DataCleanBenchmark
{
    /// <summary>Runs the benchmark; returns the JSON lines it printed to <paramref name="output"/>.</summary>
    /// <param name="corporaDir">Folder of .txt corpora to draw paragraphs from.</param>
    /// <param name="targetBytes">Size of the synthesized corpus.</param>
    /// <param name="workDir">Scratch folder (input and output are written there).</param>
    /// <param name="threads">Worker threads (0: all cores).</param>
    /// <param name="output">Where the JSON lines go.</param>
    public static IReadOnlyList<string> Run(string corporaDir, long targetBytes, string workDir, int threads, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(output);
        string inputDir = Path.Combine(workDir, "input");
        string outDir = Path.Combine(workDir, "out");
        if (Directory.Exists(inputDir)) Directory.Delete(inputDir, recursive: true);
        if (Directory.Exists(outDir)) Directory.Delete(outDir, recursive: true);
        Directory.CreateDirectory(inputDir);
        (long bytes, long docs, int plantedExact, int plantedNear) = Synthesize(corporaDir, targetBytes, inputDir);

        GC.Collect();
        var cfg = new CleanConfig { Threads = threads };
        using var self = Process.GetCurrentProcess();
        TimeSpan cpu0 = self.TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        CleanReport report = new CleanPipeline(cfg).Run([inputDir], outDir);
        double seconds = clock.Elapsed.TotalSeconds;
        self.Refresh();
        double cpuSeconds = (self.TotalProcessorTime - cpu0).TotalSeconds;
        double peakMb = self.PeakWorkingSet64 / 1e6;

        int usedThreads = threads > 0 ? threads : Kernels.KernelThreads.Count;
        var lines = new List<string>
        {
            Line(new Dictionary<string, object>
            {
                ["bench"] = "data-clean", ["input_mb"] = Math.Round(bytes / 1e6, 1), ["documents"] = docs, ["threads"] = usedThreads,
                ["seconds"] = Math.Round(seconds, 2), ["cpu_seconds"] = Math.Round(cpuSeconds, 2),
                ["quill"] = Math.Round(bytes / 1e6 / seconds, 2), ["unit"] = "MB/s",
            }),
            Line(new Dictionary<string, object>
            {
                ["bench"] = "data-clean-per-cpu-second", ["input_mb"] = Math.Round(bytes / 1e6, 1),
                ["quill"] = Math.Round(bytes / 1e6 / cpuSeconds, 2), ["unit"] = "MB per CPU-second",
            }),
            Line(new Dictionary<string, object>
            {
                ["bench"] = "data-clean-peak-memory", ["input_mb"] = Math.Round(bytes / 1e6, 1), ["quill"] = Math.Round(peakMb, 1), ["unit"] = "MB",
            }),
            Line(new Dictionary<string, object>
            {
                ["bench"] = "data-clean-dedup", ["planted_exact"] = plantedExact, ["found_exact"] = report.RemovedBy("exact_duplicate"),
                ["planted_near"] = plantedNear, ["found_near"] = report.RemovedBy("near_duplicate"),
                ["quill"] = Math.Round((double)(report.RemovedBy("exact_duplicate") + report.RemovedBy("near_duplicate")) / Math.Max(1, plantedExact + plantedNear), 4),
                ["unit"] = "found/planted",
            }),
        };
        foreach (string l in lines) output.WriteLine(l);
        return lines;
    }

    private static string Line(Dictionary<string, object> fields) => JsonSerializer.Serialize(fields);

    // Writes 4 JSONL files of documents built from random paragraphs; returns bytes, documents and planted counts.
    private static (long Bytes, long Docs, int Exact, int Near) Synthesize(string corporaDir, long targetBytes, string inputDir)
    {
        var paragraphs = new List<string>();
        foreach (string file in Directory.EnumerateFiles(corporaDir, "*.txt").Order(StringComparer.Ordinal))
        {
            foreach (string p in File.ReadAllText(file).ReplaceLineEndings("\n").Split("\n\n"))
            {
                if (p.Trim().Length > 40) paragraphs.Add(p.Trim());
            }
        }
        if (paragraphs.Count < 100) throw new InvalidFileException($"{corporaDir} holds too little text to synthesize a corpus; point --corpora at shared/data/corpora.");

        var rng = new Random(20261121);
        var cleaner = new DocumentCleaner(new CleanConfig());
        var recent = new string[64];
        long bytes = 0, docs = 0;
        int exact = 0, near = 0;
        const int files = 4;
        for (int f = 0; f < files; f++)
        {
            using var w = new StreamWriter(Path.Combine(inputDir, $"part-{f}.jsonl"));
            long fileTarget = targetBytes * (f + 1) / files;
            while (bytes < fileTarget)
            {
                string text;
                if (docs > 64 && docs % 20 == 0)
                {
                    text = PickKept(recent, rng, cleaner);
                    exact++;
                }
                else if (docs > 64 && docs % 20 == 10)
                {
                    text = NearCopy(PickKept(recent, rng, cleaner), rng);
                    near++;
                }
                else
                {
                    var parts = new List<string>();
                    int chars = 0;
                    while (chars < 4000)
                    {
                        string p = paragraphs[rng.Next(paragraphs.Count)];
                        parts.Add(p);
                        chars += p.Length + 2;
                    }
                    text = string.Join("\n\n", parts);
                    recent[docs % recent.Length] = text;
                }
                string line = JsonSerializer.Serialize(new Dictionary<string, string> { ["text"] = text });
                w.Write(line);
                w.Write('\n');
                bytes += System.Text.Encoding.UTF8.GetByteCount(line) + 1;
                docs++;
            }
        }
        return (bytes, docs, exact, near);
    }

    // A recent document that passes the quality filters, so that its copies count as duplicates, not as filtered.
    private static string PickKept(string[] recent, Random rng, DocumentCleaner cleaner)
    {
        string text = recent[rng.Next(recent.Length)];
        for (int tries = 0; tries < 100 && !cleaner.Clean(text).Kept; tries++) text = recent[rng.Next(recent.Length)];
        return text;
    }

    // One word in 150 replaced: word 5-shingle Jaccard about 0.93.
    private static string NearCopy(string text, Random rng)
    {
        string[] words = text.Split(' ');
        for (int i = rng.Next(150); i < words.Length; i += 150) words[i] = "zebra" + rng.Next(1000).ToString(CultureInfo.InvariantCulture);
        return string.Join(' ', words);
    }
}
