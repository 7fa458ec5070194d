// QuillServer.WarmUpAsync: the server's own requests go through the same routes and guards as a client's (with
// the API key it was given), every round answers, and the metrics start from zero afterwards; meanwhile /health
// says 503 "warming up", so a load balancer waits.
using Quill.Server.Tests.Support;

namespace Quill.Server.Tests;

public sealed class WarmUpTests
{
    [Fact]
    public async Task Warm_up_answers_every_request_through_the_key_and_leaves_the_metrics_at_zero()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { ApiKey = "sekrit" });
        var result = await server.Server.WarmUpAsync(TimeSpan.FromMinutes(2));
        Assert.Equal(QuillServer.WarmUpRounds * 3, result.Requests);
        // context 256: at most 32 tokens a request (a chat reply may stop early at a stop string)
        Assert.InRange(result.Tokens, QuillServer.WarmUpRounds * 32, QuillServer.WarmUpRounds * 3 * 32);
        Assert.Equal(0, server.Server.Metrics.CompletionTokens);
        Assert.DoesNotContain("quill_requests_total{", server.Server.Metrics.Render(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Health_is_503_while_warming_up_and_200_after()
    {
        var (model, _) = SlowBackend.Served("tiny", 5, maxBatch: 4, maxQueue: 8);
        await using var server = await TestServer.StartAsync(null, model);
        var warming = server.Server.WarmUpAsync(TimeSpan.FromMinutes(2));
        using var during = await server.Http.GetAsync("health");
        string text = await during.Content.ReadAsStringAsync();
        Assert.Equal(503, (int)during.StatusCode);
        Assert.Contains("\"status\":\"warming up\"", text, StringComparison.Ordinal);
        var result = await warming;
        Assert.True(result.Requests > 0);
        using var after = await server.Http.GetAsync("health");
        Assert.Equal(200, (int)after.StatusCode);
        Assert.Contains("\"status\":\"ok\"", await after.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_server_bound_to_every_interface_warms_up_through_loopback()
    {
        await using var server = await QuillServer.StartAsync(new ServerOptions { Host = "0.0.0.0", Port = 0 }, [TinyModels.Served()], ownsModels: true);
        Assert.Equal("0.0.0.0", server.Address.Host);
        var result = await server.WarmUpAsync(TimeSpan.FromMinutes(2));
        Assert.Equal(QuillServer.WarmUpRounds * 3, result.Requests);
    }
}
