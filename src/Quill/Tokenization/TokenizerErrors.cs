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
    /// <summary>
    /// Unused ids a vocabulary file may leave (gaps in the ids or ranks, in all). A file's tables are sized by its
    /// largest id, so without a bound one edited number would make a few-kilobyte file allocate gigabytes.
    /// </summary>
    public const int MaxIdHoles = 65_536;

    /// <summary>The largest of a file's token ids, checked: no id negative, none past the listed count plus MaxIdHoles.</summary>
    public static int MaxFileId(string path, IEnumerable<int> ids, int listed)
    {
        int max = -1;
        foreach (int id in ids)
        {
            if (id < 0 || id >= (long)listed + MaxIdHoles)
                throw new InvalidFileException($"{path}: token id {id} is out of range for a file that lists {listed} tokens (ids must lie in 0..{(long)listed + MaxIdHoles - 1}).");
            max = Math.Max(max, id);
        }
        return max;
    }

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
