// Many users at once: 16 concurrent streaming clients each get exactly the text they get alone with the same seed
// (while really sharing decode steps), a full queue answers 429 with Retry-After, and a client that disconnects
// stops its generation (its slot frees and it stops producing tokens). One poisoned stream (NaN logits) among 16
// fails alone with an error event while the other 15 finish with their own text (issue 19: it ended all of them).
using System.Text;
using System.Text.Json;
using OpenAI.Chat;
using Quill.Server.Tests.Support;

namespace Quill.Server.Tests;

public sealed class ConcurrencyTests
{
    private static ChatMessage[] Conversation(int i) => [new UserChatMessage($"Client {i} says hello, number {i * 7}.")];

    private static async Task<string> StreamAsync(ChatClient chat, int i, int maxTokens)
    {
        var text = new StringBuilder();
        ChatFinishReason? finish = null;
        await foreach (var u in chat.CompleteChatStreamingAsync(Conversation(i), new ChatCompletionOptions { MaxOutputTokenCount = maxTokens, Seed = 1000 + i, Temperature = 1f }))
        {
            foreach (var p in u.ContentUpdate) text.Append(p.Text);
            finish ??= u.FinishReason;
        }
        Assert.NotNull(finish);
        return text.ToString();
    }

    [Fact]
    public async Task Sixteen_streaming_clients_each_get_their_solo_text()
    {
        var (model, slow) = SlowBackend.Served("tiny", 0, maxBatch: 16, maxQueue: 16);
        await using var server = await TestServer.StartAsync(null, model);
        var chat = server.Client.GetChatClient("tiny");
        const int Clients = 16, Tokens = 24;
        var solo = new string[Clients];
        for (int i = 0; i < Clients; i++) solo[i] = await StreamAsync(chat, i, Tokens);
        Assert.Equal(1, slow.MaxBatchSeen);

        slow.DelayMs = 5; // every step takes a while, so all 16 are in flight together
        var together = await Task.WhenAll(Enumerable.Range(0, Clients).Select(i => Task.Run(() => StreamAsync(chat, i, Tokens))));
        for (int i = 0; i < Clients; i++) Assert.Equal(solo[i], together[i]);
        Assert.True(slow.MaxBatchSeen >= 8, $"largest decode batch was {slow.MaxBatchSeen}: the clients were not batched");
        Assert.True(solo.Distinct().Count() > Clients / 2, "different seeds and prompts should give different texts");
    }

    [Fact]
    public async Task Full_queue_answers_429_with_retry_after()
    {
        var (model, _) = SlowBackend.Served("tiny", 20, maxBatch: 1, maxQueue: 1);
        await using var server = await TestServer.StartAsync(null, model);
        const string Json = """{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":200,"stream":true}""";
        using var cancel = new CancellationTokenSource();
        using var running = await Http.PostStreamAsync(server.Http, "v1/chat/completions", Json, cancel.Token);
        // the stream's headers go out when the job is queued; wait until it holds the one slot, so the next request
        // is the one waiting (on a busy machine the scheduler's thread may not have admitted it yet)
        for (int i = 0; i < 500 && model.Scheduler.ActiveCount == 0; i++) await Task.Delay(10);
        using var waiting = await Http.PostStreamAsync(server.Http, "v1/chat/completions", Json, cancel.Token);
        Assert.Equal(200, (int)running.StatusCode);
        Assert.Equal(200, (int)waiting.StatusCode);
        var (status, body, res) = await Http.PostAsync(server.Http, "v1/chat/completions", Json.Replace(",\"stream\":true", "", StringComparison.Ordinal));
        Assert.Equal(429, status);
        Assert.Equal("rate_limit_error", body.GetProperty("error").GetProperty("type").GetString());
        Assert.True(res.Headers.RetryAfter?.Delta?.TotalSeconds >= 1, "Retry-After missing");
        var metrics = await server.Http.GetStringAsync("metrics");
        Assert.Contains("quill_rejected_total 1", metrics, StringComparison.Ordinal);
        Assert.Contains("quill_queue_depth{model=\"tiny\"} 1", metrics, StringComparison.Ordinal);
        await cancel.CancelAsync();
    }

