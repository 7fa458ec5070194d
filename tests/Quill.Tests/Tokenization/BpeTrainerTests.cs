using System.Text;
using Quill.Tests.Support;
using Quill.Tokenization;

namespace Quill.Tests.Tokenization;

public class BpeTrainerTests
{
    [TestDataFact("bpe-train-reference/corpus.en", "bpe-train-reference/train-bpe-reference-merges.txt")]
    public void Cs336Reference_MergesMatchExactly_AndVocabMatchesAsSets()
    {
        var options = new BpeTrainerOptions { VocabSize = 500, SpecialTokens = ["<|endoftext|>"], Pattern = "gpt2" };
        var tok = BpeTrainer.TrainFiles([TestData.PathOf("bpe-train-reference/corpus.en")], options);
        Assert.Equal(500, tok.VocabSize);
        string[] expected = File.ReadAllLines(TestData.PathOf("bpe-train-reference/train-bpe-reference-merges.txt"), Encoding.UTF8)
            .Where(l => l.Length > 0).ToArray();
        string[] got = tok.Merges.Select(m => ByteLevel.Encode(tok.TokenBytes(m.Left)) + " " + ByteLevel.Encode(tok.TokenBytes(m.Right))).ToArray();
        Assert.Equal(expected, got);

        var refVocab = System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(TestData.PathOf("bpe-train-reference/train-bpe-reference-vocab.json")))!;
        var refSet = refVocab.Keys.ToHashSet();
        var ours = Enumerable.Range(0, tok.VocabSize).Select(id => tok.IsSpecial(id) ? "<|endoftext|>" : ByteLevel.Encode(tok.TokenBytes(id))).ToHashSet();
        Assert.Equal(refSet.Count, ours.Count);
        Assert.Subset(refSet, ours);
    }

    [Fact]
    public void Wikipedia_Example_GivesExpectedIds()
    {
        // minbpe's example: "aaabdaaabac" with 3 merges encodes to [258, 100, 258, 97, 99] (token 258 = "aaab").
        var tok = BpeTrainer.Train(["aaabdaaabac"], new BpeTrainerOptions { VocabSize = 259, Pattern = @"[\s\S]+" });
        Assert.Equal("aaab", Encoding.ASCII.GetString(tok.TokenBytes(258)!));
        Assert.Equal([258, 100, 258, 97, 99], tok.Encode("aaabdaaabac"));
    }

    [Fact]
    public void VocabTooSmall_IsAOneLineError()
    {
        var ex = Assert.Throws<InvalidConfigException>(() => BpeTrainer.Train(["abc"], new BpeTrainerOptions { VocabSize = 256, SpecialTokens = ["<eos>"] }));
        Assert.Contains("257", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BlockwiseCounting_EqualsWholeText()
    {
        var sb = new StringBuilder();
        var rng = new Random(5);
        string[] words = ["the", "cat", "sat", "on", "mat", "Hello", "world", "  ", "\n", "\n\n", "!", "42", "naïve", "日本"];
        for (int i = 0; i < 20000; i++) sb.Append(words[rng.Next(words.Length)]).Append(rng.Next(3) == 0 ? "" : " ");
        string text = sb.ToString();
        var small = BpeTrainer.Train([text], new BpeTrainerOptions { VocabSize = 400, BlockChars = 1024, Threads = 2 });
        var whole = BpeTrainer.Train([text], new BpeTrainerOptions { VocabSize = 400, BlockChars = 1 << 22, Threads = 1 });
        Assert.Equal(whole.Merges, small.Merges);
    }
}
