// Tokenizers built from a plain VocabularyDescription, with no file format involved (Tokenization reads none):
// byte-level BPE applies its merges, WordPiece splits words into a start piece and continuations, SentencePiece
// finds its unknown token by type, out-of-range BOS/EOS ids are dropped, and a description that cannot make a
// tokenizer is an InvalidFileException naming its source.
using System.Text;
using Quill.Tokenization;

namespace Quill.Tests.Tokenization;

public sealed class VocabularyDescriptionTests
{
    private static byte[][] Utf8(params string[] tokens) => tokens.Select(Encoding.UTF8.GetBytes).ToArray();

    [Fact]
    public void Byte_level_bpe_applies_its_merges()
    {
        // ids 0..255: the bytes in GPT-2 byte spelling; 256: "ab"
        byte[][] tokens = [.. Enumerable.Range(0, 256).Select(b => Encoding.UTF8.GetBytes(ByteLevel.Encode((byte)b).ToString())), Encoding.UTF8.GetBytes("ab")];
        var tok = new VocabularyDescription
        {
            Source = "hand-made", Kind = VocabularyKind.Gpt2Bpe, Tokens = tokens, Merges = ["a b"], PreTokenizer = "gpt2", BosId = 256, EosId = 999,
        }.Build();
        Assert.Equal("bpe", tok.Family);
        Assert.Equal([256, 'a'], tok.Encode("aba"));
        Assert.Equal("aba", tok.Decode([256, 'a']));
        Assert.Equal(256, tok.BosId);
        Assert.Equal(-1, tok.EosId);
    }

    [Fact]
    public void Word_piece_splits_a_word_into_its_start_and_continuations()
    {
        var tok = new VocabularyDescription
        {
            Source = "hand-made", Kind = VocabularyKind.WordPiece, Tokens = Utf8("[UNK]", "\u2581hello", "\u2581world", "s"),
            TokenTypes = [PieceType.Unknown, PieceType.Normal, PieceType.Normal, PieceType.Normal],
        }.Build();
        Assert.Equal("wordpiece", tok.Family);
        Assert.Equal([1, 2, 3], tok.Encode("Hello worlds"));
        Assert.Equal([0], tok.Encode("xyz"));
    }

    [Fact]
    public void Sentence_piece_finds_its_unknown_token_by_type()
    {
        var tok = (SentencePieceTokenizer)new VocabularyDescription
        {
            Source = "hand-made", Kind = VocabularyKind.SentencePieceBpe, Tokens = Utf8("<unk>", "\u2581a", "b", "\u2581ab"),
            TokenTypes = [PieceType.Unknown, PieceType.Normal, PieceType.Normal, PieceType.Normal], Scores = [0f, -1f, -2f, -0.5f],
        }.Build();
        Assert.Equal(0, tok.UnkId);
        Assert.Equal([3], tok.Encode("ab"));
        Assert.Equal("ab", tok.Decode([3]));
    }

    [Fact]
    public void A_description_that_cannot_make_a_tokenizer_names_its_source()
    {
        var noUnknown = new VocabularyDescription { Source = "model.bin", Kind = VocabularyKind.SentencePieceBpe, Tokens = Utf8("\u2581a") };
        Assert.Contains("model.bin: SentencePiece vocabulary has neither byte pieces nor an unknown token", Assert.Throws<InvalidFileException>(noUnknown.Build).Message, StringComparison.Ordinal);
        var badPre = new VocabularyDescription { Source = "model.bin", Kind = VocabularyKind.Gpt2Bpe, Tokens = Utf8("a"), PreTokenizer = "nonesuch" };
        Assert.Contains("model.bin: pre-tokenizer \"nonesuch\"", Assert.Throws<InvalidFileException>(badPre.Build).Message, StringComparison.Ordinal);
        var mismatch = new VocabularyDescription { Source = "model.bin", Kind = VocabularyKind.WordPiece, Tokens = Utf8("[UNK]"), TokenTypes = [] };
        Assert.Contains("model.bin: 0 token types for 1 tokens", Assert.Throws<InvalidFileException>(mismatch.Build).Message, StringComparison.Ordinal);
    }
}