    [Fact]
    public async Task Disconnected_client_stops_its_generation()
    {
        var (model, _) = SlowBackend.Served("tiny", 10, maxBatch: 4, maxQueue: 4);
        await using var server = await TestServer.StartAsync(null, model);
        const string Json = """{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":200,"stream":true}""";
        // A client that leaves closes its connection. HttpClient would instead drain an unread response (up to 1 MB
        // or 2 s) to reuse the connection, and a 200-token stream at 10 ms a token can finish inside that drain,
        // so this client is told never to drain.
        using var leaving = new HttpClient(new SocketsHttpHandler { MaxResponseDrainSize = 0 }) { BaseAddress = server.Http.BaseAddress };
        using (var cancel = new CancellationTokenSource())
        {
            var res = await Http.PostStreamAsync(leaving, "v1/chat/completions", Json, cancel.Token);
            var stream = await res.Content.ReadAsStreamAsync(cancel.Token);
            var buf = new byte[256];
            int got = 0;
            while (got < 3) got += await stream.ReadAsync(buf, cancel.Token) > 0 ? 1 : 0;
            Assert.Equal(1, model.Scheduler.ActiveCount);
            await cancel.CancelAsync();
            res.Dispose();
        }
        // bounded wait for the server to notice the closed connection
        for (int i = 0; i < 100 && model.Scheduler.ActiveCount > 0; i++) await Task.Delay(50);
        Assert.Equal(0, model.Scheduler.ActiveCount);
        long produced = server.Server.Metrics.CompletionTokens;
        await Task.Delay(200);
        Assert.Equal(produced, server.Server.Metrics.CompletionTokens);
        Assert.True(produced < 200, $"{produced} tokens were generated for a client that left");
        var health = JsonDocument.Parse(await server.Http.GetStringAsync("health")).RootElement;
        Assert.Equal(0, health.GetProperty("models")[0].GetProperty("active").GetInt32());
    }

    /// <summary>The content of a raw chat stream, or the error message when an error event ended it.</summary>
    private static async Task<(string Text, string? Error, bool Done)> RawStreamAsync(HttpClient http, string json)
    {
        using var res = await Http.PostStreamAsync(http, "v1/chat/completions", json);
        Assert.Equal(200, (int)res.StatusCode);
        var text = new StringBuilder();
        string? error = null;
        bool done = false;
        await foreach (string data in Http.Events(res))
        {
            if (data == "[DONE]")
            {
                done = true;
                continue;
            }
            var e = JsonDocument.Parse(data).RootElement;
            if (e.TryGetProperty("error", out var err)) error = err.GetProperty("message").GetString();
            else if (e.GetProperty("choices")[0].GetProperty("delta").TryGetProperty("content", out var c)) text.Append(c.GetString());
        }
        return (text.ToString(), error, done);
    }

    [Fact]
    public async Task One_poisoned_stream_among_sixteen_fails_alone()
    {
        var (model, slow) = SlowBackend.Served("tiny", 0, maxBatch: 16, maxQueue: 16);
        slow.PoisonToken = model.Tokenizer.Encode("~")[0];
        await using var server = await TestServer.StartAsync(null, model);
        var chat = server.Client.GetChatClient("tiny");
        const int Tokens = 24;
        var solo = new string[14];
        for (int i = 0; i < 14; i++) solo[i] = await StreamAsync(chat, i, Tokens);
        static string Tiny(string temperature) =>
            $$"""{"model":"tiny","messages":[{"role":"user","content":"Client 14 says hello."}],"max_tokens":24,"stream":true,"temperature":{{temperature}},"top_p":0.9,"seed":5}""";
        var greedy = await RawStreamAsync(server.Http, Tiny("0"));
        const string Poisoned = """{"model":"tiny","messages":[{"role":"user","content":"I am ~poison~."}],"max_tokens":24,"stream":true}""";

        slow.DelayMs = 5; // every step takes a while, so all 16 are in flight together
        var normal = Enumerable.Range(0, 14).Select(i => Task.Run(() => StreamAsync(chat, i, Tokens))).ToArray();
        var tiny = Task.Run(() => RawStreamAsync(server.Http, Tiny("1e-45"))); // issue 19's request: now greedy
        var poisoned = Task.Run(() => RawStreamAsync(server.Http, Poisoned));
        string[] texts = await Task.WhenAll(normal);
        var (tinyText, tinyError, tinyDone) = await tiny;
        var (_, poisonError, poisonDone) = await poisoned;

        for (int i = 0; i < 14; i++) Assert.Equal(solo[i], texts[i]);
        Assert.Equal((greedy.Text, (string?)null, true), (tinyText, tinyError, tinyDone));
        Assert.Contains("NaN logit", poisonError, StringComparison.Ordinal);
        Assert.False(poisonDone);
        Assert.True(slow.MaxBatchSeen >= 8, $"largest decode batch was {slow.MaxBatchSeen}: the clients were not batched");

        // without streaming: a 500 naming the cause; the server goes on serving
        slow.DelayMs = 0;
        var (status, body, _) = await Http.PostAsync(server.Http, "v1/chat/completions", Poisoned.Replace("\"stream\":true", "\"stream\":false", StringComparison.Ordinal));
        Assert.Equal(500, status);
        Assert.Equal("generation_failed", body.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains("NaN logit", body.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(solo[0], await StreamAsync(chat, 0, Tokens));
        Assert.Equal(0, model.Scheduler.ActiveCount);
    }
}
