// Cleans one document, in this order: mojibake repair, HTML stripping, NFC, whitespace/control normalization,
// PII removal, then the quality filters. Each step is switched by CleanConfig. The result says whether the
// document was kept, or which filter removed it, plus what each step changed (for the report).
// One instance per thread (the quality filters keep scratch buffers). Deduplication is not done here: it needs
// every earlier document, so CleanPipeline does it in input order.
namespace Quill.Data.Cleaning;

/// <summary>What cleaning one document produced.</summary>
/// <param name="Text">The cleaned text (also when removed, for examples).</param>
/// <param name="RemovedBy">The filter that removed it ("empty" or a QualityFilters name), or null when kept.</param>
/// <param name="MojibakeRepairs">Mojibake sequences repaired.</param>
/// <param name="HtmlStripped">Whether HTML was stripped.</param>
/// <param name="Emails">E-mail addresses replaced.</param>
/// <param name="Phones">Phone numbers replaced.</param>
public sealed record CleanedDocument(string Text, string? RemovedBy, int MojibakeRepairs, bool HtmlStripped, int Emails, int Phones)
{
    public bool Kept => RemovedBy == null;
}

/// <summary>Applies the per-document cleaning steps of a CleanConfig.</summary>
public sealed class DocumentCleaner
{
    private readonly CleanConfig config;
    private readonly QualityFilters filters;
    private readonly HtmlStripper html;

    public DocumentCleaner(CleanConfig config)
    {
        this.config = config ?? throw new ArgumentNullException(nameof(config));
        filters = new QualityFilters(config.Quality);
        html = new HtmlStripper(config.Html.DropElements);
    }

    /// <summary>Cleans a decoded text; <paramref name="isHtml"/> marks an HTML input file.</summary>
    public CleanedDocument Clean(string text, bool isHtml = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        text = ReplaceLoneSurrogates(text);
        int repairs = 0;
        if (config.Decode.RepairMojibake) text = MojibakeRepair.Repair(text, out repairs);

        bool stripped = false;
        if (config.Html.Enabled && (isHtml || (config.Html.DetectInText && HtmlStripper.LooksLikeHtml(text))))
        {
            text = html.Strip(text);
            stripped = true;
        }
        if (config.Normalize.Nfc) text = UnicodeNfc.Normalize(text);
        if (config.Normalize.Whitespace) text = TextNormalizer.Normalize(text, config.Normalize.CollapseSpaces, config.Normalize.MaxBlankLines);

        int emails = 0, phones = 0;
        if (config.Pii.Enabled)
        {
            if (config.Pii.Emails) text = PiiScrubber.ScrubEmails(text, config.Pii.EmailReplacement, out emails);
            if (config.Pii.Phones) text = PiiScrubber.ScrubPhones(text, config.Pii.PhoneReplacement, out phones);
        }

        string? removedBy = string.IsNullOrWhiteSpace(text) ? "empty" : filters.Check(text);
        return new CleanedDocument(text, removedBy, repairs, stripped, emails, phones);
    }

    /// <summary>Replaces unpaired UTF-16 surrogates (from \ud800-style JSON escapes) with U+FFFD.</summary>
    public static string ReplaceLoneSurrogates(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int i = text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF');
        if (i < 0) return text;
        char[] chars = text.ToCharArray();
        for (; i < chars.Length; i++)
        {
            if (char.IsHighSurrogate(chars[i]) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1])) i++;
            else if (char.IsSurrogate(chars[i])) chars[i] = '\uFFFD';
        }
        return new string(chars);
    }
}
