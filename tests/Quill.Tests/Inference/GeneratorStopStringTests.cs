// The Generator's stop strings go through the one stop-string implementation (TextAssembler / StopStringFilter),
// so a piece of text it yields is never half of a UTF-16 surrogate pair: a model that can only say U+1F600 and a
// stop string that starts with that character's low half (a client may send one) must hold the whole emoji back,
// and a stop string found inside the emoji must drop it whole. The Generator's earlier copy of the logic yielded
// the lone high surrogate in both cases.
using Quill.Inference;
using Quill.Tests.Support;

namespace Quill.Tests.Inference;

public sealed class GeneratorStopStringTests
{
    private const int Emoji = 0x1F600; // "\U0001F600" = "\uD83D\uDE00"

    private static List<GeneratedToken> Run(IReadOnlyList<string> stops, int maxTokens)
    {
        using var model = TinyModels.OneCharacter(Emoji);
        var generator = new Generator(new InferenceEngine(model));
        var options = new GenerationOptions { MaxTokens = maxTokens, StopStrings = stops, Sampling = new SamplingOptions { Temperature = 0 } };
        return generator.Generate(generator.EncodePrompt("\U0001F600"), options).ToList();
    }

    private static void AssertWholeCharacters(IEnumerable<GeneratedToken> tokens)
    {
        foreach (var t in tokens)
        {
            string s = t.Text;
            if (s.Length == 0) continue;
            Assert.False(char.IsLowSurrogate(s[0]), $"a piece starts with a low surrogate: U+{(int)s[0]:X4}");
            Assert.False(char.IsHighSurrogate(s[^1]), $"a piece ends with a high surrogate: U+{(int)s[^1]:X4}");
        }
    }

    [Fact]
    public void A_possible_stop_string_holds_back_the_whole_emoji()
    {
        var tokens = Run(["\uDE00!"], maxTokens: 3);
        AssertWholeCharacters(tokens);
        Assert.Equal(string.Concat(Enumerable.Repeat("\U0001F600", 3)), string.Concat(tokens.Select(t => t.Text)));
    }

    [Fact]
    public void A_stop_string_inside_the_emoji_drops_it_whole()
    {
        var tokens = Run(["\uDE00"], maxTokens: 3);
        AssertWholeCharacters(tokens);
        Assert.Equal("", string.Concat(tokens.Select(t => t.Text)));
    }
}
