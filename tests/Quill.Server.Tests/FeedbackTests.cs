// POST /v1/feedback as issue 19 found it: a text/plain body (what a cross-site HTML form can send) was accepted, as
// were three 3 MB lines, any model name, and a file that grew without end. Now: 415 for a body that is not JSON, 413
// beyond 64 KiB, 404 for a model the server does not serve (nothing written in each case), and the file is rotated
// to FILE.1 before a line would take it past its cap.
using System.Text;
using System.Text.Json;
using Quill.Server.Tests.Support;

namespace Quill.Server.Tests;

public sealed class FeedbackTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("quill-feedback-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static string Rating(string model, string reply) =>
        JsonSerializer.Serialize(new { model, rating = "up", prompt = new[] { new { role = "user", content = "hi" } }, reply });

    [Fact]
    public async Task Only_json_of_a_served_model_and_a_bounded_size_is_written()
    {
        string file = Path.Combine(dir, "feedback.jsonl");
        await using var server = await TestServer.StartAsync(new ServerOptions { FeedbackPath = file }, TinyModels.Served("tiny"));

        using (var form = new HttpRequestMessage(HttpMethod.Post, "V1/feedback") { Content = new StringContent(Rating("tiny", "hello"), Encoding.UTF8, "text/plain") })
        {
            using var res = await server.Http.SendAsync(form);
            Assert.Equal(415, (int)res.StatusCode);
            Assert.Contains("unsupported_media_type", await res.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        for (int i = 0; i < 3; i++)
        {
            var (status, body, _) = await Http.PostAsync(server.Http, "v1/feedback", Rating("tiny", new string('x', 3 << 20)));
            Assert.Equal(413, status);
            Assert.Equal("request_too_large", body.GetProperty("error").GetProperty("code").GetString());
        }
        var (s, b, _) = await Http.PostAsync(server.Http, "v1/feedback", Rating("gpt-9", "hello"));
        Assert.Equal(404, s);
        Assert.Equal("model_not_found", b.GetProperty("error").GetProperty("code").GetString());
        Assert.False(File.Exists(file), "a refused rating was written");

        (s, _, _) = await Http.PostAsync(server.Http, "v1/feedback", Rating("tiny", new string('y', 60_000)));
        Assert.Equal(200, s);
        Assert.Single(File.ReadAllLines(file));
    }

    [Fact]
    public async Task The_file_is_rotated_at_its_cap()
    {
        string file = Path.Combine(dir, "feedback.jsonl");
        await using var server = await TestServer.StartAsync(new ServerOptions { FeedbackPath = file, FeedbackMaxFileBytes = 4096 }, TinyModels.Served("tiny"));
        for (int i = 0; i < 5; i++)
        {
            var (s, _, _) = await Http.PostAsync(server.Http, "v1/feedback", Rating("tiny", $"{i}:" + new string('z', 1200)));
            Assert.Equal(200, s);
        }
        Assert.True(new FileInfo(file).Length <= 4096 && new FileInfo(file + ".1").Length <= 4096, "a file passed its cap");
        string[] older = File.ReadAllLines(file + ".1"), newer = File.ReadAllLines(file);
        Assert.Equal(3, older.Length);
        Assert.Equal(2, newer.Length);
        Assert.StartsWith("3:", JsonDocument.Parse(newer[0]).RootElement.GetProperty("reply").GetString(), StringComparison.Ordinal);
    }
}
