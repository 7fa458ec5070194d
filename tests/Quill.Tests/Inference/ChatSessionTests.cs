// ChatSession (`quill chat`) on a model without a template: the prompt is the plain transcript with the system
// prompt and the history, the reply joins the history trimmed, and a second turn that reuses the KV cache answers
// exactly as a fresh session given the same history does.
using Quill.Inference;
using Quill.Models;
using Quill.Tokenization;
using Quill.Tokenization.ChatTemplates;

namespace Quill.Tests.Inference;

public sealed class ChatSessionTests
{
    private static InferenceModel TinyModel()
    {
        var tok = new CharTokenizer(Enumerable.Range(32, 95).Append('\n'));
        var config = new ModelConfig { Arch = "gpt2", VocabSize = tok.VocabSize, NLayer = 2, NHead = 2, NEmbd = 32, BlockSize = 256 };
        var model = ModelLoader.FromLanguageModel(LanguageModel.Create(config, seed: 3));
        model.Tokenizer = tok;
        return model;
    }

    private static readonly GenerationOptions Greedy = new() { MaxTokens = 12, Sampling = new SamplingOptions { Temperature = 0 } };

    private static async Task<string> Say(ChatSession chat, string message)
    {
        var text = new System.Text.StringBuilder();
        await foreach (var t in chat.SendAsync(message, Greedy)) text.Append(t.Text);
        return text.ToString();
    }

    [Fact]
    public async Task Plain_session_prompts_with_the_transcript_and_reuses_its_cache()
    {
        using var model = TinyModel();
        var chat = new ChatSession(new Generator(new InferenceEngine(model))) { SystemPrompt = "Be brief." };
        Assert.Null(chat.Template);
        Assert.Equal("plain", chat.FormatName);
        Assert.Equal(PlainTranscript.Stop, chat.StopStrings);
        Assert.Equal("System: Be brief.\n\nUser: Hi\n\nAssistant:", model.Tokenizer!.Decode(chat.PromptIds("Hi")));

        string first = await Say(chat, "Hi");
        Assert.Equal(first.Trim(), chat.Messages[^1].Content);
        ChatMessage[] history = [new("system", "Be brief."), new("user", "Hi"), new("assistant", first.Trim()), new("user", "More")];
        Assert.Equal(PlainTranscript.Render(history), model.Tokenizer.Decode(chat.PromptIds("More")));
        string second = await Say(chat, "More");

        var fresh = new ChatSession(new Generator(new InferenceEngine(model))) { SystemPrompt = "Be brief." };
        fresh.Append(new ChatMessage("user", "Hi"));
        fresh.Append(new ChatMessage("assistant", first));
        Assert.Equal(second, await Say(fresh, "More"));
        Assert.Equal(4, chat.Messages.Count);
    }

    [Fact]
    public void Only_user_and_assistant_messages_join_the_history()
    {
        using var model = TinyModel();
        var chat = new ChatSession(new Generator(new InferenceEngine(model)));
        var e = Assert.Throws<InvalidConfigException>(() => chat.Append(new ChatMessage("system", "x")));
        Assert.Contains("SystemPrompt", e.Message);
    }
}
