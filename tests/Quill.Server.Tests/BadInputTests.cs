// Every row of the README's bad-input table: the request, the HTTP status and the OpenAI-shaped error it gets
// ({"error": {"message", "type", "param", "code"}}), and that no message carries a stack trace.
using System.Text;
using System.Text.Json;
using Quill.Server.Tests.Support;

namespace Quill.Server.Tests;

public sealed class BadInputTests : IAsyncLifetime
{
    private const string Key = "s3cret-key";
    private TestServer server = null!;
    private TestServer keyed = null!;

    public async Task InitializeAsync()
    {
        server = await TestServer.StartAsync(new ServerOptions { MaxBodyBytes = 64 * 1024 }, TinyModels.Served("tiny"), TinyModels.Served("short", blockSize: 32));
        keyed = await TestServer.StartAsync(new ServerOptions { ApiKey = Key }, TinyModels.Served("tiny"));
    }

    public async Task DisposeAsync()
    {
        await server.DisposeAsync();
        await keyed.DisposeAsync();
    }

    private static void AssertError(int status, JsonElement body, int expectedStatus, string? param, string? code, string messagePart)
    {
        Assert.True(status == expectedStatus, $"status {status}, body {body}");
        var e = body.GetProperty("error");
        string message = e.GetProperty("message").GetString()!;
        Assert.Contains(messagePart, message, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", message, StringComparison.Ordinal);
        Assert.False(string.IsNullOrEmpty(e.GetProperty("type").GetString()));
        if (param != null) Assert.Equal(param, e.GetProperty("param").GetString());
        if (code != null) Assert.Equal(code, e.GetProperty("code").GetString());
    }

    private const string Msg = "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]";

    [Theory]
    [InlineData("v1/chat/completions", "{\"model\": \"tiny\", ", 400, null, "invalid_json", "not valid JSON")]
    [InlineData("v1/chat/completions", "[1, 2]", 400, null, "invalid_json", "must be a JSON object")]
    [InlineData("v1/chat/completions", "{" + Msg + "}", 400, "model", "missing_required_parameter", "'model' is required")]
    [InlineData("v1/chat/completions", "{\"model\":\"gpt-9\"," + Msg + "}", 404, "model", "model_not_found", "does not exist")]
    [InlineData("v1/chat/completions", "{\"model\":\"tiny\"}", 400, "messages", "missing_required_parameter", "'messages' is required")]
    [InlineData("v1/chat/completions", "{\"model\":\"tiny\",\"messages\":[]}", 400, "messages", "invalid_value", "non-empty array")]
    [InlineData("v1/chat/completions", "{\"model\":\"tiny\",\"messages\":[{\"role\":\"wizard\",\"content\":\"hi\"}]}", 400, "messages[0].role", "invalid_value", "must be one of")]
    [InlineData("v1/chat/completions", "{\"model\":\"tiny\"," + Msg + ",\"temperature\":3}", 400, "temperature", "invalid_value", "between 0 and 2")]
    [InlineData("v1/chat/completions", "{\"model\":\"tiny\"," + Msg + ",\"temperature\":\"hot\"}", 400, "temperature", "invalid_value", "must be a number")]
    [InlineData("v1/chat/completions", "{\"model\":\"tiny\"," + Msg + ",\"top_p\":1.5}", 400, "top_p", "invalid_value", "between 0 and 1")]
    [InlineData("v1/chat/completions", "{\"model\":\"tiny\"," + Msg + ",\"n\":0}", 400, "n", "invalid_value", "between 1 and 16")]
    [InlineData("v1/chat/completions", "{\"model\":\"tiny\"," + Msg + ",\"max_tokens\":0}", 400, "max_tokens", "invalid_value", "between 1 and")]
    [InlineData("v1/chat/completions", "{\"model\":\"tiny\"," + Msg + ",\"presence_penalty\":-3}", 400, "presence_penalty", "invalid_value", "between -2 and 2")]
    [InlineData("v1/chat/completions", "{\"model\":\"tiny\"," + Msg + ",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", 400, "stop", "invalid_value", "at most 4")]
    [InlineData("v1/chat/completions", "{\"model\":\"tiny\"," + Msg + ",\"top_logprobs\":3}", 400, "top_logprobs", "invalid_value", "needs 'logprobs': true")]
    [InlineData("v1/chat/completions", "{\"model\":\"tiny\"," + Msg + ",\"logprobs\":true,\"top_logprobs\":21}", 400, "top_logprobs", "invalid_value", "between 0 and 20")]
    [InlineData("v1/chat/completions", "{\"model\":\"tiny\"," + Msg + ",\"seed\":1.5}", 400, "seed", "invalid_value", "must be an integer")]
    [InlineData("v1/chat/completions", "{\"model\":\"tiny\"," + Msg + ",\"stream_options\":{\"include_usage\":true}}", 400, "stream_options", "invalid_value", "only allowed with 'stream': true")]
    [InlineData("v1/chat/completions", "{\"model\":\"tiny\"," + Msg + ",\"tools\":[{\"type\":\"function\"}]}", 400, "tools", "invalid_value", "not supported")]
    [InlineData("v1/chat/completions", "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"caf\u00e9\"}]}", 400, "messages", "invalid_value", "not in the char tokenizer's vocabulary")]
    [InlineData("v1/completions", "{\"model\":\"tiny\",\"prompt\":\"hi\",\"logprobs\":6}", 400, "logprobs", "invalid_value", "between 0 and 5")]
    [InlineData("v1/completions", "{\"model\":\"tiny\",\"prompt\":{}}", 400, "prompt", "invalid_value", "'prompt' must be")]
    [InlineData("v1/completions", "{\"model\":\"tiny\",\"prompt\":[5, 9999]}", 400, "prompt", "invalid_value", "outside the vocabulary")]
    [InlineData("v1/completions", "{\"model\":\"tiny\",\"prompt\":\"\"}", 400, "prompt", "invalid_value", "empty")]
    public async Task Bad_request_gets_an_openai_error(string path, string json, int status, string? param, string? code, string messagePart)
    {
        var (s, body, _) = await Http.PostAsync(server.Http, path, json);
        AssertError(s, body, status, param, code, messagePart);
    }

    [Fact]
    public async Task Prompt_longer_than_the_context_is_refused()
    {
        string longText = new('a', 40);
        var (s, body, _) = await Http.PostAsync(server.Http, "v1/chat/completions", $$"""{"model":"short","messages":[{"role":"user","content":"{{longText}}"}]}""");
        AssertError(s, body, 400, "messages", "context_length_exceeded", "maximum context length is 32 tokens");
        (s, body, _) = await Http.PostAsync(server.Http, "v1/completions", $$"""{"model":"short","prompt":"{{longText}}"}""");
        AssertError(s, body, 400, "prompt", "context_length_exceeded", "maximum context length is 32 tokens");
    }

    [Fact]
    public async Task Body_over_the_size_limit_gets_413()
    {
        string big = new('a', 100 * 1024);
        var (s, body, _) = await Http.PostAsync(server.Http, "v1/chat/completions", $$"""{"model":"tiny","messages":[{"role":"user","content":"{{big}}"}]}""");
        AssertError(s, body, 413, null, "request_too_large", "larger than the server's limit");
    }

    [Fact]
    public async Task Chunked_body_over_the_size_limit_gets_413()
    {
        var content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes("{\"model\":\"tiny\",\"prompt\":\"" + new string('b', 100 * 1024) + "\"}")));
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        using var req = new HttpRequestMessage(HttpMethod.Post, "v1/completions") { Content = content };
        req.Headers.TransferEncodingChunked = true;
        using var res = await server.Http.SendAsync(req);
        var body = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement;
        AssertError((int)res.StatusCode, body, 413, null, "request_too_large", "larger than the server's limit");
    }

    [Fact]
    public async Task Missing_or_wrong_api_key_gets_401_and_the_right_key_passes()
    {
        string json = "{\"model\":\"tiny\"," + Msg + ",\"max_tokens\":2}";
        var (s, body, _) = await Http.PostAsync(keyed.Http, "v1/chat/completions", json);
        AssertError(s, body, 401, null, "invalid_api_key", "didn't provide an API key");
        (s, body, _) = await Http.PostAsync(keyed.Http, "v1/chat/completions", json, key: "s3cret-kez");
        AssertError(s, body, 401, null, "invalid_api_key", "Incorrect API key");
        using var models = await keyed.Http.GetAsync("v1/models");
        Assert.Equal(401, (int)models.StatusCode);
        (s, _, _) = await Http.PostAsync(keyed.Http, "v1/chat/completions", json, key: Key);
        Assert.Equal(200, s);
        // the page and health stay open
        Assert.Equal(200, (int)(await keyed.Http.GetAsync("health")).StatusCode);
        Assert.Equal(200, (int)(await keyed.Http.GetAsync("")).StatusCode);
    }

    [Fact]
    public async Task Unknown_url_gets_404_and_wrong_method_405()
    {
        using var a = await server.Http.GetAsync("v1/engines");
        AssertError((int)a.StatusCode, JsonDocument.Parse(await a.Content.ReadAsStringAsync()).RootElement, 404, null, "unknown_url", "Unknown request URL");
        using var b = await server.Http.GetAsync("v1/chat/completions");
        AssertError((int)b.StatusCode, JsonDocument.Parse(await b.Content.ReadAsStringAsync()).RootElement, 405, null, "method_not_allowed", "not allowed");
    }
}
