// The per-sequence detokenizer (the Generator's and the batch scheduler's): a character split over byte tokens
// comes out once, whole; text that may start a stop string is held back and released when it turns out not to be
// one; a stop string ends the text before it; no piece ever holds half a surrogate pair.
using Quill.Inference;
using Quill.Tokenization;

namespace Quill.Tests.Inference;

public sealed class TextAssemblerTests
{
    private static readonly ByteTokenizer Bytes = new();

    private static List<string> Feed(TextAssembler a, string text)
    {
        var pieces = Bytes.Encode(text).Select(a.Add).ToList();
        pieces.Add(a.Finish());
        return pieces;
    }

    [Fact]
    public void Multibyte_character_split_over_tokens_comes_out_whole()
    {
        var a = new TextAssembler(Bytes, []);
        var pieces = Feed(a, "aé€");
        Assert.Equal(["a", "", "é", "", "", "€", ""], pieces);
        Assert.Equal("aé€", a.Released.ToString());
    }

    [Fact]
    public void Possible_stop_prefix_is_held_back_then_released()
    {
        var a = new TextAssembler(Bytes, ["abc"]);
        var pieces = Feed(a, "xabz");
        Assert.Equal(["x", "", "", "abz", ""], pieces);
        Assert.False(a.Stopped);
    }

    [Fact]
    public void Stop_string_ends_the_text_before_it()
    {
        var a = new TextAssembler(Bytes, ["END", "zz"]);
        var pieces = Feed(a, "hello ENDING");
        Assert.True(a.Stopped);
        Assert.Equal("hello ", string.Concat(pieces));
        Assert.Equal("hello ", a.Released.ToString());
    }

    [Fact]
    public void Trim_start_drops_leading_whitespace_only()
    {
        var a = new TextAssembler(Bytes, [], trimStart: true);
        Assert.Equal("hi there", string.Concat(Feed(a, "  hi there")));
    }

    [Fact]
    public void Incomplete_character_at_the_end_becomes_a_replacement_character()
    {
        var a = new TextAssembler(Bytes, []);
        Assert.Equal("", a.Add(0xE2));
        Assert.Equal("\uFFFD", a.Finish());
    }

    [Fact]
    public void A_stop_string_that_starts_inside_a_character_never_splits_it()
    {
        // "\uDE00" is the low half of U+1F600; a client can send such a stop string (JSON allows lone escapes)
        var held = new TextAssembler(Bytes, ["\uDE00!"]);
        var pieces = Feed(held, "\U0001F600\U0001F600.");
        Assert.All(pieces, p => Assert.False(p.Length > 0 && (char.IsHighSurrogate(p[^1]) || char.IsLowSurrogate(p[0])), $"half a pair in '{p}'"));
        Assert.Equal("\U0001F600\U0001F600.", string.Concat(pieces));

        var cut = new TextAssembler(Bytes, ["\uDE00"]);
        pieces = Feed(cut, "ab\U0001F600c");
        Assert.True(cut.Stopped);
        Assert.Equal("ab", string.Concat(pieces));
    }
}
