// Shared one-line errors for the tokenizers: ids outside the vocabulary, text that is not valid Unicode.
// Kept in one place so every family words them the same way.
using System.Text;

namespace Quill.Tokenization;

/// <summary>Input that a tokenizer cannot handle: invalid UTF-8, a lone surrogate, an id outside the vocabulary.</summary>
public class InvalidTokenInputException : QuillException
{
    public InvalidTokenInputException() { }

    public InvalidTokenInputException(string message) : base(message) { }

    public InvalidTokenInputException(string message, Exception innerException) : base(message, innerException) { }
}

internal static class TokenizerErrors
{
    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Throws when id is outside [0, vocabSize).</summary>
    public static void CheckId(int id, int vocabSize, int position)
    {
        if ((uint)id >= (uint)vocabSize)
            throw new InvalidTokenInputException($"token id {id} at position {position} is outside the vocabulary (0..{vocabSize - 1}); use ids from this tokenizer.");
    }

    /// <summary>Strict UTF-8 encoding of text; throws for a lone surrogate.</summary>
    public static byte[] ToUtf8(string text)
    {
        try
        {
            return Strict.GetBytes(text);
        }
        catch (EncoderFallbackException ex)
        {
            throw new InvalidTokenInputException($"input text holds a lone UTF-16 surrogate at index {ex.Index}; pass valid Unicode text.", ex);
        }
    }
}
