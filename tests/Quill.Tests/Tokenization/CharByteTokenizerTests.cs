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
