using System.Text;
using System.Text.Json;
using Quill.Data.Cleaning;

namespace Quill.Tests.Data.Cleaning;

// `quill data clean` streams: a child process whose GC heap is capped well below the size of its input still
// cleans the whole input and accounts for every document.
public class LargerThanMemoryTests
{
    private const long HeapLimit = 80L << 20;

    [Fact]
    public void Cleans_an_input_larger_than_the_memory_given_to_the_run()
    {
        using var dir = new TempDir();
        string input = dir["big.jsonl"];
        int docs = 0;
        using (var w = new StreamWriter(input, false, new UTF8Encoding(false)))
        {
            while (w.BaseStream.Length < HeapLimit * 3 / 2)
            {
                string text = TextSamples.Good(docs + 1, 200);
                w.WriteLine(JsonSerializer.Serialize(new { id = $"doc-{docs}", text }));
                docs++;
            }
        }
        long inputBytes = new FileInfo(input).Length;
        Assert.True(inputBytes > HeapLimit * 4 / 3, $"input {inputBytes} bytes is not larger than the heap limit {HeapLimit}");

        var env = new Dictionary<string, string> { ["DOTNET_GCHeapHardLimit"] = "0x" + HeapLimit.ToString("X", System.Globalization.CultureInfo.InvariantCulture) };
        var r = Cli.CliProcess.Run(env, "data", "clean", "--input", input, "--out", dir["out"]);
        Assert.True(r.Exit == 0, r.Err);
        var report = CleanReport.Load(dir["out/report.json"]);
        Assert.Equal(docs, report.DocumentsIn);
        Assert.True(report.DocumentsOut > docs / 2, $"only {report.DocumentsOut} of {docs} documents kept");
        Assert.Equal(report.DocumentsOut, CleanJsonl.ReadDocuments(dir["out/clean.jsonl"]).LongCount());
        Assert.Contains("wrote", r.Out, StringComparison.Ordinal);
    }
}
