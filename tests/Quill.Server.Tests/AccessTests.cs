// Who may use the server (issue 19, item 1). With --api-key, every /v1 route and /metrics answers 401 without the
// key however the path is spelled (case, percent-encoding, double and trailing slashes) and whatever the method
// (HEAD, OPTIONS), and works with it: the reported bypass was /V1/... and /%56%31/... answering 200. The page and
// /health stay open; --metrics-public opens /metrics. A loopback server refuses a Host it does not know (DNS
// rebinding) and a browser Origin other than its own (cross-site posts); CORS headers only with --cors-origin; a
// server bound to every interface without a key says so. Requests are written byte for byte (Http.RawAsync), so no
// client library normalizes the path first.
using System.Text.Json;
using Quill.Server.Tests.Support;

namespace Quill.Server.Tests;

public sealed class AccessTests : IAsyncLifetime
{
    private const string Key = "s3cret-key";
    private readonly string dir = Directory.CreateTempSubdirectory("quill-access-").FullName;
    private TestServer keyed = null!;

    public async Task InitializeAsync() =>
        keyed = await TestServer.StartAsync(new ServerOptions { ApiKey = Key, FeedbackPath = Path.Combine(dir, "feedback.jsonl") }, TinyModels.Served("tiny"));

    public async Task DisposeAsync()
    {
        await keyed.DisposeAsync();
        Directory.Delete(dir, recursive: true);
    }

    /// <summary>Every guarded route: method, path, and a body that succeeds.</summary>
    public static TheoryData<string, string, string?> Routes() => new()
    {
        { "POST", "/v1/chat/completions", """{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":2}""" },
        { "POST", "/v1/completions", """{"model":"tiny","prompt":"hi","max_tokens":2}""" },
        { "GET", "/v1/models", null },
        { "GET", "/v1/models/tiny", null },
        { "POST", "/v1/feedback", """{"model":"tiny","rating":"up","prompt":"hi","reply":"hello"}""" },
        { "GET", "/metrics", null },
    };

    /// <summary>The path as a router might see it after case folding, percent-decoding and slash merging.</summary>
    private static IEnumerable<string> Spellings(string path)
    {
        string rest = path[(path.IndexOf('/', 1) is var i && i > 0 ? i : path.Length)..];
        string first = path[1..(path.Length - rest.Length)];
        yield return path;
        yield return path.ToUpperInvariant().Replace("/TINY", "/tiny", StringComparison.Ordinal); // model ids keep their case
        yield return "/" + char.ToUpperInvariant(first[0]) + first[1..] + rest;
        yield return "/" + string.Concat(first.Select(c => $"%{(int)c:X2}")) + rest;
        yield return "/" + string.Concat(first.Select(c => $"%{(int)char.ToUpperInvariant(c):x2}")) + rest;
        yield return "/" + path;
        yield return path + "/";
        yield return "/" + first + "/" + rest;
        yield return "//" + first.ToUpperInvariant() + "//" + rest.TrimStart('/') + "/";
    }

