// /v1/completions (the legacy text completion). The official .NET client keeps its legacy completions client
// internal, so these requests go through that client's own HTTP pipeline (same auth and transport) with a JSON
// body: text and token-id prompts, several prompts and n, echo, streaming, stop strings and logprobs.
using System.ClientModel;
using System.Text.Json;
using Quill.Server.Tests.Support;

namespace Quill.Server.Tests;

public sealed class CompletionApiTests : IAsyncLifetime
{
    private TestServer server = null!;

    public async Task InitializeAsync() => server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await server.DisposeAsync();

    /// <summary>POST /v1/completions through the OpenAI client's pipeline; the parsed JSON body.</summary>
    private async Task<(int Status, string Body)> SendAsync(string json)
    {
        var pipeline = server.Client.GetChatClient("tiny").Pipeline;
        using var message = pipeline.CreateMessage();
        message.Request.Method = "POST";
        message.Request.Uri = new Uri(server.Address, "v1/completions");
        message.Request.Headers.Set("Content-Type", "application/json");
        message.Request.Content = BinaryContent.Create(BinaryData.FromString(json));
        await pipeline.SendAsync(message);
        return (message.Response!.Status, message.Response.Content.ToString());
    }

    private async Task<JsonElement> CompleteAsync(string json)
    {
        var (status, body) = await SendAsync(json);
        Assert.True(status == 200, body);
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    [Fact]
    public async Task Completion_continues_a_prompt_with_usage()
    {
        var r = await CompleteAsync("""{"model":"tiny","prompt":"Once upon a time","max_tokens":10,"seed":3}""");
        Assert.Equal("text_completion", r.GetProperty("object").GetString());
        var choice = r.GetProperty("choices")[0];
        Assert.Equal("length", choice.GetProperty("finish_reason").GetString());
        Assert.Equal(10, choice.GetProperty("text").GetString()!.Length); // one character per token
        var usage = r.GetProperty("usage");
        Assert.Equal("Once upon a time".Length, usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(10, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(26, usage.GetProperty("total_tokens").GetInt32());
    }

    [Fact]
    public async Task Token_id_prompt_equals_the_text_prompt_it_encodes()
    {
        var tok = TinyModels.Tokenizer();
        string ids = string.Join(",", tok.Encode("Hello there"));
        var a = await CompleteAsync("""{"model":"tiny","prompt":"Hello there","max_tokens":8,"temperature":0}""");
        var b = await CompleteAsync($$"""{"model":"tiny","prompt":[{{ids}}],"max_tokens":8,"temperature":0}""");
        Assert.Equal(a.GetProperty("choices")[0].GetProperty("text").GetString(), b.GetProperty("choices")[0].GetProperty("text").GetString());
    }

    [Fact]
    public async Task Several_prompts_and_n_give_prompt_times_n_choices_seeded_apart()
    {
        var r = await CompleteAsync("""{"model":"tiny","prompt":["abc","xyz"],"n":2,"max_tokens":12,"seed":9,"temperature":1}""");
        var choices = r.GetProperty("choices").EnumerateArray().ToArray();
        Assert.Equal(4, choices.Length);
        Assert.Equal([0, 1, 2, 3], choices.Select(c => c.GetProperty("index").GetInt32()));
        // choice k of a prompt uses seed + k: the two choices of one prompt differ
        Assert.NotEqual(choices[0].GetProperty("text").GetString(), choices[1].GetProperty("text").GetString());
        Assert.Equal(6, r.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(48, r.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task Echo_prepends_the_prompt_and_logprobs_cover_each_token()
    {
        var r = await CompleteAsync("""{"model":"tiny","prompt":"Hi","max_tokens":5,"echo":true,"logprobs":2,"temperature":0}""");
        var choice = r.GetProperty("choices")[0];
        string text = choice.GetProperty("text").GetString()!;
        Assert.StartsWith("Hi", text, StringComparison.Ordinal);
        var lp = choice.GetProperty("logprobs");
        var tokens = lp.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()).ToArray();
        Assert.Equal(5, tokens.Length);
        Assert.Equal(text[2..], string.Concat(tokens));
        Assert.Equal(2, lp.GetProperty("text_offset")[0].GetInt32());
        foreach (var top in lp.GetProperty("top_logprobs").EnumerateArray()) Assert.Equal(2, top.EnumerateObject().Count());
    }

    [Fact]
    public async Task Streamed_completion_matches_the_whole_one_and_ends_with_done()
    {
        const string Body = """{"model":"tiny","prompt":"The sea","max_tokens":15,"seed":11,"stop":["zz"]}""";
        var whole = await CompleteAsync(Body);
        using var res = await Http.PostStreamAsync(server.Http, "v1/completions", Body.Replace("\"seed\"", "\"stream\":true,\"stream_options\":{\"include_usage\":true},\"seed\"", StringComparison.Ordinal));
        Assert.Equal("text/event-stream", res.Content.Headers.ContentType?.MediaType);
        var events = new List<string>();
        await foreach (string e in Http.Events(res)) events.Add(e);
        Assert.Equal("[DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonDocument.Parse(e).RootElement).ToArray();
        string text = string.Concat(chunks.Where(c => c.GetProperty("choices").GetArrayLength() > 0).Select(c => c.GetProperty("choices")[0].GetProperty("text").GetString()));
        Assert.Equal(whole.GetProperty("choices")[0].GetProperty("text").GetString(), text);
        Assert.Equal(0, chunks[^1].GetProperty("choices").GetArrayLength());
        Assert.Equal(15, chunks[^1].GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }
}
