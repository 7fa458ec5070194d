// /v1/chat/completions driven by the official OpenAI .NET client against a real server on loopback: replies,
// streaming that matches the non-streamed text, stop strings, seed determinism, usage counts and logprobs.
using OpenAI.Chat;
using Quill.Server.Tests.Support;

namespace Quill.Server.Tests;

public sealed class ChatApiTests : IAsyncLifetime
{
    private TestServer server = null!;

    public async Task InitializeAsync() => server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await server.DisposeAsync();

    private ChatClient Chat => server.Client.GetChatClient("tiny");

    private static ChatMessage[] Conversation(string text = "Tell me a story.") => [new SystemChatMessage("You are brief."), new UserChatMessage(text)];

    [Fact]
    public async Task Chat_returns_a_reply_with_usage_and_finish_reason()
    {
        var result = await Chat.CompleteChatAsync(Conversation(), new ChatCompletionOptions { MaxOutputTokenCount = 12, Seed = 1 });
        var c = result.Value;
        Assert.Equal(ChatMessageRole.Assistant, c.Role);
        Assert.Equal("tiny", c.Model);
        Assert.Equal(ChatFinishReason.Length, c.FinishReason);
        Assert.Equal(12, c.Usage.OutputTokenCount);
        // the plain layout: "System: ...\n\nUser: ...\n\nAssistant:" is one character per token
        Assert.Equal("System: You are brief.\n\nUser: Tell me a story.\n\nAssistant:".Length, c.Usage.InputTokenCount);
        Assert.Equal(c.Usage.InputTokenCount + c.Usage.OutputTokenCount, c.Usage.TotalTokenCount);
        Assert.False(string.IsNullOrEmpty(c.Content[0].Text));
    }

    [Fact]
    public async Task Same_seed_gives_the_same_text_and_another_seed_another()
    {
        async Task<string> Ask(long seed) => (await Chat.CompleteChatAsync(Conversation(), new ChatCompletionOptions { MaxOutputTokenCount = 24, Seed = seed, Temperature = 1f })).Value.Content[0].Text;
        string a = await Ask(42), b = await Ask(42), c = await Ask(43);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public async Task Streaming_delivers_the_same_text_as_a_single_answer_and_usage_last()
    {
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 20, Seed = 5 };
        string whole = (await Chat.CompleteChatAsync(Conversation(), options)).Value.Content[0].Text;
        var text = new System.Text.StringBuilder();
        int updates = 0;
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        await foreach (var u in Chat.CompleteChatStreamingAsync(Conversation(), new ChatCompletionOptions { MaxOutputTokenCount = 20, Seed = 5 }))
        {
            updates++;
            foreach (var part in u.ContentUpdate) text.Append(part.Text);
            finish ??= u.FinishReason;
            usage ??= u.Usage;
        }
        Assert.Equal(whole, text.ToString());
        Assert.True(updates > 3, $"only {updates} updates: the reply was not streamed");
        Assert.Equal(ChatFinishReason.Length, finish);
        Assert.NotNull(usage);
        Assert.Equal(20, usage.OutputTokenCount);
    }

    [Fact]
    public async Task Stop_string_cuts_the_reply_before_it()
    {
        var free = (await Chat.CompleteChatAsync(Conversation(), new ChatCompletionOptions { MaxOutputTokenCount = 40, Temperature = 0 })).Value.Content[0].Text;
        Assert.True(free.Length >= 10, $"reply too short to pick a stop string: '{free}'");
        string stop = free.Substring(5, 3);
        int first = free.IndexOf(stop, StringComparison.Ordinal);
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 40, Temperature = 0 };
        options.StopSequences.Add(stop);
        var cut = (await Chat.CompleteChatAsync(Conversation(), options)).Value;
        Assert.Equal(free[..first], cut.Content.Count == 0 ? "" : cut.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, cut.FinishReason);

        var streamed = new System.Text.StringBuilder();
        ChatFinishReason? finish = null;
        await foreach (var u in Chat.CompleteChatStreamingAsync(Conversation(), options))
        {
            foreach (var part in u.ContentUpdate) streamed.Append(part.Text);
            finish ??= u.FinishReason;
        }
        Assert.Equal(free[..first], streamed.ToString());
        Assert.Equal(ChatFinishReason.Stop, finish);
    }

    [Fact]
    public async Task Logprobs_are_negative_and_the_top_alternative_is_at_least_as_likely()
    {
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 6, Temperature = 0, IncludeLogProbabilities = true, TopLogProbabilityCount = 3 };
        var c = (await Chat.CompleteChatAsync(Conversation(), options)).Value;
        Assert.Equal(6, c.ContentTokenLogProbabilities.Count);
        foreach (var t in c.ContentTokenLogProbabilities)
        {
            Assert.True(t.LogProbability <= 0);
            Assert.Equal(3, t.TopLogProbabilities.Count);
            // greedy: the chosen token is the most likely one
            Assert.Equal(t.Token, t.TopLogProbabilities[0].Token);
            Assert.Equal(t.LogProbability, t.TopLogProbabilities[0].LogProbability, 5);
            Assert.True(t.TopLogProbabilities[1].LogProbability <= t.TopLogProbabilities[0].LogProbability);
        }
        Assert.Equal(c.Content[0].Text, string.Concat(c.ContentTokenLogProbabilities.Select(t => t.Token)));
    }

    [Fact]
    public async Task Models_lists_the_served_model()
    {
        var models = (await server.Client.GetOpenAIModelClient().GetModelsAsync()).Value;
        Assert.Contains(models, m => m.Id == "tiny");
    }
}
