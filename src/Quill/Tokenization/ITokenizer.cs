// The one interface every tokenizer family implements (char, byte, BPE, SentencePiece, WordPiece, ...).
// prepare, train, sample and the inference engine only see this interface.
namespace Quill.Tokenization;

/// <summary>Turns text into token ids and back.</summary>
public interface ITokenizer
{
    /// <summary>Number of ids the tokenizer can produce (ids are 0 .. VocabSize-1).</summary>
    int VocabSize { get; }

    /// <summary>A short name of the family ("char", "byte", "bpe", "sentencepiece", ...).</summary>
    string Family { get; }

    /// <summary>Encodes text without adding BOS/EOS; special-token text is treated as plain text.</summary>
    int[] Encode(string text);

    /// <summary>Decodes ids to text; throws QuillException for an id outside the vocabulary.</summary>
    string Decode(ReadOnlySpan<int> ids);

    /// <summary>Id of the beginning-of-sequence token, or -1 when the tokenizer has none.</summary>
    int BosId { get; }

    /// <summary>Id of the end-of-sequence / end-of-text token, or -1 when the tokenizer has none.</summary>
    int EosId { get; }

    /// <summary>Writes the tokenizer to a file that TokenizerLoader.Load reads back.</summary>
    void Save(string path);

    /// <summary>Special tokens by text (empty when the tokenizer has none).</summary>
    IReadOnlyDictionary<string, int> SpecialTokens => EmptySpecials.Instance;

    /// <summary>
    /// Encodes text; occurrences of the special tokens named in allowedSpecial become their ids, every other
    /// special-looking text stays plain text. Pass SpecialTokenSet.All to allow every special token.
    /// </summary>
    int[] Encode(string text, IReadOnlySet<string>? allowedSpecial) => Encode(text);

    /// <summary>Decodes ids to raw bytes (a token may hold part of a UTF-8 character).</summary>
    byte[] DecodeBytes(ReadOnlySpan<int> ids) => System.Text.Encoding.UTF8.GetBytes(Decode(ids));
}

internal static class EmptySpecials
{
    public static readonly IReadOnlyDictionary<string, int> Instance = new Dictionary<string, int>();
}
