// Allow-lists of special tokens for ITokenizer.Encode(text, allowedSpecial): None (the default, all special-looking
// text is plain text), All (every special token of the tokenizer), or an explicit set of token texts.
namespace Quill.Tokenization;

/// <summary>Helpers to build special-token allow-lists.</summary>
public static class SpecialTokenSet
{
    /// <summary>Allows no special token: special-looking text is encoded as plain text.</summary>
    public static readonly IReadOnlySet<string> None = new HashSet<string>();

    /// <summary>A marker set meaning "every special token of the tokenizer".</summary>
    public static readonly IReadOnlySet<string> All = new AllMarker();

    /// <summary>An explicit allow-list.</summary>
    public static IReadOnlySet<string> Of(params string[] tokens) => new HashSet<string>(tokens, StringComparer.Ordinal);

    private sealed class AllMarker : HashSet<string>
    {
    }
}
