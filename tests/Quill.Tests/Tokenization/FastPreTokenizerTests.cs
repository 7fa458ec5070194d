// The hand-written splitters against their reference twin (the .NET regex on the code-point proxy string).
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using Quill.Tokenization;

namespace Quill.Tests.Tokenization;

public class FastPreTokenizerTests
{
    private static Arbitrary<string> Tricky()
    {
        string[] atoms =
        [
            " ", "  ", "\n", "\r\n", "\t", "\u00A0", "'", "'s", "'S", "'ll", "'LL", "'Re", "a", "Z", "é", "É", "ǅ", "ʰ", "日", "本",
            "\u0301", "\u0903", "1", "٣", "²", "Ⅻ", "!", "?!", "/", "//", "-", "_", "🚀", "𝐀", "𝐚", "😶‍🌫️", "\u200B", "\u0085",
            "Hello", "WORLD", "camelCase", "JSONParser", "12345", "x/y", "...", "\u3000",
        ];
        Gen<string> text = Gen.ListOf(Gen.Elements(atoms)).Select(parts => string.Concat(parts));
        return Arb.From(text);
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("cl100k")]
    [InlineData("llama3")]
    [InlineData("o200k")]
    public void FastSplit_EqualsRegexSplit(string name)
    {
        var pre = PreTokenizerPatterns.Create(name);
        Assert.True(pre.HasFastPath);
        Prop.ForAll(Tricky(), s =>
        {
            var fast = new List<(int, int)>();
            var slow = new List<(int, int)>();
            pre.Split(s, fast);
            pre.SplitWithRegex(s, slow);
            return fast.SequenceEqual(slow);
        }).Check(Config.QuickThrowOnFailure.WithQuietOnSuccess(true).WithMaxTest(500));
    }
}
