// Whitespace and control-character normalization, in one pass over the text:
// - line breaks (\r\n, \r, U+0085, U+2028, U+2029) become \n;
// - control characters (other than \n and \t) and invisible format characters (zero-width space, BOM, soft hyphen,
//   word joiner) are removed;
// - Unicode spaces (no-break, en/em, ideographic...) and tabs inside a line become a plain space, and runs of
//   spaces inside a line collapse to one (leading indentation is kept when collapsing, tabs included);
// - trailing spaces on each line are removed, runs of blank lines shrink to at most MaxBlankLines, and blank lines
//   at the start and end of the document are removed.
// Does not handle: NFC (UnicodeNfc) or HTML (HtmlStripper); those run before it.
using System.Text;

namespace Quill.Data.Cleaning;

/// <summary>Normalizes line breaks, spaces and control characters.</summary>
public static class TextNormalizer
{
    /// <summary>Returns the normalized text.</summary>
    /// <param name="text">Input text.</param>
    /// <param name="collapseSpaces">Collapse runs of inner spaces to one.</param>
    /// <param name="maxBlankLines">Most consecutive blank lines kept.</param>
    public static string Normalize(string text, bool collapseSpaces = true, int maxBlankLines = 1)
    {
        ArgumentNullException.ThrowIfNull(text);
        var sb = new StringBuilder(text.Length);
        int blankRun = 0;
        bool lineHasText = false;
        bool atLineStart = true;
        int pendingSpaces = 0; // spaces seen inside a line, written only if text follows
        for (int i = 0; i < text.Length; i++)
        {
            if (IsOrdinary(text[i]))
            {
                // Fast path: copy a run of ordinary characters, and single spaces between them, at once.
                if (pendingSpaces > 0)
                {
                    sb.Append(' ', collapseSpaces ? 1 : pendingSpaces);
                    pendingSpaces = 0;
                }
                int start = i++;
                while (i < text.Length)
                {
                    char d = text[i];
                    if (IsOrdinary(d)) i++;
                    else if (d == ' ' && i + 1 < text.Length && IsOrdinary(text[i + 1])) i += 2;
                    else break;
                }
                sb.Append(text, start, i - start);
                lineHasText = true;
                atLineStart = false;
                i--;
                continue;
            }
            char c = text[i];
            if (c == '\r' || c == '\n' || c == '\u0085' || c == '\u2028' || c == '\u2029')
            {
                if (c == '\r' && i + 1 < text.Length && text[i + 1] == '\n') i++;
                EndLine(sb, ref lineHasText, ref blankRun, maxBlankLines);
                atLineStart = true;
                pendingSpaces = 0;
                continue;
            }
            if (c == '\t' && atLineStart)
            {
                sb.Append('\t');
                continue;
            }
            if (c == '\t' || IsSpace(c))
            {
                if (atLineStart) sb.Append(' ');
                else pendingSpaces++;
                continue;
            }
            if (IsRemovable(c)) continue;
            if (pendingSpaces > 0)
            {
                sb.Append(' ', collapseSpaces ? 1 : pendingSpaces);
                pendingSpaces = 0;
            }
            lineHasText = true;
            atLineStart = false;
            sb.Append(c);
        }
        EndLine(sb, ref lineHasText, ref blankRun, maxBlankLines);
        // Remove the trailing newlines (leading blank lines were never written).
        int end = sb.Length;
        while (end > 0 && sb[end - 1] == '\n') end--;
        sb.Length = end;
        return sb.ToString();
    }

    // Called at each line end. sb holds finished lines, each ending with '\n', followed by the current line.
    private static void EndLine(StringBuilder sb, ref bool lineHasText, ref int blankRun, int maxBlankLines)
    {
        if (!lineHasText)
        {
            // Blank line: drop its indentation; keep the newline only within the blank-line budget.
            int lineStart = sb.Length;
            while (lineStart > 0 && sb[lineStart - 1] != '\n') lineStart--;
            sb.Length = lineStart;
            if (sb.Length > 0 && blankRun < maxBlankLines) sb.Append('\n');
            if (sb.Length > 0) blankRun++;
            return;
        }
        while (sb.Length > 0 && (sb[^1] == ' ' || sb[^1] == '\t')) sb.Length--;
        sb.Append('\n');
        lineHasText = false;
        blankRun = 0;
    }

    // Neither a line break, a space, a tab, a control nor an invisible format character.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static bool IsOrdinary(char c)
    {
        if (c < '\u007F') return c > ' ';
        if (c < '\u00A0') return false;
        if (c < '\u1680') return c != '\u00A0' && c != '\u00AD';
        return !(IsSpace(c) || IsRemovable(c) || c == '\u2028' || c == '\u2029');
    }

    /// <summary>Unicode space separators other than the plain space.</summary>
    public static bool IsSpace(char c) =>
        c == ' ' || c == '\u00A0' || c == '\u1680' || (c >= '\u2000' && c <= '\u200A') || c == '\u202F' || c == '\u205F' || c == '\u3000'
        || c == '\v' || c == '\f';

    /// <summary>Control and invisible format characters removed from text.</summary>
    public static bool IsRemovable(char c) =>
        (c < ' ' && c != '\n' && c != '\t') || (c >= '\u007F' && c <= '\u009F')
        || c == '\u200B' || c == '\uFEFF' || c == '\u00AD' || c == '\u2060' || c == '\uFFFE' || c == '\uFFFF';
}
