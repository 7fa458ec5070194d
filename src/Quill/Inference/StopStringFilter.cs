// Stop strings over streamed text, the one implementation the Generator and the batch scheduler (through
// TextAssembler) share. Text is pushed piece by piece; what might still become a stop string is held back until it
// is known not to be, and when a stop string appears the text before it is released and the rest (the stop string
// and anything after it) is dropped. A piece released is never half of a UTF-16 surrogate pair: a held-back tail or
// a stop string that begins on the low half of a pair takes the whole character with it.
// Does not handle: tokens (see TextAssembler), stop strings across separate generations, case or Unicode
// normalization (matching is ordinal).
using System.Text;

namespace Quill.Inference;

/// <summary>Incremental stop-string detection on generated text.</summary>
public sealed class StopStringFilter
{
    private readonly string[] stops;
    private readonly StringBuilder pending = new();

    /// <param name="stops">Stop strings (empty ones are ignored).</param>
    public StopStringFilter(IReadOnlyList<string> stops)
    {
        ArgumentNullException.ThrowIfNull(stops);
        this.stops = stops.Where(s => !string.IsNullOrEmpty(s)).ToArray();
    }

    /// <summary>True once a stop string was found; later text is ignored.</summary>
    public bool Stopped { get; private set; }

    /// <summary>Adds text; returns what can be released now (may be empty).</summary>
    public string Push(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (Stopped) return "";
        pending.Append(text);
        return Release(final: false);
    }

    /// <summary>Ends the text: releases whatever was held back (unless a stop string was found).</summary>
    public string Finish() => Release(final: true);

    private string Release(bool final)
    {
        if (Stopped) return "";
        string text = pending.ToString();
        if (stops.Length == 0)
        {
            pending.Clear();
            return text;
        }
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
            // a stop string that starts on the low half of a pair drops the whole character
            if (cut > 0 && char.IsLowSurrogate(text[cut]) && char.IsHighSurrogate(text[cut - 1])) cut--;
            return text[..cut];
        }
        int hold = final ? 0 : HeldBack(text);
        string ready = text[..(text.Length - hold)];
        pending.Remove(0, ready.Length);
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
