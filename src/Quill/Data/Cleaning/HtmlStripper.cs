// Turns an HTML page into plain text: drops comments, the <head>, scripts, styles and boilerplate elements (nav,
// header, footer, aside, form... configurable) with everything inside them, turns block elements into line or
// paragraph breaks, removes all other tags, and decodes character references (&amp; &#233; &eacute; ...).
// A single forgiving pass: unclosed or misnested tags never throw.
// Does not handle: layout-based boilerplate detection (link density, text-to-tag ratio), or CDATA subtleties.
using System.Net;
using System.Text;

namespace Quill.Data.Cleaning;

/// <summary>Strips tags, scripts and boilerplate from HTML, keeping readable text with paragraph breaks.</summary>
public sealed class HtmlStripper
{
    /// <summary>Elements dropped with their content by default.</summary>
    public static readonly IReadOnlyList<string> DefaultDropElements =
        ["head", "script", "style", "noscript", "template", "svg", "nav", "header", "footer", "aside", "form", "button", "iframe", "select"];

    private static readonly HashSet<string> ParagraphTags = new(StringComparer.OrdinalIgnoreCase)
    {
        "p", "div", "section", "article", "main", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table",
        "ul", "ol", "dl", "figure", "hr", "body", "html",
    };

    private static readonly HashSet<string> LineTags = new(StringComparer.OrdinalIgnoreCase)
    {
        "br", "li", "tr", "dt", "dd", "figcaption", "caption", "title",
    };

    private static readonly HashSet<string> VoidTags = new(StringComparer.OrdinalIgnoreCase)
    {
        "br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source", "track", "wbr",
    };

    private readonly HashSet<string> drop;

    public HtmlStripper(IEnumerable<string>? dropElements = null)
    {
        drop = new HashSet<string>(dropElements ?? DefaultDropElements, StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>True when text looks like an HTML page rather than prose that mentions a tag.</summary>
    public static bool LooksLikeHtml(ReadOnlySpan<char> text)
    {
        ReadOnlySpan<char> head = text.TrimStart();
        head = head[..Math.Min(head.Length, 512)];
        return head.StartsWith("<!doctype html", StringComparison.OrdinalIgnoreCase)
            || head.StartsWith("<html", StringComparison.OrdinalIgnoreCase)
            || (head.StartsWith("<", StringComparison.Ordinal) && head.Contains("<body", StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>Plain text of an HTML document.</summary>
    public string Strip(string html)
    {
        ArgumentNullException.ThrowIfNull(html);
        var text = new StringBuilder(html.Length / 2);
        var pending = new StringBuilder();
        int dropDepth = 0;
        string? dropName = null;
        int i = 0;
        while (i < html.Length)
        {
            int lt = html.IndexOf('<', i);
            if (lt < 0) lt = html.Length;
            if (dropDepth == 0 && lt > i) pending.Append(html, i, lt - i);
            if (lt >= html.Length) break;

            if (string.CompareOrdinal(html, lt, "<!--", 0, 4) == 0)
            {
                int end = html.IndexOf("-->", lt + 4, StringComparison.Ordinal);
                i = end < 0 ? html.Length : end + 3;
                continue;
            }
            int gt = FindTagEnd(html, lt + 1);
            if (gt < 0)
            {
                // A lone '<' that opens no tag is text.
                if (dropDepth == 0) pending.Append('<');
                i = lt + 1;
                continue;
            }
            ReadTag(html, lt + 1, gt, out string name, out bool closing, out bool selfClosing);
            i = gt + 1;
            if (name.Length == 0)
            {
                continue; // <!doctype>, <?xml?>, stray punctuation tags
            }

            if (dropDepth > 0)
            {
                if (string.Equals(name, dropName, StringComparison.OrdinalIgnoreCase) && !selfClosing)
                {
                    dropDepth += closing ? -1 : 1;
                    if (dropDepth == 0) dropName = null;
                }
                continue;
            }
            if (!closing && !selfClosing && drop.Contains(name) && !VoidTags.Contains(name))
            {
                Flush(pending, text);
                dropDepth = 1;
                dropName = name;
                if (name.Equals("script", StringComparison.OrdinalIgnoreCase) || name.Equals("style", StringComparison.OrdinalIgnoreCase))
                {
                    // Raw-text elements: skip straight to the matching close tag, ignoring '<' inside.
                    int close = html.IndexOf("</" + name, i, StringComparison.OrdinalIgnoreCase);
                    int closeGt = close < 0 ? -1 : html.IndexOf('>', close);
                    i = closeGt < 0 ? html.Length : closeGt + 1;
                    dropDepth = 0;
                    dropName = null;
                }
                continue;
            }
            if (ParagraphTags.Contains(name))
            {
                Flush(pending, text);
                Break(text, "\n\n");
            }
            else if (LineTags.Contains(name))
            {
                Flush(pending, text);
                Break(text, "\n");
            }
            else if (name.Equals("td", StringComparison.OrdinalIgnoreCase) || name.Equals("th", StringComparison.OrdinalIgnoreCase))
            {
                pending.Append(' ');
            }
        }
        Flush(pending, text);
        return text.ToString().Trim();
    }

    private static void Flush(StringBuilder pending, StringBuilder text)
    {
        if (pending.Length == 0) return;
        string raw = pending.ToString();
        pending.Clear();
        // Inside HTML, runs of whitespace (including newlines) are one space.
        string decoded = WebUtility.HtmlDecode(raw);
        bool space = text.Length > 0 && !char.IsWhiteSpace(text[^1]);
        foreach (char c in decoded)
        {
            if (char.IsWhiteSpace(c) && c != '\u00A0')
            {
                space = text.Length > 0 && !char.IsWhiteSpace(text[^1]);
                continue;
            }
            if (space)
            {
                text.Append(' ');
                space = false;
            }
            text.Append(c);
        }
        if (space) text.Append(' ');
    }

    private static void Break(StringBuilder text, string kind)
    {
        while (text.Length > 0 && text[^1] == ' ') text.Length--;
        if (text.Length == 0) return;
        int have = 0;
        for (int k = text.Length - 1; k >= 0 && text[k] == '\n'; k--) have++;
        for (int k = have; k < kind.Length; k++) text.Append('\n');
    }

    // Index of the '>' closing a tag that starts after '<' at start, honouring quoted attribute values; -1 if the
    // '<' does not open a tag (e.g. "a < b", or no '>' within 8 KB).
    private static int FindTagEnd(string html, int start)
    {
        if (start >= html.Length) return -1;
        char first = html[start];
        if (!(char.IsAsciiLetter(first) || first == '/' || first == '!' || first == '?')) return -1;
        char quote = '\0';
        int limit = (int)Math.Min(html.Length, start + 8192L); // a tag longer than this is not a tag (keeps the scan linear)
        for (int k = start; k < limit; k++)
        {
            char c = html[k];
            if (quote != '\0')
            {
                if (c == quote) quote = '\0';
            }
            else if (c == '"' || c == '\'')
            {
                quote = c;
            }
            else if (c == '>')
            {
                return k;
            }
        }
        return -1;
    }

    private static void ReadTag(string html, int start, int gt, out string name, out bool closing, out bool selfClosing)
    {
        int k = start;
        closing = k < gt && html[k] == '/';
        if (closing) k++;
        selfClosing = gt > start && html[gt - 1] == '/';
        int nameStart = k;
        while (k < gt && (char.IsAsciiLetterOrDigit(html[k]) || html[k] == '-' || html[k] == ':')) k++;
        name = nameStart < gt && char.IsAsciiLetter(html[nameStart]) ? html[nameStart..k] : "";
    }
}
