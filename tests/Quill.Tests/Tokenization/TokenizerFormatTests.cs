using System.Text;
using Quill.Tests.Support;
using Quill.Tokenization;

namespace Quill.Tests.Tokenization;

public sealed class TokenizerFormatTests : IDisposable
{
    private readonly string dir = Path.Combine(Path.GetTempPath(), $"quill-tokfmt-{Guid.NewGuid():N}");

    public TokenizerFormatTests() => Directory.CreateDirectory(dir);

    public void Dispose() => Directory.Delete(dir, true);

    private static BpeTokenizer Trained() =>
        BpeTrainer.Train(["The quick brown fox jumps over the lazy dog. 1234567 ünïcødé 日本語 <|eot|> the the the!"],
                         new BpeTrainerOptions { VocabSize = 300, Pattern = "cl100k", SpecialTokens = ["<|eot|>"] });

    [Fact]
    public void TrainedTokenizer_RoundTripsThroughAllThreeFormats()
    {
        var tok = Trained();
        const string text = "the lazy fox 123 ünï <|eot|>";
        int[] expected = tok.Encode(text, SpecialTokenSet.All);
        foreach (var (file, format) in new[] { ("t.json", TokenizerFormat.Quill), ("t.tiktoken", TokenizerFormat.Tiktoken), ("tokenizer.json", TokenizerFormat.HuggingFace) })
        {
            string path = Path.Combine(dir, file);
            Assert.Equal(format, TokenizerExport.GuessFormat(path));
            TokenizerExport.Save(tok, path, format);
            var loaded = TokenizerLoader.Load(path, "cl100k");
            if (format == TokenizerFormat.Tiktoken)
            {
                ((BpeTokenizer)loaded).AddSpecialToken("<|eot|>", tok.SpecialTokens["<|eot|>"]);
            }
            Assert.Equal(expected, loaded.Encode(text, SpecialTokenSet.All));
            Assert.Equal(text, loaded.Decode(expected));
        }
    }

    [Fact]
    public void HfWordPieceAndSpmStyleJson_Load()
    {
        string wp = Path.Combine(dir, "wp.json");
        File.WriteAllText(wp, """
            {"added_tokens":[{"id":0,"content":"[UNK]","special":true},{"id":1,"content":"[CLS]","special":true}],
             "normalizer":{"type":"BertNormalizer","lowercase":true},
             "model":{"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##",
               "vocab":{"[UNK]":0,"[CLS]":1,"hello":2,"world":3,"##s":4,"!":5,"cafe":6}}}
            """);
        var w = TokenizerLoader.Load(wp);
        Assert.Equal("wordpiece", w.Family);
        Assert.Equal([2, 3, 4, 5, 6, 0], w.Encode("Hello WORLDS! Café xyz"));
        Assert.Equal([1, 2], w.Encode("[CLS] hello", SpecialTokenSet.All));

        string spm = Path.Combine(dir, "spm.json");
        File.WriteAllText(spm, """
            {"added_tokens":[{"id":0,"content":"<unk>","special":true},{"id":1,"content":"<s>","special":true}],
             "normalizer":{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]},
             "model":{"type":"BPE","unk_token":"<unk>","byte_fallback":false,
               "vocab":{"<unk>":0,"<s>":1,"▁":2,"h":3,"i":4,"▁h":5,"▁hi":6},
               "merges":["▁ h","▁h i"]}}
            """);
        var s = TokenizerLoader.Load(spm);
        Assert.Equal("sentencepiece", s.Family);
        Assert.Equal([6, 5], s.Encode("hi h"));
        Assert.Equal("hi h", s.Decode([6, 5]));
        Assert.Equal([6, 2, 5], s.Encode("hi  h"));
    }
}
