// ChatSession (`quill chat`) on a model without a template: the prompt is the plain transcript with the system
// prompt and the history, the reply joins the history trimmed, and a second turn that reuses the KV cache answers
// exactly as a fresh session given the same history does.
using Quill.Inference;
using Quill.Models;
using Quill.Tokenization;
using Quill.Tests.Support;
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

/// <summary>A templated prompt is the whole rendered text encoded once (as HF's apply_chat_template and llama.cpp do),
/// the same ids `quill serve` builds; encoding piece by piece would give other ids with SentencePiece.</summary>
public sealed class TemplatedPromptTests
{
    [TestDataFact("llama2c/stories260K.bin", "llama2c/tok512.bin")]
    public void Prompt_is_the_rendered_conversation_encoded_in_one_piece()
    {
        using var model = ModelLoader.Load(TestData.PathOf("llama2c/stories260K.bin"), TestData.PathOf("llama2c/tok512.bin"));
        var template = ChatTemplate.Get("llama2-chat");
        var chat = new ChatSession(new Generator(new InferenceEngine(model)), template) { SystemPrompt = "Tell stories." };
        chat.Append(new ChatMessage("user", "Hi there"));
        chat.Append(new ChatMessage("assistant", "Once upon a time"));
        ChatMessage[] all = [new("system", "Tell stories."), new("user", "Hi there"), new("assistant", "Once upon a time"), new("user", "More please")];
        var tok = model.Tokenizer!;
        int[] whole = tok.Encode(template.Render(all, addGenerationPrompt: true).Text, SpecialTokenSet.All);
        int[] expected = model.AddBos && tok.BosId >= 0 ? [tok.BosId, .. whole] : whole;
        Assert.Equal(expected, chat.PromptIds("More please"));
        Assert.Equal(expected, template.EncodePrompt(tok, all, model.AddBos));
        // the case this guards: SentencePiece's dummy prefix makes piecewise encoding differ here
        Assert.NotEqual(expected, template.RenderTokens(tok, all, addGenerationPrompt: true, addBos: model.AddBos).Ids);
    }
}
