using Quill.Tokenization;

namespace Quill.Tests.Tokenization;

public class CharByteTokenizerTests
{
    [Fact]
    public void Char_Train_SortsDistinctCharacters_AndRoundTrips()
    {
        var tok = CharTokenizer.Train(["hello", "world 🚀"]);
        Assert.Equal(" dehlorw🚀".EnumerateRunes().Count(), tok.VocabSize);
        Assert.Equal(" ", tok[0]);
        Assert.Equal("🚀", tok[tok.VocabSize - 1]);
        int[] ids = tok.Encode("hello 🚀");
        Assert.Equal(7, ids.Length);
        Assert.Equal("hello 🚀", tok.Decode(ids));
    }

    [Fact]
    public void Char_UnknownCharacter_Throws()
    {
        var tok = CharTokenizer.Train(["abc"]);
        var ex = Assert.Throws<InvalidTokenInputException>(() => tok.Encode("abz"));
        Assert.Contains("'z'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Char_SaveLoad_RoundTrips()
    {
        var tok = CharTokenizer.Train(["To be, or not to be: that is the question.\n"]);
        string path = Path.Combine(Path.GetTempPath(), $"quill-char-{Guid.NewGuid():N}.json");
        try
        {
            tok.Save(path);
            var loaded = TokenizerLoader.Load(path);
            Assert.Equal("char", loaded.Family);
            Assert.Equal(tok.VocabSize, loaded.VocabSize);
            Assert.Equal(tok.Encode("not to be"), loaded.Encode("not to be"));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Char_EndOfText_IsTheIdAfterTheLastCharacter_AndRoundTrips()
    {
        var tok = CharTokenizer.Train(["a story.", "<|x"], CharTokenizer.DefaultEndOfText);
        int chars = " .<a|orsty x".EnumerateRunes().Distinct().Count();
        Assert.Equal(chars + 1, tok.VocabSize);
        Assert.Equal(chars, tok.EosId);
        Assert.Equal(-1, tok.BosId);
        Assert.Equal(CharTokenizer.DefaultEndOfText, tok[tok.EosId]);
        Assert.Equal(tok.EosId, ((ITokenizer)tok).SpecialTokens[CharTokenizer.DefaultEndOfText]);
        // with the token allowed, its text becomes the id and decodes back
        string text = "a story.<|endoftext|>a story.";
        int[] ids = tok.Encode(text, SpecialTokenSet.All);
        Assert.Equal(8 + 1 + 8, ids.Length);
        Assert.Equal(tok.EosId, ids[8]);
        Assert.Equal(text, tok.Decode(ids));
        Assert.Equal(ids, tok.Encode(text, SpecialTokenSet.Of(CharTokenizer.DefaultEndOfText)));
        // the ids of the characters are those of the tokenizer without the token
        Assert.Equal(CharTokenizer.Train(["a story.", "<|x"]).Encode("a story."), tok.Encode("a story."));
        Assert.Equal(-1, CharTokenizer.Train(["abc"]).EosId);
        Assert.Equal(tok.EosId, CharTokenizer.Train(["a story.", "<|x"]).WithEndOfText().EosId);
    }

    [Fact]
    public void Char_EndOfText_IsNeverProducedByPlainText()
    {
        var tok = CharTokenizer.Train(["<|endoftext|> and more"], "<|endoftext|>");
        int[] plain = tok.Encode("<|endoftext|>");
        Assert.Equal(13, plain.Length);
        Assert.DoesNotContain(tok.EosId, plain);
        Assert.DoesNotContain(tok.EosId, tok.Encode("<|endoftext|>", SpecialTokenSet.None));
        Assert.DoesNotContain(tok.EosId, tok.Encode("<|endoftext|>", SpecialTokenSet.Of("<|other|>")));
        Assert.Equal("<|endoftext|>", tok.Decode(plain));
        // a tokenizer whose characters do not include the token's still refuses it as text
        var narrow = CharTokenizer.Train(["abc"], "<|endoftext|>");
        Assert.Throws<InvalidTokenInputException>(() => narrow.Encode("<|endoftext|>"));
        Assert.Equal([0, 1, narrow.EosId, 2], narrow.Encode("ab<|endoftext|>c", SpecialTokenSet.All));
        Assert.Throws<InvalidTokenInputException>(() => narrow.Decode([narrow.VocabSize]));
        Assert.Throws<InvalidConfigException>(() => CharTokenizer.Train(["abc"], ""));
    }

    [Fact]
    public void Char_EndOfText_IsSavedAndLoaded_AndOldFilesStillLoadWithoutIt()
    {
        string path = Path.Combine(Path.GetTempPath(), $"quill-char-eos-{Guid.NewGuid():N}.json");
        try
        {
            var tok = CharTokenizer.Train(["Once upon a time."], CharTokenizer.DefaultEndOfText);
            tok.Save(path);
            Assert.Contains("\"end_of_text\"", File.ReadAllText(path), StringComparison.Ordinal);
            var loaded = TokenizerLoader.Load(path);
            Assert.Equal(tok.VocabSize, loaded.VocabSize);
            Assert.Equal(tok.EosId, loaded.EosId);
            Assert.Equal(tok.Encode("time<|endoftext|>", SpecialTokenSet.All), loaded.Encode("time<|endoftext|>", SpecialTokenSet.All));
            // a file written before the token existed: no end_of_text field, no EOS, the same ids
            File.WriteAllText(path, "{\"quill_tokenizer\": 1, \"family\": \"char\", \"chars\": [\"a\", \"b\", \" \"]}");
            var old = TokenizerLoader.Load(path);
            Assert.Equal(3, old.VocabSize);
            Assert.Equal(-1, old.EosId);
            Assert.Empty(old.SpecialTokens);
            Assert.Equal([1, 0, 2], old.Encode("a b"));
            File.WriteAllText(path, "{\"quill_tokenizer\": 1, \"family\": \"char\", \"chars\": [\"a\"], \"end_of_text\": \"\"}");
            var ex = Assert.Throws<InvalidFileException>(() => TokenizerLoader.Load(path));
            Assert.Contains("end_of_text", ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Byte_EncodesUtf8_AndDecodesWithReplacement()
    {
        var tok = new ByteTokenizer();
        int[] ids = tok.Encode("é");
        Assert.Equal([0xC3, 0xA9], ids);
        Assert.Equal("é", tok.Decode(ids));
        Assert.Equal("\uFFFD", tok.Decode([0xC3]));
        Assert.Throws<InvalidTokenInputException>(() => tok.Decode([256]));
        Assert.Throws<InvalidTokenInputException>(() => tok.Encode("a\uD800b"));
    }

    [Fact]
    public void Byte_SaveLoad_RoundTrips()
    {
        string path = Path.Combine(Path.GetTempPath(), $"quill-byte-{Guid.NewGuid():N}.json");
        try
        {
            new ByteTokenizer().Save(path);
            Assert.Equal("byte", TokenizerLoader.Load(path).Family);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Loader_RejectsUnknownAndCorruptFiles()
    {
        string path = Path.Combine(Path.GetTempPath(), $"quill-bad-{Guid.NewGuid():N}.bin");
        try
        {
            File.WriteAllBytes(path, [0xFF, 0x00, 0x13, 0x37, 0x01]);
            var ex = Assert.Throws<InvalidFileException>(() => TokenizerLoader.Load(path));
            Assert.DoesNotContain('\n', ex.Message);
            File.WriteAllText(path, "{\"quill_tokenizer\": 1, \"family\": \"char\", \"chars\": [\"ab\"]}");
            Assert.Throws<InvalidFileException>(() => TokenizerLoader.Load(path));
            File.WriteAllText(path, "{\"quill_tokenizer\": 1, \"family\": \"char\", \"chars\": [");
            Assert.Throws<InvalidFileException>(() => TokenizerLoader.Load(path));
            File.WriteAllText(path, "");
            Assert.Throws<InvalidFileException>(() => TokenizerLoader.Load(path));
        }
        finally
        {
            File.Delete(path);
        }
        Assert.Throws<InvalidFileException>(() => TokenizerLoader.Load(path + ".missing"));
    }
}
