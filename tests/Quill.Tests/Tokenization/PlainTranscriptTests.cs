// The plain transcript for models without a chat template: labels, trimmed contents and blank lines as documented,
// the reply cue, BOS only when asked, special-looking text kept as text, its stop strings ending a generated reply
// at the next turn (through the generator's stop handling) but not inside it, and the reply's leading space dropped.
using System.Text;
using Quill.Inference;
using Quill.Tokenization;
using Quill.Tokenization.ChatTemplates;

namespace Quill.Tests.Tokenization;

public sealed class PlainTranscriptTests
{
    private static readonly ChatMessage[] Conversation =
    [
        new("system", " Be brief. "),
        new("user", "Hi!\n"),
        new("assistant", "  Hello.\n\n"),
        new("user", "Two lines:\nhere."),
    ];

    [Fact]
    public void Renders_labels_trimmed_contents_blank_lines_and_the_cue()
    {
        Assert.Equal("System: Be brief.\n\nUser: Hi!\n\nAssistant: Hello.\n\nUser: Two lines:\nhere.\n\nAssistant:", PlainTranscript.Render(Conversation));
        Assert.Equal("System: Be brief.\n\nUser: Hi!\n\n", PlainTranscript.Render(Conversation[..2], addGenerationPrompt: false));
        Assert.Equal("User:\n\nAssistant:", PlainTranscript.Render([new ChatMessage("user", "   ")]));
    }

    [Fact]
    public void Unknown_role_names_the_message()
    {
        var e = Assert.Throws<InvalidConfigException>(() => PlainTranscript.Render([new ChatMessage("user", "a"), new ChatMessage("tool", "b")]));
        Assert.Contains("chat message 1", e.Message);
        Assert.Contains("\"tool\"", e.Message);
    }

    [Fact]
    public void Encodes_in_one_piece_with_bos_only_when_asked_and_specials_as_text()
    {
        var tok = BpeTrainer.Train(["User: Assistant: hello there"], new BpeTrainerOptions { VocabSize = 270, SpecialTokens = ["<|endoftext|>"], Threads = 1 });
        int special = tok.SpecialTokens["<|endoftext|>"];
        tok.BosId = special;
        ChatMessage[] messages = [new("user", "say <|endoftext|> please")];
        string text = PlainTranscript.Render(messages);
        int[] plain = PlainTranscript.Encode(tok, messages, addBos: false);
        Assert.Equal(tok.Encode(text), plain);
        Assert.DoesNotContain(special, plain);
        Assert.Equal(text, tok.Decode(plain));
        Assert.Equal([special, .. plain], PlainTranscript.Encode(tok, messages, addBos: true));
    }

    /// <summary>What the generator shows of a reply generated as these pieces, and whether a stop string ended it.</summary>
    private static (string Shown, bool Stopped) Generate(params string[] pieces)
    {
        var filter = new StopStringFilter(PlainTranscript.Stop);
        var shown = new StringBuilder();
        bool started = false;
        foreach (string piece in pieces)
        {
            string emit = filter.Push(piece);
            shown.Append(PlainTranscript.TrimReplyStart(emit, ref started));
            if (filter.Stopped) return (shown.ToString(), true);
        }
        shown.Append(PlainTranscript.TrimReplyStart(filter.Finish(), ref started));
        return (shown.ToString(), false);
    }

    [Theory]
    [InlineData("Red.", " Red", ".", "\n", "\n", "User", ": and blue?")]
    [InlineData("Red.", " Red.", "\nUser:", " more")]
    [InlineData("Red.", " Red.\n\nAssist", "ant: Blue.")]
    [InlineData("One.\n\nTwo.", " One.\n\nTwo.", "\nSystem: x")]
    public void Stop_strings_end_the_reply_at_the_next_turn(string reply, params string[] pieces)
    {
        var (shown, stopped) = Generate(pieces);
        Assert.True(stopped);
        Assert.Equal(reply, shown);
    }

    [Fact]
    public void A_label_inside_a_line_and_paragraphs_do_not_end_the_reply()
    {
        var (shown, stopped) = Generate(" The user: asked.", "\n\nA new ", "paragraph.", "\n");
        Assert.False(stopped);
        Assert.Equal("The user: asked.\n\nA new paragraph.\n", shown);
    }

    [Fact]
    public void Reply_start_drops_whitespace_across_pieces_then_keeps_it()
    {
        bool started = false;
        Assert.Equal("", PlainTranscript.TrimReplyStart(" ", ref started));
        Assert.False(started);
        Assert.Equal("Hi", PlainTranscript.TrimReplyStart("\n Hi", ref started));
        Assert.True(started);
        Assert.Equal(" there", PlainTranscript.TrimReplyStart(" there", ref started));
    }
}
