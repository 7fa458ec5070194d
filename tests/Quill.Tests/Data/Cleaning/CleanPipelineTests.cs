using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Quill.Data.Cleaning;

namespace Quill.Tests.Data.Cleaning;

public class CleanPipelineTests
{
    private static string Json(object o) => JsonSerializer.Serialize(o);

    // Changes one word in every ~150 so the word-5-shingle Jaccard stays above 0.9.
    internal static string NearCopy(string text)
    {
        string[] words = text.Split(' ');
        for (int i = 7; i < words.Length; i += 150) words[i] = "zebra";
        return string.Join(' ', words);
    }

    private static void WriteGz(string path, string content)
    {
        using var fs = File.Create(path);
        using var gz = new GZipStream(fs, CompressionLevel.Fastest);
        gz.Write(Encoding.UTF8.GetBytes(content));
    }

    [Fact]
    public void Mixed_inputs_are_cleaned_deduplicated_and_bad_ones_reported()
    {
        using var dir = new TempDir();
        string input = dir["in"];
        Directory.CreateDirectory(input);
        File.WriteAllText(Path.Combine(input, "a.txt"), TextSamples.Good(1));
        File.WriteAllLines(Path.Combine(input, "b.jsonl"),
        [
            Json(new { id = "b1", text = TextSamples.Good(2) }),
            "{not json",
            Json(new { body = "no text field" }),
            Json(new { text = 42 }),
            "",
            Json(new { text = TextSamples.Good(1) }),               // exact duplicate of a.txt
            Json(new { text = "too short to keep." }),             // too_short
        ]);
        WriteGz(Path.Combine(input, "c.jsonl.gz"), Json(new { text = NearCopy(TextSamples.Good(2)) }) + "\n" + Json(new { text = TextSamples.Good(3) }) + "\n");
        File.WriteAllText(Path.Combine(input, "d.html"), "<html><body><nav>Menu</nav><p>" + TextSamples.Good(4).Replace("\n", "</p><p>", StringComparison.Ordinal) + "</p></body></html>");
        File.WriteAllBytes(Path.Combine(input, "e.png"), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52, 0, 0, 1, 0]);
        File.WriteAllBytes(Path.Combine(input, "f.txt"), [0xFF, 0xFE, .. Encoding.Unicode.GetBytes(TextSamples.Good(5))]);
        File.WriteAllBytes(Path.Combine(input, "g.txt"), TextDecoding.Windows1252.GetBytes(TextSamples.Good(6) + " Café."));
        File.WriteAllText(Path.Combine(input, "h.jsonl.gz"), "this is not gzip data");
        File.WriteAllText(Path.Combine(input, ".hidden.txt"), TextSamples.Good(9));

        CleanReport r = new CleanPipeline().Run([input], dir["out"]);

        Assert.Equal(8, r.InputFiles); // a..h; .hidden.txt is ignored
        Assert.Equal(5, r.SkippedInputs.Count);
        Assert.Equal(1, r.SkippedInputs.ByReason["invalid_json"]);
        Assert.Equal(1, r.SkippedInputs.ByReason["missing_text_field"]);
        Assert.Equal(1, r.SkippedInputs.ByReason["text_field_not_string"]);
        Assert.Equal(1, r.SkippedInputs.ByReason["binary_file"]);
        Assert.Equal(1, r.SkippedInputs.ByReason["unreadable"]);
        Assert.Equal(9, r.DocumentsIn);   // a, b1, dup, short, c1, c2, d, f, g
        Assert.Equal(1, r.RemovedBy("exact_duplicate"));
        Assert.Equal(1, r.RemovedBy("near_duplicate"));
        Assert.Equal(1, r.RemovedBy("too_short"));
        Assert.Equal(6, r.DocumentsOut);
        Assert.Equal(1, r.Changes.HtmlStripped);
        Assert.Equal(1, r.Changes.DecodedAsWindows1252);
        Assert.Single(r.Examples["near_duplicate"]);
        Assert.True(r.Examples["near_duplicate"][0].Similarity >= 0.8);

        List<CleanDocument> docs = CleanJsonl.ReadDocuments(dir["out/clean.jsonl"]).ToList();
        Assert.Equal(6, docs.Count);
        Assert.Equal("b1", docs[1].Id);
        Assert.Equal(TextSamples.Good(1), docs[0].Text);
        Assert.Equal(TextSamples.Good(5), docs.Single(d => d.Source.EndsWith("f.txt", StringComparison.Ordinal)).Text);
        Assert.EndsWith("Café.", docs.Single(d => d.Source.EndsWith("g.txt", StringComparison.Ordinal)).Text, StringComparison.Ordinal);
        Assert.DoesNotContain("Menu", docs.Single(d => d.Source.EndsWith("d.html", StringComparison.Ordinal)).Text, StringComparison.Ordinal);
        Assert.Equal(r.BytesOut, docs.Sum(d => (long)Encoding.UTF8.GetByteCount(d.Text)));

