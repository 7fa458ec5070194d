// QuillServer.WarmUpAsync: the server's own requests go through the same routes and guards as a client's (with
// the API key it was given), every round answers, and the metrics start from zero afterwards.
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
}
