// The plain chat layout is one layout: a conversation becomes the same prompt through `quill chat`'s path
// (Inference.ChatSession) and the server's (Inference.ChatLayout), the layout's plain stop strings end a reply at
// the next turn, and a templated model keeps its template. (That a greedy reply is the same text through both is
// checked end to end in Quill.Server.Tests.ChatReplyParityTests.)
using Quill.Inference;
using Quill.Tests.Support;
using Quill.Tokenization.ChatTemplates;

namespace Quill.Tests.Inference;

public sealed class ChatLayoutTests
{
    private const string System = "  You are brief.\n";
    private static readonly string[] Turns = ["Hi there!", " Hello. ", "Who are you?\nTell me."];

    private static IEnumerable<ChatTurn> ServerTurns()
    {
        yield return new ChatTurn("system", System);
        for (int i = 0; i < Turns.Length; i++) yield return new ChatTurn(i % 2 == 0 ? "user" : "assistant", Turns[i]);
    }

    /// <summary>A ChatSession whose history holds the turns before the last user message (as if they had been chatted).</summary>
    private static ChatSession CliSession(InferenceModel model)
    {
        var session = new ChatSession(new Generator(new InferenceEngine(model))) { SystemPrompt = System };
        for (int i = 0; i < Turns.Length - 1; i++) session.Append(new ChatMessage(i % 2 == 0 ? "user" : "assistant", Turns[i]));
        return session;
    }

    [Fact]
    public void Cli_and_server_render_the_same_conversation_byte_for_byte()
    {
        using var model = TinyModels.Inference();
        var tok = model.Tokenizer!;
        int[] cli = CliSession(model).PromptIds(Turns[^1]);
        var layout = new ChatLayout(tok, model.ChatTemplate, model.Spec.Arch, model.AddBos);
        int[] server = layout.Encode([.. ServerTurns()]);
        Assert.True(layout.IsPlain);
        Assert.Equal(cli, server);
        const string expected = "System: You are brief.\n\nUser: Hi there!\n\nAssistant: Hello.\n\nUser: Who are you?\nTell me.\n\nAssistant:";
        Assert.Equal(expected, tok.Decode(server));
        Assert.Equal(expected, tok.Decode(cli));
    }

    [Fact]
    public void Cli_and_server_stop_at_the_same_strings()
    {
        using var model = TinyModels.Inference();
        var layout = new ChatLayout(model.Tokenizer!, null, model.Spec.Arch, model.AddBos);
        var session = new ChatSession(new Generator(new InferenceEngine(model)));
        Assert.Equal(PlainTranscript.Stop, layout.StopStrings);
        Assert.Equal(PlainTranscript.Stop, session.StopStrings);
        Assert.Equal(layout.Name, session.FormatName);
    }

    [Fact]
    public void Server_plain_stops_end_a_reply_at_the_next_turn()
    {
        using var model = TinyModels.Inference();
        var tok = model.Tokenizer!;
        var layout = new ChatLayout(tok, null, null, addBos: false);
        foreach (var (generated, reply) in new[]
        {
            (" Red.\n\nUser: and blue?", "Red."),
            (" Red.\nUser: and blue?", "Red."),
            (" Red.\n\nAssistant: Blue.", "Red."),
            (" One.\n\nTwo.\nSystem: x", "One.\n\nTwo."),
            (" A user: is not a turn.", "A user: is not a turn."),
        })
        {
            var a = new TextAssembler(tok, layout.StopStrings, -1, trimStart: layout.IsPlain);
            foreach (int id in tok.Encode(generated)) a.Add(id);
            a.Finish();
            Assert.Equal(reply, a.Released.ToString());
        }
    }

    [Fact]
    public void A_templated_model_keeps_its_template_on_both_paths()
    {
        using var model = TinyModels.Inference();
        var tok = model.Tokenizer!;
        const string chatml = "{% for message in messages %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{% endfor %}";
        var layout = new ChatLayout(tok, chatml, null, addBos: false);
        Assert.Equal("chatml", layout.Name);
        Assert.False(layout.IsPlain);
        Assert.Equal(ChatTemplate.Get("chatml").Stop, layout.StopStrings);
        var session = new ChatSession(new Generator(new InferenceEngine(model)), ChatTemplate.Get("chatml"));
        Assert.Equal("chatml", session.FormatName);
        string rendered = ChatTemplate.Get("chatml").Render([new ChatMessage("user", "Hi")]).Text;
        Assert.Equal(rendered, tok.Decode(session.PromptIds("Hi")));
        Assert.Equal(rendered, tok.Decode(layout.Encode([new ChatTurn("user", "Hi")])));
        Assert.Equal(ChatTemplate.Get("chatml").EncodePrompt(tok, [new ChatMessage("user", "Hi")], addBos: false), layout.Encode([new ChatTurn("user", "Hi")]));
        Assert.Equal(session.PromptIds("Hi"), layout.Encode([new ChatTurn("user", "Hi")]));
    }
}