        CleanReport onDisk = CleanReport.Load(dir["out/report.json"]);
        Assert.Equal(r.DocumentsOut, onDisk.DocumentsOut);
        Assert.Equal(r.Removed, onDisk.Removed);
        Assert.Contains("\"exact_duplicate\": 1", File.ReadAllText(dir["out/report.json"]), StringComparison.Ordinal);
        Assert.False(File.Exists(dir["out/clean.jsonl.partial"]));
    }

    private static string WriteCorpus(TempDir dir, int files, int docsPerFile)
    {
        string input = dir["corpus"];
        Directory.CreateDirectory(input);
        int seed = 0;
        for (int f = 0; f < files; f++)
        {
            var lines = new List<string>();
            for (int d = 0; d < docsPerFile; d++)
            {
                seed++;
                string text = TextSamples.Good(seed % 97 == 0 ? seed - 50 : seed);   // some exact duplicates
                if (seed % 31 == 0) text = NearCopy(TextSamples.Good(seed - 20)); // some near duplicates
                lines.Add(Json(new { text }));
            }
            File.WriteAllLines(Path.Combine(input, $"part-{f:D2}.jsonl"), lines);
        }
        return input;
    }

    [Fact]
    public void Output_does_not_depend_on_thread_count()
    {
        using var dir = new TempDir();
        string input = WriteCorpus(dir, 3, 200);
        var one = new CleanPipeline(new CleanConfig { Threads = 1 }) { BatchBytes = 8 << 10 }.Run([input], dir["one"]);
        var two = new CleanPipeline(new CleanConfig { Threads = 3 }) { BatchBytes = 8 << 10 }.Run([input], dir["two"]);
        Assert.True(one.RemovedBy("exact_duplicate") > 0 && one.RemovedBy("near_duplicate") > 0);
        Assert.Equal(File.ReadAllBytes(dir["one/clean.jsonl"]), File.ReadAllBytes(dir["two/clean.jsonl"]));
        Assert.Equal(one.Removed, two.Removed);
        Assert.Equal(one.DocumentsOut, two.DocumentsOut);
    }

    [Fact]
    public void An_interrupted_run_resumes_without_redoing_finished_files()
    {
        using var dir = new TempDir();
        string input = WriteCorpus(dir, 6, 60);
        CleanReport whole = new CleanPipeline { BatchBytes = 8 << 10 }.Run([input], dir["whole"]);

        using var cts = new CancellationTokenSource();
        var first = new CleanPipeline { BatchBytes = 8 << 10, CheckpointInterval = TimeSpan.Zero };
        var stop = new SyncProgress(p =>
        {
            if (p.FilesDone >= 3) cts.Cancel();
        });
        Assert.ThrowsAny<OperationCanceledException>(() => first.Run([input], dir["resumed"], stop, cts.Token));
        Assert.True(File.Exists(dir["resumed/state.json"]));
        Assert.False(File.Exists(dir["resumed/clean.jsonl"]));

        long totalBytes = new DirectoryInfo(input).GetFiles().Sum(f => f.Length);
        long resumedTotal = -1;
        CleanReport resumed = new CleanPipeline { BatchBytes = 8 << 10 }.Run([input], dir["resumed"], new SyncProgress(p => resumedTotal = p.TotalBytes));
        Assert.InRange(resumedTotal, 1, totalBytes / 2); // only the files after the checkpoint were read again

        Assert.Equal(File.ReadAllBytes(dir["whole/clean.jsonl"]), File.ReadAllBytes(dir["resumed/clean.jsonl"]));
        Assert.Equal(whole.Removed, resumed.Removed);
        Assert.Equal(whole.DocumentsIn, resumed.DocumentsIn);
        Assert.Equal(whole.BytesOut, resumed.BytesOut);
    }

    [Fact]
    public void A_finished_run_is_not_redone_and_a_changed_config_needs_restart()
    {
        using var dir = new TempDir();
        string input = WriteCorpus(dir, 1, 20);
        CleanReport r1 = new CleanPipeline().Run([input], dir["out"]);
        CleanReport r2 = new CleanPipeline().Run([input], dir["out"]);
        Assert.Equal(r1.Seconds, r2.Seconds); // the stored report, no new work
        var changed = new CleanConfig();
        changed.Dedup.Threshold = 0.9;
        var ex = Assert.Throws<InvalidConfigException>(() => new CleanPipeline(changed).Run([input], dir["out"]));
        Assert.Contains("--restart", ex.Message, StringComparison.Ordinal);
        Assert.Equal(r1.DocumentsOut, new CleanPipeline(changed) { Restart = true }.Run([input], dir["out"]).DocumentsOut);
        Assert.Throws<InvalidFileException>(() => new CleanPipeline().Run([dir["missing"]], dir["out2"]));
    }

    [Theory]
    [InlineData("paragraph", 3)]
    [InlineData("separator", 3)]
    [InlineData("file", 1)]
    public void Text_files_split_into_documents(string mode, int expected)
    {
        using var dir = new TempDir();
        string sep = mode == "separator" ? "<|endoftext|>" : "\n\n";
        File.WriteAllText(dir["t.txt"], string.Join(sep, TextSamples.Good(1), TextSamples.Good(2), TextSamples.Good(3)));
        var cfg = new CleanConfig();
        cfg.Input.TxtSplit = mode;
        cfg.Quality.MaxDuplicateLinesFraction = null;
        CleanReport r = new CleanPipeline(cfg).Run([dir["t.txt"]], dir["out"]);
        Assert.Equal(expected, r.DocumentsIn);
        Assert.Equal(expected, r.DocumentsOut);
    }

    [Fact]
    public void Oversized_documents_are_skipped_with_a_reason()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["big.txt"], string.Concat(Enumerable.Repeat(TextSamples.Good(1) + "\n", 40)));
        var cfg = new CleanConfig();
        cfg.Input.MaxDocumentBytes = 4096;
        CleanReport r = new CleanPipeline(cfg).Run([dir["big.txt"]], dir["out"]);
        Assert.Equal(1, r.SkippedInputs.ByReason["document_too_large"]);
        Assert.Contains("txt_split", r.SkippedInputs.Samples[0].Detail, StringComparison.Ordinal);
    }

    internal sealed class SyncProgress(Action<CleanProgress> action) : IProgress<CleanProgress>
    {
        public void Report(CleanProgress value) => action(value);
    }
}
