// The OpenAI-compatible surface through the two .NET stacks most apps use on top of the OpenAI client:
// Microsoft.Extensions.AI.OpenAI (an IChatClient over /v1) and Semantic Kernel's OpenAI connector. Each chats and
// streams; the seeded reply equals the in-process QuillChatClient's for the same settings, the stream adds up to the
// whole reply, and usage and the finish reason arrive as each library reports them.
using System.ClientModel;
using System.Text;
using Microsoft.Extensions.AI;
using Microsoft.SemanticKernel.ChatCompletion;
using Microsoft.SemanticKernel.Connectors.OpenAI;
using OpenAI;
using Quill.Server.Tests.Support;

namespace Quill.Server.Tests;

public sealed class DotnetClientTests
{
    private static async Task<string> InProcessAsync(ServedModel model, long seed, int maxTokens, float temperature)
    {
        using var client = new QuillChatClient(model);
        var r = await client.GetResponseAsync([new(ChatRole.System, "Be brief."), new(ChatRole.User, "Name a color.")],
            new ChatOptions { Seed = seed, MaxOutputTokens = maxTokens, Temperature = temperature });
        return r.Text;
    }

    [Fact]
    public async Task Microsoft_extensions_ai_openai_chats_and_streams()
    {
        var model = TinyModels.Served();
        await using var server = await TestServer.StartAsync(null, model);
        IChatClient client = server.Client.GetChatClient("tiny").AsIChatClient();
        Microsoft.Extensions.AI.ChatMessage[] messages = [new(ChatRole.System, "Be brief."), new(ChatRole.User, "Name a color.")];
        var options = new ChatOptions { Seed = 31, MaxOutputTokens = 20, Temperature = 1f };
        var response = await client.GetResponseAsync(messages, options);
        Assert.Equal(await InProcessAsync(model, 31, 20, 1f), response.Text);
        Assert.Equal(20, response.Usage!.OutputTokenCount);
        Assert.Equal(ChatFinishReason.Length, response.FinishReason);

        var text = new StringBuilder();
        int updates = 0;
        ChatFinishReason? finish = null;
        await foreach (var u in client.GetStreamingResponseAsync(messages, options))
        {
            text.Append(u.Text);
            updates++;
            finish ??= u.FinishReason;
        }
        Assert.Equal(response.Text, text.ToString());
        Assert.True(updates > 2, $"{updates} updates");
        Assert.Equal(ChatFinishReason.Length, finish);
    }

    [Fact]
    public async Task Semantic_kernel_openai_connector_chats_and_streams()
    {
        var model = TinyModels.Served();
        await using var server = await TestServer.StartAsync(null, model);
        var openai = new OpenAIClient(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(server.Address, "v1") });
        var chat = new OpenAIChatCompletionService("tiny", openai);
        var history = new ChatHistory("Be brief.");
        history.AddUserMessage("Name a color.");
#pragma warning disable SKEXP0010 // Seed is marked experimental in Semantic Kernel
        var settings = new OpenAIPromptExecutionSettings { Seed = 57, MaxTokens = 20, Temperature = 1 };
#pragma warning restore SKEXP0010
        var reply = await chat.GetChatMessageContentAsync(history, settings);
        Assert.Equal(await InProcessAsync(model, 57, 20, 1f), reply.Content);
        Assert.Equal("tiny", reply.ModelId);

        var text = new StringBuilder();
        int pieces = 0;
        await foreach (var piece in chat.GetStreamingChatMessageContentsAsync(history, settings))
        {
            text.Append(piece.Content);
            pieces++;
        }
        Assert.Equal(reply.Content, text.ToString());
        Assert.True(pieces > 2, $"{pieces} pieces");
    }
}
