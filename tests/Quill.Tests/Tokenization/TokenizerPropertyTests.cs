// FsCheck properties: byte-level tokenizers round-trip arbitrary Unicode text, the streaming decoder prints what
// Decode prints, and training is deterministic (also across thread counts).
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using Quill.Tests.Support;
using Quill.Tokenization;

namespace Quill.Tests.Tokenization;

public class TokenizerPropertyTests
{
    private static readonly Config Fast = Config.QuickThrowOnFailure.WithQuietOnSuccess(true).WithMaxTest(150);

    /// <summary>Strings of valid scalar values, weighted towards ASCII, whitespace and common scripts, with some astral characters.</summary>
    private static Arbitrary<string> UnicodeText()
    {
        Gen<int> cp = Gen.Frequency(new (int, Gen<int>)[]
        {
            (6, Gen.Choose(0x20, 0x7E)),
            (2, Gen.Elements(32, 10, 9, 13, 39, 48, 57)),
            (2, Gen.Choose(0xA0, 0x24F)),
            (1, Gen.Choose(0x370, 0x3FF)),
            (1, Gen.Choose(0x4E00, 0x4FFF)),
            (1, Gen.Choose(0xAC00, 0xAD00)),
            (1, Gen.Choose(0x1F300, 0x1F6FF)),
            (1, Gen.Choose(0, 0x10FFFF).Where(c => c is < 0xD800 or > 0xDFFF)),
        });
        Gen<string> text = Gen.ListOf(cp).Select(list =>
        {
            var sb = new StringBuilder();
            foreach (int c in list) sb.Append(char.ConvertFromUtf32(c));
            return sb.ToString();
        });
        return Arb.From(text);
    }

    [TestDataTheory("tiktoken/cl100k_base.tiktoken", "gpt2-tokenizer/encoder.json", "llama3-tokenizer/encoder.json")]
    [InlineData("r50k")]
    [InlineData("cl100k")]
    [InlineData("o200k")]
    [InlineData("gpt2")]
    [InlineData("llama3")]
    public void ByteLevelBpe_RoundTripsArbitraryUnicode(string name)
    {
        var tok = TokenizerFixtures.Get(name);
        Prop.ForAll(UnicodeText(), s => tok.Decode(tok.Encode(s)) == s).Check(Fast);
    }

    [Fact]
    public void ByteTokenizer_AndTrainedBpe_RoundTripArbitraryUnicode()
    {
        var bytes = new ByteTokenizer();
        var trained = BpeTrainer.Train(["hello world, the quick brown fox; 日本語のテキスト 12345 naïve café"], new BpeTrainerOptions { VocabSize = 320, Pattern = "o200k" });
        Prop.ForAll(UnicodeText(), s => bytes.Decode(bytes.Encode(s)) == s && trained.Decode(trained.Encode(s)) == s).Check(Fast);
    }

    [TestDataFact("llama2c/tokenizer.model")]
    public void SentencePieceWithByteFallback_RoundTrips()
    {
        var tok = TokenizerFixtures.Get("llama2-model");
        Prop.ForAll(UnicodeText(), s =>
        {
            string t = s.Replace('\u2581', ' ');
            return tok.Decode(tok.Encode(t)) == t;
        }).Check(Fast);
    }

    [TestDataFact("tiktoken/cl100k_base.tiktoken", "llama2c/tokenizer.model")]
    public void StreamingDecoder_PrintsWhatDecodePrints()
    {
        foreach (string name in new[] { "cl100k", "llama2-model" })
        {
            var tok = TokenizerFixtures.Get(name);
            Prop.ForAll(UnicodeText(), s =>
            {
                int[] ids = tok.Encode(s);
                var dec = new StreamingDecoder(tok);
                var sb = new StringBuilder();
                foreach (int id in ids) sb.Append(dec.Push(id));
                sb.Append(dec.Flush());
                return sb.ToString() == tok.Decode(ids);
            }).Check(Fast);
        }
    }

    [Fact]
    public void StreamingDecoder_HoldsBackIncompleteUtf8()
    {
        var tok = new ByteTokenizer();
        var dec = new StreamingDecoder(tok);
        Assert.Equal("", dec.Push(0xE6));
        Assert.Equal("", dec.Push(0x97));
        Assert.Equal("日", dec.Push(0xA5));
        Assert.Equal("", dec.Push(0xE6));
        Assert.Equal("\uFFFD", dec.Flush());
    }

    [Fact]
    public void Training_IsDeterministic_AcrossRunsAndThreads()
    {
        Prop.ForAll(UnicodeText(), s =>
        {
            string text = string.Concat(Enumerable.Repeat(s + "\n", 3));
            var a = BpeTrainer.Train([text], new BpeTrainerOptions { VocabSize = 300, Threads = 1, BlockChars = 1024 });
            var b = BpeTrainer.Train([text], new BpeTrainerOptions { VocabSize = 300, Threads = 2, BlockChars = 1024 });
            return a.Merges.SequenceEqual(b.Merges);
        }).Check(Config.QuickThrowOnFailure.WithQuietOnSuccess(true).WithMaxTest(40));
    }
}
