// Turns one sequence's generated tokens into text pieces that are safe to send: the engine's TokenTextDecoder
// turns bytes into whole UTF-8 characters across token boundaries, and text that might be the start of a stop
// string is held back until it is known not to be. When a stop string appears, the text before it is released and
// the rest (the stop string and anything after it) is dropped.
// Does not handle: stop strings that span the prompt and the completion (only the completion is searched).
using System.Text;
using Quill.Inference;
using Quill.Tokenization;

namespace Quill.Server.Generation;

/// <summary>Incremental detokenizer with stop-string detection.</summary>
public sealed class TextAssembler
{
    private readonly TokenTextDecoder decoder;
    private readonly IReadOnlyList<string> stops;
    private readonly StringBuilder pending = new();
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
        this.stops = stops.Where(s => s.Length > 0).ToArray();
        this.trimStart = trimStart;
    }

    /// <summary>True once a stop string was found; later tokens are ignored.</summary>
    public bool Stopped { get; private set; }

    /// <summary>All text released so far.</summary>
    public StringBuilder Released { get; } = new();

    /// <summary>Adds a token; returns the text that can be released now (may be empty).</summary>
    public string Add(int token)
    {
        if (Stopped) return "";
        Append(decoder.Push(token));
        return Release(final: false);
    }

    /// <summary>Ends the sequence: flushes an incomplete character (as U+FFFD) and held-back text.</summary>
    public string Finish()
    {
        if (!Stopped) Append(decoder.Flush());
        return Release(final: true);
    }

    private void Append(string text)
    {
        int skip = 0;
        if (trimStart)
        {
            while (skip < text.Length && char.IsWhiteSpace(text[skip])) skip++;
            if (skip < text.Length) trimStart = false;
        }
        pending.Append(text, skip, text.Length - skip);
    }

    private string Release(bool final)
    {
        if (Stopped) return "";
        string text = pending.ToString();
        int cut = -1;
        // held-back text guarantees that a stop string never starts in text already released
        foreach (string s in stops)
        {
            int at = text.IndexOf(s, StringComparison.Ordinal);
            if (at >= 0 && (cut < 0 || at < cut)) cut = at;
        }
        if (cut >= 0)
        {
            Stopped = true;
            pending.Clear();
            string head = text[..cut];
            Released.Append(head);
            return head;
        }
        int hold = final ? 0 : HeldBack(text);
        string ready = text[..(text.Length - hold)];
        pending.Remove(0, ready.Length);
        Released.Append(ready);
        return ready;
    }

    /// <summary>Length of the longest tail of text that is a proper prefix of some stop string.</summary>
    private int HeldBack(string text)
    {
        int best = 0;
        foreach (string s in stops)
        {
            for (int len = Math.Min(s.Length - 1, text.Length); len > best; len--)
            {
                if (string.CompareOrdinal(text, text.Length - len, s, 0, len) == 0)
                {
                    best = len;
                    break;
                }
            }
        }
        // never split a surrogate pair
        if (best < text.Length && best > 0 && char.IsLowSurrogate(text[text.Length - best])) best++;
        return best;
    }
}
