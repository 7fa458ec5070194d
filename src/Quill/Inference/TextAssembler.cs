// Turns one sequence's generated tokens into text pieces that are safe to show or send: the TokenTextDecoder turns
// bytes into whole UTF-8 characters across token boundaries, an optional trim drops the reply's leading whitespace,
// and the StopStringFilter holds back text that might start a stop string and ends the text at one. The Generator
// and the batch scheduler (Inference.Batching) both use it, so the two paths stop the same way.
// Does not handle: stop strings that span the prompt and the completion (only the completion is searched).
using System.Text;
using Quill.Tokenization;

namespace Quill.Inference;

/// <summary>Incremental detokenizer with stop-string detection.</summary>
public sealed class TextAssembler
{
    private readonly TokenTextDecoder decoder;
    private readonly StopStringFilter filter;
    private bool trimStart;

    /// <param name="tokenizer">Turns ids into bytes.</param>
    /// <param name="stops">Stop strings (empty ones are ignored).</param>
    /// <param name="previousToken">The prompt's last token (tokens decode in context), or -1.</param>
    /// <param name="trimStart">Drop whitespace before the first visible character (a chat reply after "Assistant:").</param>
    public TextAssembler(ITokenizer tokenizer, IReadOnlyList<string> stops, int previousToken = -1, bool trimStart = false)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(stops);
        decoder = new TokenTextDecoder(tokenizer, previousToken);
        filter = new StopStringFilter(stops);
        this.trimStart = trimStart;
    }

    /// <summary>True once a stop string was found; later tokens are ignored.</summary>
    public bool Stopped => filter.Stopped;

    /// <summary>All text released so far.</summary>
    public StringBuilder Released { get; } = new();

    /// <summary>Adds a token; returns the text that can be released now (may be empty).</summary>
    public string Add(int token)
    {
        if (Stopped) return "";
        return Take(filter.Push(Trim(decoder.Push(token))));
    }

    /// <summary>Ends the sequence: flushes an incomplete character (as U+FFFD) and held-back text.</summary>
    public string Finish()
    {
        if (Stopped) return "";
        string tail = filter.Push(Trim(decoder.Flush()));
        return Take(tail + filter.Finish());
    }

    private string Trim(string text)
    {
        if (!trimStart) return text;
        int skip = 0;
        while (skip < text.Length && char.IsWhiteSpace(text[skip])) skip++;
        if (skip < text.Length) trimStart = false;
        return text[skip..];
    }

    private string Take(string ready)
    {
        Released.Append(ready);
        return ready;
    }
}
