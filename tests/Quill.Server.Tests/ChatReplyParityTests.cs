// A greedy reply is the same text in the terminal (Inference.ChatSession, `quill chat`) and from the server
// (QuillChatClient over the scheduler), turn after turn, and the server's reply starts after the cue's space.
// The layout itself (same prompt ids, same stop strings) is tested in Quill.Tests.Inference.ChatLayoutTests.
using Microsoft.Extensions.AI;
using Quill.Inference;
using Quill.Server.Tests.Support;

namespace Quill.Server.Tests;

public sealed class ChatReplyParityTests
{
    [Fact]
    public async Task A_greedy_reply_is_the_same_text_in_the_terminal_and_from_the_server()
    {
        var served = TinyModels.Served();
        using var client = new QuillChatClient(served);
        var engineModel = TinyModels.Inference();
        var session = new ChatSession(new Generator(new InferenceEngine(engineModel))) { SystemPrompt = "Be brief." };
        for (int turn = 0; turn < 2; turn++)
        {
            string question = turn == 0 ? "Name a color." : "And another?";
            var text = new System.Text.StringBuilder();
            await foreach (var t in session.SendAsync(question, new GenerationOptions { MaxTokens = 24, Sampling = new SamplingOptions { Temperature = 0 } }))
                text.Append(t.Text);
            var conversation = new List<Microsoft.Extensions.AI.ChatMessage> { new(ChatRole.System, "Be brief.") };
            conversation.AddRange(session.Messages.SkipLast(1).Select(m => new Microsoft.Extensions.AI.ChatMessage(m.Role == "user" ? ChatRole.User : ChatRole.Assistant, m.Content)));
            var response = await client.GetResponseAsync(conversation, new ChatOptions { Temperature = 0, MaxOutputTokens = 24 });
            Assert.Equal(response.Text, text.ToString());
            Assert.Equal(response.Text.Trim(), session.Messages[^1].Content);
            Assert.False(response.Text.Length > 0 && char.IsWhiteSpace(response.Text[0]), "the reply should start after the cue's space");
        }
        engineModel.Dispose();
        served.Dispose();
    }
}
