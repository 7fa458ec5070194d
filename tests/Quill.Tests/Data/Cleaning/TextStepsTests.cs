using System.Text;
using System.Text.Json;
using Quill.Data.Cleaning;

namespace Quill.Tests.Data.Cleaning;

public class TextStepsTests
{
    [Fact]
    public void Nfc_matches_python_unicodedata_on_generated_cases()
    {
        string path = Path.Combine(AppContext.BaseDirectory, "fixtures", "data", "nfc_cases.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        int n = 0;
        foreach (JsonElement c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            string input = c.GetProperty("input").GetString()!;
            string expected = c.GetProperty("nfc").GetString()!;
            Assert.Equal(expected, UnicodeNfc.Normalize(input));
            n++;
        }
        Assert.True(n > 500);
    }

    [Fact]
    public void Nfc_composes_and_keeps_nfc_text_as_is()
    {
        Assert.Equal("\u00E9", UnicodeNfc.Normalize("e\u0301"));
        Assert.Equal("\uAC01", UnicodeNfc.Normalize("\u1100\u1161\u11A8"));
        const string plain = "Plain text, déjà vu.";
        Assert.Same(plain, UnicodeNfc.Normalize(plain));
    }

    [Fact]
    public void Decoding_detects_utf8_legacy_utf16_and_binary()
    {
        byte[] utf8 = Encoding.UTF8.GetBytes("naïve café");
        Assert.Equal("naïve café", TextDecoding.Decode(utf8, out bool legacy));
        Assert.False(legacy);
        byte[] cp1252 = TextDecoding.Windows1252.GetBytes("naïve café “quoted”");
        Assert.Equal("naïve café “quoted”", TextDecoding.Decode(cp1252, out legacy));
        Assert.True(legacy);

        byte[] le = Encoding.Unicode.GetBytes("hello world, plain text here");
        Assert.Equal(SniffedEncoding.Utf16LE, TextDecoding.Sniff(le));
        Assert.Equal(SniffedEncoding.Utf16BE, TextDecoding.Sniff(Encoding.BigEndianUnicode.GetBytes("hello world, plain text here")));
        Assert.Equal(SniffedEncoding.Utf16LE, TextDecoding.Sniff([0xFF, 0xFE, .. le]));
        Assert.Equal(SniffedEncoding.Utf8Bom, TextDecoding.Sniff([0xEF, 0xBB, 0xBF, .. utf8]));
        Assert.Equal(SniffedEncoding.Utf8OrLegacy, TextDecoding.Sniff(utf8));
        Assert.Equal(SniffedEncoding.Binary, TextDecoding.Sniff([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, 0x49, 0x48, 0x44, 0x52]));
    }

    [Theory]
    [InlineData("CafÃ© au lait", "Café au lait", 1)]
    [InlineData("Itâ€™s â€œfineâ€\u009d", "It’s “fine”", 3)]
    [InlineData("naÃƒÂ¯ve", "naïve", 3)] // encoded twice: two repairs, then one
    [InlineData("NÃO é possível", "NÃO é possível", 0)] // genuine Portuguese stays
    [InlineData("Ã followed by space", "Ã followed by space", 0)]
    public void Mojibake_is_repaired_only_when_unambiguous(string input, string expected, int repairs)
    {
        Assert.Equal(expected, MojibakeRepair.Repair(input, out int n));
        Assert.Equal(repairs, n);
    }

    [Fact]
    public void Html_is_stripped_of_tags_scripts_and_boilerplate()
    {
        const string html = """
            <!DOCTYPE html><html><head><title>T</title><style>p { color: red; }</style></head>
            <body><nav><a href="/">Home</a> | <a href="/x">About</a></nav>
            <script>var a = "<p>not text</p>";</script>
            <h1>Heading &amp; more</h1><p>First   paragraph with <b>bold</b> and caf&eacute; &#233;.</p>
            <!-- a comment <p>hidden</p> -->
            <ul><li>one</li><li>two</li></ul><p>a &lt; b</p>
            <footer>Copyright 2024</footer></body></html>
            """;
        string text = new HtmlStripper().Strip(html);
        Assert.Equal("Heading & more\n\nFirst paragraph with bold and café é.\n\none\ntwo\n\na < b", text);
        Assert.True(HtmlStripper.LooksLikeHtml(html));
        Assert.False(HtmlStripper.LooksLikeHtml("if a < b then <b> is bold"));
    }

    [Fact]
    public void Html_with_unclosed_tags_stays_linear_and_keeps_text()
    {
        string html = "<p>" + string.Concat(Enumerable.Repeat("a <b x=\"1 ", 20000));
        string text = new HtmlStripper().Strip(html);
        Assert.StartsWith("a <b x=\"1 a", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Whitespace_and_controls_are_normalized()
    {
        string input = "\n\n  Title\u00A0\u00A0line\t \r\n\r\n\r\n\r\nBody\u200B text\u0007 here   \r    indented\n\n\n";
        Assert.Equal("  Title line\n\nBody text here\n    indented", TextNormalizer.Normalize(input));
        Assert.Equal("a  b\n\n\nc", TextNormalizer.Normalize("a  b\n\n\nc", collapseSpaces: false, maxBlankLines: 2));
    }

    [Fact]
    public void Pii_emails_and_phones_are_replaced_but_years_and_dates_are_not()
    {
        string text = "Write to jane.doe+news@example.co.uk or call +1 (555) 123-4567 or 020 7946 0958. In 1812-1815 we had 300 ships.";
        string e = PiiScrubber.ScrubEmails(text, "<EMAIL>", out int emails);
        string p = PiiScrubber.ScrubPhones(e, "<PHONE>", out int phones);
        Assert.Equal(1, emails);
        Assert.Equal(2, phones);
        Assert.Equal("Write to <EMAIL> or call <PHONE> or <PHONE>. In 1812-1815 we had 300 ships.", p);
    }

    [Fact]
    public void Cleaner_applies_steps_in_order_and_reports_changes()
    {
        var cfg = new CleanConfig();
        cfg.Pii.Enabled = true;
        string good = TextSamples.Good(5);
        CleanedDocument d = new DocumentCleaner(cfg).Clean("<html><body><p>" + good.Replace("\n", "</p><p>", StringComparison.Ordinal) + " Mail bob@example.com and Itâ€™s.</p></body></html>");
        Assert.True(d.Kept, d.RemovedBy);
        Assert.True(d.HtmlStripped);
        Assert.Equal(1, d.Emails);
        Assert.Equal(1, d.MojibakeRepairs);
        Assert.Contains("<EMAIL> and It’s.", d.Text, StringComparison.Ordinal);
        Assert.Equal("empty", new DocumentCleaner(cfg).Clean(" \n\u200B\t").RemovedBy);
        Assert.Equal("a\uFFFDb", DocumentCleaner.ReplaceLoneSurrogates("a\uD800b"));
    }

    [Fact]
    public void Split_is_deterministic_and_near_the_fraction()
    {
        int val = 0;
        for (int i = 0; i < 20000; i++)
        {
            string id = "doc-" + i;
            bool v = DocumentSplit.IsValidation(id, 0.1);
            Assert.Equal(v, DocumentSplit.IsValidation(id, 0.1));
            if (v) val++;
            Assert.True(!DocumentSplit.IsValidation(id, 0.05) || v); // nested: a smaller fraction is a subset
        }
        Assert.InRange(val, 1800, 2200);
        Assert.Throws<InvalidConfigException>(() => DocumentSplit.IsValidation("x", 1.5));
    }
}
