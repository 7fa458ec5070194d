// Turns a stream of generated token ids into text pieces that are always whole UTF-8 characters, whatever the
// tokenizer: a character split across byte-fallback tokens (<0xE2><0x80><0x99>) or byte-level BPE tokens comes out
// once all its bytes have arrived. Each token's bytes are taken in context (decode [previous, id] minus decode
// [previous]) so tokenizers that treat the first token specially (SentencePiece drops its leading space) give
// the same text as decoding the whole sequence at once.
// Does not handle: tokenizers whose decoding of a token depends on more than the token before it.
using System.Text;
using Quill.Tokenization;

namespace Quill.Inference;

/// <summary>Incremental, UTF-8-safe detokenizer.</summary>
public sealed class TokenTextDecoder
{
    private readonly ITokenizer tokenizer;
    private readonly Decoder utf8 = new UTF8Encoding(false, false).GetDecoder();
    private int previous;
    private char[] chars = new char[64];

    /// <summary>previousToken: the token before the first one pushed (the prompt's last), or -1 for none.</summary>
    public TokenTextDecoder(ITokenizer tokenizer, int previousToken = -1)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        this.tokenizer = tokenizer;
        previous = previousToken;
    }

    /// <summary>The text completed by this token (possibly empty while a character is incomplete).</summary>
    public string Push(int id)
    {
        byte[] bytes = BytesOf(id);
        previous = id;
        return Chars(bytes, flush: false);
    }

    /// <summary>Whatever is still held back (an incomplete character becomes U+FFFD).</summary>
    public string Flush() => Chars([], flush: true);

    private byte[] BytesOf(int id)
    {
        if (previous < 0) return tokenizer.DecodeBytes([id]);
        byte[] both = tokenizer.DecodeBytes([previous, id]);
        byte[] before = tokenizer.DecodeBytes([previous]);
        return both.AsSpan().StartsWith(before) ? both[before.Length..] : tokenizer.DecodeBytes([id]);
    }

    private string Chars(byte[] bytes, bool flush)
    {
        int need = utf8.GetCharCount(bytes, 0, bytes.Length, flush);
        if (chars.Length < need) chars = new char[Math.Max(need, chars.Length * 2)];
        int n = utf8.GetChars(bytes, 0, bytes.Length, chars, 0, flush);
        return new string(chars, 0, n);
    }
}
