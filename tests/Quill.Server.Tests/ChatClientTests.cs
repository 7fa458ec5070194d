// The in-process IChatClient: the same reply as the HTTP API for the same seed, streaming that adds up to the
// whole reply with usage at the end, and option mapping (max tokens, stop sequences).
using Microsoft.Extensions.AI;
using Quill.Server.Tests.Support;

namespace Quill.Server.Tests;

public sealed class ChatClientTests
{
    private static Microsoft.Extensions.AI.ChatMessage[] Conversation => [new(ChatRole.System, "Be brief."), new(ChatRole.User, "Name a color.")];

    [Fact]
    public async Task In_process_reply_equals_the_http_reply_for_the_same_seed()
    {
        var model = TinyModels.Served();
        await using var server = await TestServer.StartAsync(null, model);
        using IChatClient client = new QuillChatClient(model);
        var response = await client.GetResponseAsync(Conversation, new ChatOptions { Seed = 77, MaxOutputTokens = 16, Temperature = 1f });
        var http = (await server.Client.GetChatClient("tiny").CompleteChatAsync(
            [new OpenAI.Chat.SystemChatMessage("Be brief."), new OpenAI.Chat.UserChatMessage("Name a color.")],
            new OpenAI.Chat.ChatCompletionOptions { Seed = 77, MaxOutputTokenCount = 16, Temperature = 1f })).Value;
        Assert.Equal(http.Content[0].Text, response.Text);
        Assert.Equal(ChatFinishReason.Length, response.FinishReason);
        Assert.Equal(16, response.Usage!.OutputTokenCount);
        Assert.Equal(http.Usage.InputTokenCount, response.Usage.InputTokenCount);
        Assert.Equal("tiny", response.ModelId);
        Assert.Equal("tiny", client.GetService<ChatClientMetadata>()!.DefaultModelId);
    }

    [Fact]
    public async Task Streaming_updates_add_up_to_the_reply_and_end_with_usage()
    {
        using var client = new QuillChatClient(TinyModels.Served(), ownsModel: true);
        var options = new ChatOptions { Seed = 3, MaxOutputTokens = 30, Temperature = 0f };
        string whole = (await client.GetResponseAsync(Conversation, options)).Text;
        var text = new System.Text.StringBuilder();
        UsageContent? usage = null;
        ChatFinishReason? finish = null;
        await foreach (var u in client.GetStreamingResponseAsync(Conversation, options))
        {
            text.Append(u.Text);
            usage ??= u.Contents.OfType<UsageContent>().FirstOrDefault();
            finish ??= u.FinishReason;
        }
        Assert.Equal(whole, text.ToString());
        Assert.NotNull(usage);
        Assert.Equal(30, usage.Details.OutputTokenCount);
        Assert.Equal(ChatFinishReason.Length, finish);

        // a stop sequence taken from the middle of the reply cuts it there
        string stop = whole.Substring(whole.Length / 2, 2);
        var cut = await client.GetResponseAsync(Conversation, new ChatOptions { Seed = 3, MaxOutputTokens = 30, Temperature = 0f, StopSequences = [stop] });
        Assert.Equal(whole[..whole.IndexOf(stop, StringComparison.Ordinal)], cut.Text);
        Assert.Equal(ChatFinishReason.Stop, cut.FinishReason);
    }
}