    [Theory]
    [MemberData(nameof(Routes))]
    public async Task Every_spelling_and_method_needs_the_key(string method, string path, string? body)
    {
        foreach (string target in Spellings(path))
        {
            foreach (string m in new[] { method, "HEAD", "OPTIONS" })
            {
                string? send = m == method ? body : null;
                var (status, _, text) = await Http.RawAsync(keyed.Address, m, target, body: send);
                Assert.True(status == 401, $"{m} {target} without a key: {status} {text}");
                (status, _, _) = await Http.RawAsync(keyed.Address, m, target, key: "s3cret-kez", body: send);
                Assert.True(status == 401, $"{m} {target} with a wrong key: {status}");
                (status, var head, text) = await Http.RawAsync(keyed.Address, m, target, key: Key, body: send);
                int expected = m == method || (m == "HEAD" && method == "GET") ? 200 : m == "OPTIONS" ? 204 : 405;
                Assert.True(status == expected, $"{m} {target} with the key: {status} (expected {expected}) {text}");
                if (m == "OPTIONS") Assert.Contains("Allow: " + (method == "GET" ? "GET, HEAD" : "POST"), head, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public async Task The_page_and_health_stay_open_and_unknown_v1_urls_need_the_key()
    {
        foreach (string open in new[] { "/", "/health", "/static/app.js", "/HEALTH" })
            Assert.Equal(200, (await Http.RawAsync(keyed.Address, "GET", open)).Status);
        Assert.Equal(401, (await Http.RawAsync(keyed.Address, "GET", "/v1/engines")).Status);
        Assert.Equal(401, (await Http.RawAsync(keyed.Address, "GET", "/%76%31/engines.json")).Status);
        var (status, _, body) = await Http.RawAsync(keyed.Address, "GET", "/V1/engines", key: Key);
        Assert.Equal(404, status);
        Assert.Equal("unknown_url", JsonDocument.Parse(body).RootElement.GetProperty("error").GetProperty("code").GetString());
        (status, _, body) = await Http.RawAsync(keyed.Address, "GET", "/V1/Chat/Completions", key: Key);
        Assert.Equal(405, status);
        Assert.Equal("method_not_allowed", JsonDocument.Parse(body).RootElement.GetProperty("error").GetProperty("code").GetString());
        // metrics count refusals under the route that refused them
        (_, _, body) = await Http.RawAsync(keyed.Address, "GET", "/metrics", key: Key);
        Assert.Contains("quill_requests_total{route=\"/health\",status=\"200\"}", body, StringComparison.Ordinal);
        Assert.Contains("quill_requests_total{route=\"/v1/{**rest}\",status=\"401\"} 2", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Metrics_public_opens_metrics_only()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { ApiKey = Key, MetricsPublic = true });
        Assert.Equal(200, (await Http.RawAsync(server.Address, "GET", "/metrics")).Status);
        Assert.Equal(401, (await Http.RawAsync(server.Address, "GET", "/V1/models")).Status);
        // without a key nothing is guarded
        await using var open = await TestServer.StartAsync();
        Assert.Equal(200, (await Http.RawAsync(open.Address, "GET", "/metrics")).Status);
        Assert.Equal(200, (await Http.RawAsync(open.Address, "GET", "/v1/models")).Status);
    }

    [Fact]
    public async Task A_loopback_server_refuses_unknown_hosts()
    {
        int port = keyed.Address.Port;
        foreach (string host in new[] { $"127.0.0.1:{port}", $"localhost:{port}", $"[::1]:{port}", "LOCALHOST", "127.0.0.1" })
            Assert.Equal(200, (await Http.RawAsync(keyed.Address, "GET", "/health", host: host)).Status);
        foreach (string host in new[] { $"evil.example:{port}", "evil.example", "127.0.0.1.nip.io", "" })
        {
            var (status, _, body) = await Http.RawAsync(keyed.Address, "GET", "/v1/models", key: Key, host: host);
            Assert.True(status == 403, $"Host '{host}': {status} {body}");
            Assert.Equal("host_not_allowed", JsonDocument.Parse(body).RootElement.GetProperty("error").GetProperty("code").GetString());
        }
        await using var named = await TestServer.StartAsync(new ServerOptions { AllowedHosts = ["my.box"] });
        Assert.Equal(200, (await Http.RawAsync(named.Address, "GET", "/health", host: "my.box:8080")).Status);
        Assert.Equal(403, (await Http.RawAsync(named.Address, "GET", "/health", host: "other.box")).Status);
    }

    [Fact]
    public async Task Cross_site_requests_are_refused_and_cors_is_off_unless_asked()
    {
        const string Chat = """{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":2}""";
        await using var server = await TestServer.StartAsync();
        string self = $"http://127.0.0.1:{server.Address.Port}";
        var (status, head, body) = await Http.RawAsync(server.Address, "POST", "/v1/chat/completions", body: Chat, contentType: "text/plain",
            headers: new Dictionary<string, string> { ["Origin"] = "https://evil.example" });
        Assert.True(status == 403, $"{status} {body}");
        Assert.Equal("origin_not_allowed", JsonDocument.Parse(body).RootElement.GetProperty("error").GetProperty("code").GetString());
        (status, head, _) = await Http.RawAsync(server.Address, "POST", "/v1/chat/completions", body: Chat, headers: new Dictionary<string, string> { ["Origin"] = self });
        Assert.Equal(200, status);
        Assert.DoesNotContain("Access-Control-Allow-Origin", head, StringComparison.OrdinalIgnoreCase);

        await using var cors = await TestServer.StartAsync(new ServerOptions { ApiKey = Key, CorsOrigins = ["https://app.example"] });
        var preflight = new Dictionary<string, string>
        {
            ["Origin"] = "https://app.example", ["Access-Control-Request-Method"] = "POST", ["Access-Control-Request-Headers"] = "authorization,content-type",
        };
        (status, head, _) = await Http.RawAsync(cors.Address, "OPTIONS", "/v1/chat/completions", headers: preflight);
        Assert.Equal(204, status);
        Assert.Contains("Access-Control-Allow-Origin: https://app.example", head, StringComparison.Ordinal);
        (status, head, _) = await Http.RawAsync(cors.Address, "POST", "/v1/chat/completions", key: Key, body: Chat, headers: new Dictionary<string, string> { ["Origin"] = "https://app.example" });
        Assert.Equal(200, status);
        Assert.Contains("Access-Control-Allow-Origin: https://app.example", head, StringComparison.Ordinal);
        (status, _, _) = await Http.RawAsync(cors.Address, "POST", "/v1/chat/completions", body: Chat, headers: new Dictionary<string, string> { ["Origin"] = "https://app.example" });
        Assert.Equal(401, status);
        Assert.Equal(403, (await Http.RawAsync(cors.Address, "OPTIONS", "/v1/chat/completions", headers: new Dictionary<string, string>(preflight) { ["Origin"] = "https://evil.example" })).Status);
    }

    [Fact]
    public async Task Every_interface_without_a_key_prints_a_warning()
    {
        await using (var open = await QuillServer.StartAsync(new ServerOptions { Host = "0.0.0.0", Port = 0 }, [TinyModels.Served()], ownsModels: true))
        {
            string warning = Assert.Single(open.Warnings);
            Assert.Contains("0.0.0.0", warning, StringComparison.Ordinal);
            Assert.Contains("--api-key", warning, StringComparison.Ordinal);
        }
        await using (var guarded = await QuillServer.StartAsync(new ServerOptions { Host = "0.0.0.0", Port = 0, ApiKey = Key }, [TinyModels.Served()], ownsModels: true))
            Assert.Empty(guarded.Warnings);
        Assert.Empty(keyed.Server.Warnings);
    }
}
