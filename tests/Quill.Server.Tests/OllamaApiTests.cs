// Ollama's API through the OllamaSharp client (its chat, streaming chat, generate, tags, show and version calls and
// its IChatClient), checked against the OpenAI routes and the scheduler for the same settings: options map onto
// the same sampler (greedy, seeded, num_predict, stop), the defaults are Ollama's documented ones, a stream adds
// up to the whole reply with counts and nanosecond durations on its last line, errors come in Ollama's shape, and
// the API key guards /api as it guards /v1.
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;
using OllamaSharp;
using OllamaSharp.Models;
using OllamaSharp.Models.Chat;
using Quill.Inference;
using Quill.Inference.Batching;
using Quill.Server.Tests.Support;

namespace Quill.Server.Tests;

public sealed class OllamaApiTests : IAsyncLifetime
{
    private TestServer server = null!;
    private OllamaApiClient ollama = null!;
    private HttpClient ollamaHttp = null!;

    public async Task InitializeAsync()
    {
        server = await TestServer.StartAsync();
        ollamaHttp = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromSeconds(60) };
        ollama = new OllamaApiClient(ollamaHttp, "tiny");
    }

    public async Task DisposeAsync()
    {
        ollama.Dispose();
        ollamaHttp.Dispose();
        await server.DisposeAsync();
    }

    private static List<Message> Conversation => [new(OllamaSharp.Models.Chat.ChatRole.System, "Be brief."), new(OllamaSharp.Models.Chat.ChatRole.User, "Name a color.")];

    private async Task<(string Text, ChatDoneResponseStream Done, int Lines)> ChatAsync(RequestOptions options, bool stream = true, string model = "tiny")
    {
        var text = new StringBuilder();
        ChatDoneResponseStream? done = null;
        int lines = 0;
        await foreach (var r in ollama.ChatAsync(new ChatRequest { Model = model, Messages = Conversation, Options = options, Stream = stream }))
        {
            lines++;
            text.Append(r!.Message.Content);
            if (r.Done) done = Assert.IsType<ChatDoneResponseStream>(r);
        }
        return (text.ToString(), done!, lines);
    }

    private async Task<string> OpenAiChatAsync(string body)
    {
        var (status, json, _) = await Http.PostAsync(server.Http, "v1/chat/completions", body);
        Assert.Equal(200, status);
        return json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
    }

    private const string OpenAiMessages = """[{"role":"system","content":"Be brief."},{"role":"user","content":"Name a color."}]""";

    [Fact]
    public async Task Greedy_and_seeded_chat_equal_the_openai_route_streamed_or_not()
    {
        // repeat_last_n 0 turns Ollama's default repetition penalty off, so the sampler is the OpenAI route's
        var greedy = new RequestOptions { Temperature = 0, RepeatLastN = 0, NumPredict = 40 };
        var (streamed, done, lines) = await ChatAsync(greedy);
        var (whole, wholeDone, wholeLines) = await ChatAsync(greedy, stream: false);
        Assert.Equal(whole, streamed);
        Assert.True(lines > 2, $"a stream of {lines} lines");
        Assert.Equal(1, wholeLines);
        Assert.Equal(await OpenAiChatAsync($$"""{"model":"tiny","messages":{{OpenAiMessages}},"temperature":0,"max_tokens":40}"""), streamed);
        Assert.Equal(wholeDone.EvalCount, done.EvalCount);

        var seeded = new RequestOptions { Temperature = 1.3f, TopK = 0, TopP = 1, RepeatLastN = 0, Seed = 4242, NumPredict = 40 };
        var (sampled, _, _) = await ChatAsync(seeded);
        Assert.NotEqual(streamed, sampled);
        Assert.Equal(await OpenAiChatAsync($$"""{"model":"tiny","messages":{{OpenAiMessages}},"temperature":1.3,"seed":4242,"max_tokens":40}"""), sampled);

        var topped = new RequestOptions { Temperature = 1.3f, TopK = 5, TopP = 0.7f, RepeatLastN = 0, Seed = 4242, NumPredict = 40 };
        Assert.Equal(await OpenAiChatAsync($$"""{"model":"tiny","messages":{{OpenAiMessages}},"temperature":1.3,"top_k":5,"top_p":0.7,"seed":4242,"max_tokens":40}"""), (await ChatAsync(topped)).Text);
    }

    [Fact]
    public async Task Options_left_out_are_ollamas_defaults()
    {
        var model = server.Server.Models[0];
        var (text, _, _) = await ChatAsync(new RequestOptions { Seed = 99, NumPredict = 60 });
        var sampling = new SamplingOptions { Temperature = 0.8f, TopK = 40, TopP = 0.9f, RepetitionPenalty = 1.1f, PenaltyWindow = 64, Seed = 99 };
        var turns = new[] { new ChatTurn("system", "Be brief."), new ChatTurn("user", "Name a color.") };
        var job = model.Scheduler.Submit([model.ForChat(turns, new GenerationRequest { Prompt = [], Sampling = sampling, MaxTokens = 60 })], CancellationToken.None)[0];
        Assert.Equal((await job.CollectAsync()).Text, text);
        // and the penalty matters for this model: without it the reply differs
        var plain = model.Scheduler.Submit([model.ForChat(turns, new GenerationRequest { Prompt = [], Sampling = sampling with { RepetitionPenalty = 1f }, MaxTokens = 60 })], CancellationToken.None)[0];
        Assert.NotEqual((await plain.CollectAsync()).Text, text);
    }

    [Fact]
    public async Task Last_line_carries_counts_reasons_and_nanosecond_durations()
    {
        var before = DateTimeOffset.UtcNow;
        var (text, done, _) = await ChatAsync(new RequestOptions { Temperature = 0, RepeatLastN = 0, NumPredict = 12 });
        Assert.Equal("length", done.DoneReason);
        Assert.Equal(12, done.EvalCount);
        var model = server.Server.Models[0];
        int promptTokens = model.Chat.Encode([new ChatTurn("system", "Be brief."), new ChatTurn("user", "Name a color.")]).Length;
        Assert.Equal(promptTokens, done.PromptEvalCount);
        Assert.True(done.PromptEvalDuration > 0 && done.EvalDuration > 0, $"{done.PromptEvalDuration} {done.EvalDuration}");
        Assert.True(done.TotalDuration >= done.PromptEvalDuration + done.EvalDuration);
        // nanoseconds: the whole request took less than the test's own wall time, measured in ticks of 100 ns
        Assert.True(done.TotalDuration <= (DateTimeOffset.UtcNow - before).Ticks * 100, $"{done.TotalDuration} ns");
        Assert.Equal("tiny", done.Model);
        Assert.True(done.CreatedAt >= before.AddSeconds(-1), done.CreatedAtString);
        Assert.Equal(12, text.Length); // one character per token for the char tokenizer

        // a stop string from the middle of the reply cuts it there and ends with "stop"
        string stop = text.Substring(5, 2);
        var (cut, cutDone, _) = await ChatAsync(new RequestOptions { Temperature = 0, RepeatLastN = 0, NumPredict = 12, Stop = [stop] });
        Assert.Equal(text[..text.IndexOf(stop, StringComparison.Ordinal)], cut);
        Assert.Equal("stop", cutDone.DoneReason);
    }

    [Fact]
    public async Task Ollamasharp_chat_client_chats_and_streams()
    {
        IChatClient client = ollama;
        Microsoft.Extensions.AI.ChatMessage[] messages = [new(Microsoft.Extensions.AI.ChatRole.System, "Be brief."), new(Microsoft.Extensions.AI.ChatRole.User, "Name a color.")];
        var options = new ChatOptions { ModelId = "tiny:latest", Temperature = 0, MaxOutputTokens = 24, Seed = 5, AdditionalProperties = new() { ["repeat_last_n"] = 0 } };
        var response = await client.GetResponseAsync(messages, options);
        var text = new StringBuilder();
        int updates = 0;
        await foreach (var u in client.GetStreamingResponseAsync(messages, options))
        {
            text.Append(u.Text);
            updates++;
        }
        Assert.Equal(response.Text, text.ToString());
        Assert.True(updates > 2);
        Assert.Equal(24, response.Usage!.OutputTokenCount);
        Assert.Equal(Microsoft.Extensions.AI.ChatFinishReason.Length, response.FinishReason);
        Assert.Equal(await OpenAiChatAsync($$"""{"model":"tiny","messages":{{OpenAiMessages}},"temperature":0,"max_tokens":24}"""), response.Text);
    }

    [Fact]
    public async Task Generate_completes_raw_text_like_v1_completions_and_streams()
    {
        var text = new StringBuilder();
        GenerateDoneResponseStream? done = null;
        int lines = 0;
        await foreach (var r in ollama.GenerateAsync(new GenerateRequest { Prompt = "Once upon a time", Options = new RequestOptions { Temperature = 0, RepeatLastN = 0, NumPredict = 30 } }))
        {
            lines++;
            text.Append(r!.Response);
            if (r.Done) done = Assert.IsType<GenerateDoneResponseStream>(r);
        }
        Assert.True(lines > 2);
        Assert.NotNull(done);
        Assert.Equal(30, done.EvalCount);
        var (status, json, _) = await Http.PostAsync(server.Http, "v1/completions", """{"model":"tiny","prompt":"Once upon a time","temperature":0,"max_tokens":30}""");
        Assert.Equal(200, status);
        Assert.Equal(json.GetProperty("choices")[0].GetProperty("text").GetString(), text.ToString());

        // stream: false gives one object with the whole text
        var (s2, whole, res) = await Http.PostAsync(server.Http, "api/generate", """{"model":"tiny","prompt":"Once upon a time","stream":false,"options":{"temperature":0,"repeat_last_n":0,"num_predict":30}}""");
        Assert.Equal(200, s2);
        Assert.Equal("application/json", res.Content.Headers.ContentType!.MediaType);
        Assert.Equal(text.ToString(), whole.GetProperty("response").GetString());
        Assert.True(whole.GetProperty("done").GetBoolean());
        Assert.Equal("length", whole.GetProperty("done_reason").GetString());
    }

    [Fact]
    public async Task Stream_is_ndjson_and_an_empty_prompt_only_loads()
    {
        using var res = await Http.PostStreamAsync(server.Http, "api/chat", """{"model":"tiny","messages":[{"role":"user","content":"Hi"}],"options":{"num_predict":5}}""");
        Assert.Equal("application/x-ndjson", res.Content.Headers.ContentType!.MediaType);
        string[] lines = (await res.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        foreach (var line in lines[..^1]) Assert.False(JsonDocument.Parse(line).RootElement.GetProperty("done").GetBoolean());
        Assert.True(JsonDocument.Parse(lines[^1]).RootElement.GetProperty("done").GetBoolean());

        var (status, body, _) = await Http.PostAsync(server.Http, "api/generate", """{"model":"tiny","stream":false}""");
        Assert.Equal(200, status);
        Assert.Equal("load", body.GetProperty("done_reason").GetString());
        Assert.Equal("", body.GetProperty("response").GetString());
    }

    [Fact]
    public async Task Tags_show_and_version_describe_the_served_model()
    {
        var models = (await ollama.ListLocalModelsAsync()).ToList();
        var tiny = Assert.Single(models);
        Assert.Equal("tiny:latest", tiny.Name);
        Assert.Equal("gpt2", tiny.Details.Family);
        Assert.Equal("F32", tiny.Details.QuantizationLevel);
        // 2 layers of width 64 and a 96-token vocabulary: matrices, tied embedding, norms and biases
        var spec = ((EngineBackend)server.Server.Models[0].Backend).Model.Spec;
        Assert.Equal(64, spec.Dim);
        Assert.True(tiny.Size > 2 * 12 * 64 * 64 * 4, $"{tiny.Size} bytes");
        Assert.Equal(64, tiny.Digest.Length);

        var show = await ollama.ShowModelAsync("tiny");
        Assert.Equal("gpt2", show.Info.Architecture);
        Assert.Equal(tiny.Size / 4, show.Info.ParameterCount); // f32: four bytes a parameter
        Assert.Equal(256, ((JsonElement)show.Info.ExtraInfo!["gpt2.context_length"]).GetInt32());
        Assert.Equal(tiny.Details.ParameterSize, show.Details.ParameterSize);
        Assert.Contains("completion", show.Capabilities!);

        string version = await ollama.GetVersionAsync();
        Assert.Matches(@"^\d+\.\d+\.\d+", version);
    }

    [Fact]
    public async Task Errors_come_in_ollamas_shape()
    {
        var (status, body, _) = await Http.PostAsync(server.Http, "api/chat", """{"model":"nope","messages":[{"role":"user","content":"Hi"}]}""");
        Assert.Equal(404, status);
        Assert.Contains("model 'nope' not found", body.GetProperty("error").GetString(), StringComparison.Ordinal);

        (status, body, _) = await Http.PostAsync(server.Http, "api/chat", """{"model":"tiny","messages":[{"role":"user","content":"Hi"}],"options":{"temperature":-1}}""");
        Assert.Equal(400, status);
        Assert.Contains("options.temperature", body.GetProperty("error").GetString(), StringComparison.Ordinal);

        (status, body, _) = await Http.PostAsync(server.Http, "api/chat", """{"model":"tiny","messages":[{"role":"user","content":"Hi"}],"tools":[{"type":"function"}]}""");
        Assert.Equal(400, status);
        Assert.Contains("'tools' is not supported", body.GetProperty("error").GetString(), StringComparison.Ordinal);

        (status, body, _) = await Http.PostAsync(server.Http, "api/generate", """{"model":"tiny","prompt":"Hi","format":"json"}""");
        Assert.Equal(400, status);
        Assert.Contains("'format'", body.GetProperty("error").GetString(), StringComparison.Ordinal);

        (status, body, _) = await Http.PostAsync(server.Http, "api/pull", """{"model":"llama3"}""");
        Assert.Equal(404, status);
        Assert.Equal(JsonValueKind.String, body.GetProperty("error").ValueKind);

        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await foreach (var _ in ollama.ChatAsync(new ChatRequest { Model = "nope", Messages = Conversation })) { }
        });
    }

    [Fact]
    public async Task Api_key_guards_the_ollama_routes()
    {
        await using var guarded = await TestServer.StartAsync(new ServerOptions { ApiKey = "sekrit" });
        var (status, body, _) = await Http.PostAsync(guarded.Http, "api/chat", """{"model":"tiny","messages":[{"role":"user","content":"Hi"}]}""");
        Assert.Equal(401, status);
        Assert.Equal(JsonValueKind.String, body.GetProperty("error").ValueKind);
        using var http = new HttpClient { BaseAddress = guarded.Address };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "sekrit");
        using var client = new OllamaApiClient(http, "tiny");
        var models = await client.ListLocalModelsAsync();
        Assert.Equal("tiny:latest", Assert.Single(models).Name);
        var reply = await ((IChatClient)client).GetResponseAsync("Hi", new ChatOptions { MaxOutputTokens = 3 });
        Assert.Equal(3, reply.Usage!.OutputTokenCount);
    }
}
