// `quill serve` access flags as a user meets them: binding every interface without --api-key prints one warning line
// on stderr before the URL; the key can come from QUILL_API_KEY instead of the flag; a malformed --cors-origin or --allowed-host is one error line and exit code 1, before
// any model loads. The HTTP behaviour of the flags is tested in tests/Quill.Server.Tests/AccessTests.cs.
using Quill.Tests.Support;

namespace Quill.Tests.Cli;

public sealed class CliServeTests
{
    [TestDataFact("llama2c/stories260K.bin", "llama2c/tok512.bin")]
    public async Task Every_interface_without_a_key_prints_a_warning()
    {
        string dir = Directory.CreateTempSubdirectory("quill-serve-warn-").FullName;
        using var p = System.Diagnostics.Process.Start(CliProcess.StartInfo("serve", "--model", TestData.PathOf("llama2c/stories260K.bin"),
            "--tokenizer", TestData.PathOf("llama2c/tok512.bin"), "--host", "0.0.0.0", "--port", "0", "--feedback", Path.Combine(dir, "f.jsonl")))!;
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
            string? url = await p.StandardOutput.ReadLineAsync(timeout.Token);
            Assert.StartsWith("Quill is serving stories260K at http://", url, StringComparison.Ordinal);
            var err = new List<string>();
            while (await p.StandardError.ReadLineAsync(timeout.Token) is { } line)
            {
                err.Add(line);
                if (line.StartsWith("warning: ", StringComparison.Ordinal)) break;
            }
            string warning = Assert.Single(err, l => l.StartsWith("warning: ", StringComparison.Ordinal));
            Assert.Contains("--host 0.0.0.0", warning, StringComparison.Ordinal);
            Assert.Contains("--api-key", warning, StringComparison.Ordinal);
        }
        finally
        {
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync();
            Directory.Delete(dir, recursive: true);
        }
    }

    [TestDataFact("llama2c/stories260K.bin", "llama2c/tok512.bin")]
    public async Task The_api_key_comes_from_QUILL_API_KEY_when_the_flag_is_absent()
    {
        string dir = Directory.CreateTempSubdirectory("quill-serve-key-").FullName;
        var start = CliProcess.StartInfo("serve", "--model", TestData.PathOf("llama2c/stories260K.bin"), "--tokenizer", TestData.PathOf("llama2c/tok512.bin"),
            "--port", "0", "--no-warmup", "--feedback", Path.Combine(dir, "f.jsonl"));
        start.Environment["QUILL_API_KEY"] = "from-the-environment";
        using var p = System.Diagnostics.Process.Start(start)!;
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
            string url = (await p.StandardOutput.ReadLineAsync(timeout.Token))!.Split(" at ")[1];
            using var http = new HttpClient { BaseAddress = new Uri(url) };
            Assert.Equal(System.Net.HttpStatusCode.Unauthorized, (await http.GetAsync("v1/models", timeout.Token)).StatusCode);
            Assert.Equal(System.Net.HttpStatusCode.Unauthorized, (await http.GetAsync("api/tags", timeout.Token)).StatusCode);
            http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "from-the-environment");
            Assert.Equal(System.Net.HttpStatusCode.OK, (await http.GetAsync("v1/models", timeout.Token)).StatusCode);
        }
        finally
        {
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync();
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("--cors-origin", "evil", "is not an origin")]
    [InlineData("--cors-origin", "https://app.example.com/path", "is not an origin")]
    [InlineData("--allowed-host", "http://x/", "is not a host name")]
    public void A_malformed_access_flag_is_one_line(string flag, string value, string expected)
    {
        var r = CliProcess.Run("serve", "--model", "/nonexistent.gguf", flag, value);
        Assert.Equal(1, r.Exit);
        string line = Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: " + flag, line, StringComparison.Ordinal);
        Assert.Contains(expected, line, StringComparison.Ordinal);
    }

    [Fact]
    public void An_adapter_with_several_models_is_one_line()
    {
        var r = CliProcess.Run("serve", "--model", "/nonexistent-a.gguf", "--model", "/nonexistent-b.gguf", "--adapter", "/nonexistent-adapter");
        Assert.Equal(1, r.Exit);
        string line = Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal("error: --adapter goes with one model; serve the others apart, or merge the adapter (quill finetune merge) and serve the merged folder.", line);
    }
}
