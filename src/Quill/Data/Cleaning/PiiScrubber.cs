// Optional removal of personal data: e-mail addresses and phone numbers are replaced by placeholders
// ("<EMAIL>", "<PHONE>" by default). Phone numbers are digit groups joined by spaces, dots or dashes, with an
// optional +country code and (area code), holding 9 to 15 digits in all; a bare run of digits (a year, a number
// in a table) or a date like 1812-1815 is left alone.
// Does not handle: names, street addresses, ID numbers, IP addresses.
using System.Text.RegularExpressions;

namespace Quill.Data.Cleaning;

/// <summary>Replaces e-mail addresses and phone numbers with placeholders.</summary>
public static partial class PiiScrubber
{
    [GeneratedRegex(@"(?<![\w.+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}(?![\w-])", RegexOptions.CultureInvariant)]
    private static partial Regex EmailRegex();

    [GeneratedRegex(@"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}(?![\w])", RegexOptions.CultureInvariant)]
    private static partial Regex PhoneRegex();

    /// <summary>Replaces e-mail addresses; returns the text and how many were replaced.</summary>
    public static string ScrubEmails(string text, string replacement, out int count)
    {
        ArgumentNullException.ThrowIfNull(text);
        count = 0;
        if (!text.Contains('@', StringComparison.Ordinal)) return text;
        int n = 0;
        string result = EmailRegex().Replace(text, _ =>
        {
            n++;
            return replacement;
        });
        count = n;
        return result;
    }

    /// <summary>Replaces phone numbers (9 to 15 digits, grouped); returns the text and how many were replaced.</summary>
    public static string ScrubPhones(string text, string replacement, out int count)
    {
        ArgumentNullException.ThrowIfNull(text);
        int n = 0;
        string result = PhoneRegex().Replace(text, m =>
        {
            int digits = 0;
            foreach (char c in m.ValueSpan)
            {
                if (char.IsAsciiDigit(c)) digits++;
            }
            if (digits < 9 || digits > 15) return m.Value;
            n++;
            return replacement;
        });
        count = n;
        return n == 0 ? text : result;
    }
}
