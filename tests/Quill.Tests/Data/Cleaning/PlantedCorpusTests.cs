using System.Text;
using System.Text.Json;
using Quill.Data.Cleaning;
using Quill.Tests.Support;

namespace Quill.Tests.Data.Cleaning;

// On ../shared/data/corpora plus deliberately duplicated, near-duplicated and corrupted copies of it, the report
// counts exactly what was planted; and when a near copy of X comes before X, X's exact copies still count as exact
// (issue 19, item 7: they were labelled near, because the exact index held only kept documents).
public class PlantedCorpusTests
{
    private static readonly string[] Corpora = ["corpora/tinyshakespeare.txt", "corpora/tinystories_val_prefix.txt", "corpora/war-and-peace.txt"];

    /// <summary>Cuts a text into documents of at least minChars at paragraph boundaries.</summary>
    internal static IEnumerable<string> Chunks(string text, int minChars)
    {
        var sb = new StringBuilder();
        foreach (string para in text.ReplaceLineEndings("\n").Split("\n\n"))
        {
            if (sb.Length > 0) sb.Append("\n\n");
            sb.Append(para);
            if (sb.Length >= minChars)
            {
                yield return sb.ToString();
                sb.Clear();
            }
        }
        if (sb.Length > 0) yield return sb.ToString();
    }

    private static string Line(string id, string text) => JsonSerializer.Serialize(new { id, text });

    [TestDataFact("corpora/tinyshakespeare.txt", "corpora/tinystories_val_prefix.txt", "corpora/war-and-peace.txt")]
    public void Report_counts_exactly_what_was_planted()
    {
        using var dir = new TempDir();
        // 1. Base documents from the corpora (1 MB of each), cleaned once: what survives is the clean base.
        var raw = new List<string>();
        int n = 0;
        foreach (string rel in Corpora)
        {
            string text = File.ReadAllText(TestData.PathOf(rel));
            foreach (string chunk in Chunks(text[..Math.Min(text.Length, 1_000_000)], 2500)) raw.Add(Line($"base-{n++}", chunk));
        }
        Directory.CreateDirectory(dir["raw"]);
        File.WriteAllLines(dir["raw/base.jsonl"], raw);
        CleanReport first = new CleanPipeline().Run([dir["raw"]], dir["first"]);
        List<CleanDocument> kept = CleanJsonl.ReadDocuments(dir["first/clean.jsonl"]).ToList();
        Assert.True(kept.Count > 600, $"only {kept.Count} base documents kept");
        Assert.Equal(first.DocumentsOut, kept.Count);

        // 2. Plant copies after the base file.
        string input = dir["planted"];
        Directory.CreateDirectory(input);
        File.WriteAllLines(Path.Combine(input, "a-base.jsonl"), kept.Select(d => Line(d.Id, d.Text)));
        var planted = new List<string>();
        var corrupt = new List<string>();
        int exact = 0, near = 0, invalidJson = 0, missingText = 0;
        for (int i = 0; i < kept.Count; i++)
        {
            CleanDocument d = kept[i];
            bool longEnough = d.Text.Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries).Length >= 300;
            switch (i % 10)
            {
                case 0:
                    planted.Add(Line($"exact-{i}", d.Text));
                    exact++;
                    break;
                case 1:
                    // Same text after whitespace normalization: CRLF line ends and doubled spaces.
                    planted.Add(Line($"exact-ws-{i}", d.Text.Replace("\n", "  \r\n", StringComparison.Ordinal).Replace(" ", "  ", StringComparison.Ordinal)));
                    exact++;
                    break;
                case 2:
                    // Mojibake: the UTF-8 bytes read as Windows-1252; repaired back to the original text.
                    planted.Add(Line($"exact-mojibake-{i}", TextDecoding.Windows1252.GetString(Encoding.UTF8.GetBytes(d.Text))));
                    exact++;
                    break;
                case 5 when longEnough:
                    planted.Add(Line($"near-{i}", CleanPipelineTests.NearCopy(d.Text)));
                    near++;
                    break;
                case 7:
                    string line = Line($"broken-{i}", d.Text);
                    corrupt.Add(line[..(line.Length / 2)]);
                    invalidJson++;
                    break;
                case 8:
                    corrupt.Add(JsonSerializer.Serialize(new { id = $"notext-{i}", body = d.Text }));
                    missingText++;
                    break;
            }
        }
        File.WriteAllLines(Path.Combine(input, "b-planted.jsonl"), planted);
        File.WriteAllLines(Path.Combine(input, "c-corrupt.jsonl"), corrupt);
        byte[] binary = new byte[4096];
        new Random(1).NextBytes(binary);
        binary[10] = 0;
        File.WriteAllBytes(Path.Combine(input, "d-image.txt"), binary);

        // 3. The report counts exactly the planted items, and the output is exactly the clean base.
        CleanReport r = new CleanPipeline().Run([input], dir["out"]);
        Assert.True(near > 20 && exact > 60);
        Assert.Equal(exact, r.RemovedBy("exact_duplicate"));
        Assert.Equal(near, r.RemovedBy("near_duplicate"));
        Assert.Equal(exact + near, r.Removed.Values.Sum()); // no quality filter fired on the clean base or its copies
        Assert.Equal(invalidJson, r.SkippedInputs.ByReason["invalid_json"]);
        Assert.Equal(missingText, r.SkippedInputs.ByReason["missing_text_field"]);
        Assert.Equal(1, r.SkippedInputs.ByReason["binary_file"]);
        Assert.Equal(invalidJson + missingText + 1, r.SkippedInputs.Count);
        Assert.Equal(kept.Count + exact + near, r.DocumentsIn);
        Assert.Equal(kept.Count, r.DocumentsOut);
        Assert.Equal(kept.Select(d => d.Id), CleanJsonl.ReadDocuments(dir["out/clean.jsonl"]).Select(d => d.Id));
    }

    [Fact]
    public void Exact_copies_of_a_near_duplicate_count_as_exact()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["in"]);
        var lines = new List<string>();
        int exact = 0, near = 0;
        for (int n = 1; n <= 8; n++)
        {
            string x = TextSamples.Good(n);
            lines.Add(Line($"near-first-{n}", CleanPipelineTests.NearCopy(x))); // kept: it comes first
            lines.Add(Line($"x-{n}", x)); // a near duplicate of the line above
            near++;
            for (int k = 0; k < n % 3; k++)
            {
                lines.Add(Line($"x-{n}-copy-{k}", x)); // an exact copy of a document that was removed
                exact++;
            }
        }
        File.WriteAllLines(dir["in/a.jsonl"], lines);
        CleanReport r = new CleanPipeline().Run([dir["in"]], dir["out"]);
        Assert.True(exact > 0);
        Assert.Equal(near, r.RemovedBy("near_duplicate"));
        Assert.Equal(exact, r.RemovedBy("exact_duplicate"));
        Assert.Equal(8, r.DocumentsOut);
        Assert.All(CleanJsonl.ReadDocuments(dir["out/clean.jsonl"]), d => Assert.StartsWith("near-first-", d.Id, StringComparison.Ordinal));
    }
}
