// The generation side of detokenization: Tokenization.StreamingDecoder (whole UTF-8 characters, each token's
// text taken in the context of the token before it) started after a given token, so the first generated token
// reads as it would after the prompt (SentencePiece keeps its leading space). The server and the Generator use it.
// Does not handle: a prompt whose last token ends inside a UTF-8 character (its held-back bytes would join the
// first generated text); prompts encoded from valid text never do.
using Quill.Tokenization;

namespace Quill.Inference;

/// <summary>Incremental, UTF-8-safe detokenizer for generated tokens.</summary>
public sealed class TokenTextDecoder
{
    private readonly StreamingDecoder inner;

    /// <summary>previousToken: the token before the first one pushed (the prompt's last), or -1 for none.</summary>
    public TokenTextDecoder(ITokenizer tokenizer, int previousToken = -1)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        inner = new StreamingDecoder(tokenizer);
        if (previousToken >= 0) inner.Push(previousToken); // context only: its text belongs to the prompt
    }

    /// <summary>The text completed by this token (possibly empty while a character is incomplete).</summary>
    public string Push(int id) => inner.Push(id);

    /// <summary>Whatever is still held back (an incomplete character becomes U+FFFD).</summary>
    public string Flush() => inner.Flush();
}
