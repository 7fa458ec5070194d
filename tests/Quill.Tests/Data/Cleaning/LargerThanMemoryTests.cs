using System.Diagnostics;
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
    public async Task Cleans_an_input_larger_than_the_memory_given_to_the_run()
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

        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Quill.Cli.dll"));
        foreach (string a in new[] { "data", "clean", "--input", input, "--out", dir["out"] }) psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_GCHeapHardLimit"] = "0x" + HeapLimit.ToString("X", System.Globalization.CultureInfo.InvariantCulture);
        using var p = Process.Start(psi)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        string err = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.True(p.ExitCode == 0, err);
        var report = CleanReport.Load(dir["out/report.json"]);
        Assert.Equal(docs, report.DocumentsIn);
        Assert.True(report.DocumentsOut > docs / 2, $"only {report.DocumentsOut} of {docs} documents kept");
        Assert.Equal(report.DocumentsOut, CleanJsonl.ReadDocuments(dir["out/clean.jsonl"]).LongCount());
        Assert.Contains("wrote", await stdout, StringComparison.Ordinal);
    }
}
