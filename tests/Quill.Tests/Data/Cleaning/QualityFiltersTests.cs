using Quill.Data.Cleaning;

namespace Quill.Tests.Data.Cleaning;

public class QualityFiltersTests
{
    private static string? Check(string text, QualityConfig? cfg = null) => new QualityFilters(cfg ?? new QualityConfig()).Check(text);

    [Fact]
    public void Good_documents_pass_every_filter()
    {
        for (int seed = 0; seed < 20; seed++) Assert.Null(Check(TextSamples.Good(seed)));
    }

    public static TheoryData<string> FilterCases() => new(QualityFilters.FilterNames);

    // One document per filter, built so that this filter is the first to fail.
    private static (string Text, QualityConfig Config) Tripping(string filter)
    {
        var cfg = new QualityConfig();
        List<string> lines = TextSamples.Lines(7);
        string text;
        switch (filter)
        {
            case "too_short":
                text = string.Join(' ', lines[0].Split(' ').Take(20));
                break;
            case "too_long":
                cfg.MaxWords = 100;
                text = TextSamples.Good(7, 20);
                break;
            case "mean_word_length":
                text = string.Join('\n', TextSamples.Lines(7, word: _ => "internationalization"));
                break;
            case "symbol_ratio":
                text = string.Join('\n', lines.Select(l => "#tag #news " + l));
                break;
            case "bullet_lines":
                text = string.Join('\n', lines.Select(l => "- " + l));
                break;
            case "ellipsis_lines":
                text = string.Join('\n', lines.Select((l, i) => i % 2 == 0 ? l[..^1] + "..." : l));
                break;
            case "alpha_words":
                text = string.Join('\n', lines.Select(l => string.Join(' ', l.Split(' ').Select((w, i) => i % 3 == 0 ? "1234" : w))));
                break;
            case "stop_words":
                text = string.Join('\n', TextSamples.Lines(7).Select(l => string.Join(' ', l.Split(' ').Where(w => w is not ("the" or "of" or "and" or "with" or "to" or "that" or "The" or "Of" or "And" or "With" or "To" or "That")))));
                break;
            case "line_punctuation":
                text = string.Join('\n', lines.Select(l => l.TrimEnd('.')));
                break;
            case "lorem_ipsum":
                text = TextSamples.Good(7) + "\nLorem ipsum dolor sit amet.";
                break;
            case "curly_brace":
                cfg.CurlyBrace = true;
                text = TextSamples.Good(7) + "\nint main() { return 0; }";
                break;
            case "duplicate_lines":
                text = string.Join('\n', lines.Take(7).Concat(Enumerable.Repeat(lines[0], 4)));
                break;
            case "duplicate_paragraphs":
            {
                string shortPara = lines[0];
                string longA = string.Join('\n', TextSamples.Lines(100, 8));
                string longB = string.Join('\n', TextSamples.Lines(101, 8));
                text = string.Join("\n\n", [shortPara, longA, shortPara, longB, shortPara, shortPara]);
                break;
            }
            case "duplicate_line_chars":
            {
                string longLine = string.Join(' ', TextSamples.Lines(55, 1, 60));
                text = string.Join('\n', new[] { longLine }.Concat(lines).Concat([longLine, longLine]));
                break;
            }
            case "duplicate_paragraph_chars":
            {
                cfg.MaxDuplicateLineCharsFraction = null; // a duplicated paragraph duplicates its lines too
                string big = string.Join('\n', TextSamples.Lines(300, 8));
                var paras = new List<string> { big };
                for (int p = 0; p < 8; p++) paras.Add(string.Join('\n', TextSamples.Lines(400 + p, 2)));
                paras.Add(big);
                text = string.Join("\n\n", paras);
                break;
            }
            case "top_ngram":
                text = string.Join('\n', TextSamples.Lines(7, word: r => r.Next(2) == 0 ? "green apple" : "river" + r.Next(1000)));
                break;
            case "duplicate_ngram":
            {
                string phrase = "the painter carried a silver lantern over the old bridge to the quiet harbor";
                text = string.Join('\n', lines.Select((l, i) => i % 4 == 0 ? phrase + " " + l : l));
                break;
            }
            default:
                throw new ArgumentException(filter);
        }
        return (text, cfg);
    }

    [Theory]
    [MemberData(nameof(FilterCases))]
    public void Each_filter_trips_on_a_document_built_for_it(string filter)
    {
        (string text, QualityConfig cfg) = Tripping(filter);
        Assert.Equal(filter, Check(text, cfg));
    }

    [Theory]
    [MemberData(nameof(FilterCases))]
    public void Disabling_a_filter_lets_its_document_past_it(string filter)
    {
        (string text, QualityConfig cfg) = Tripping(filter);
        cfg.Disable.Add(filter);
        Assert.NotEqual(filter, Check(text, cfg));
    }

    [Fact]
    public void Quality_off_passes_everything()
    {
        Assert.Null(Check("x", new QualityConfig { Enabled = false }));
    }

    [Fact]
    public void Thresholds_decide_the_outcome()
    {
        string text = string.Join('\n', TextSamples.Lines(3).Select((l, i) => i % 5 == 0 ? l.TrimEnd('.') : l)); // 80% punctuated
        Assert.Null(Check(text, new QualityConfig { MinLinePunctuationFraction = 0.75 }));
        Assert.Equal("line_punctuation", Check(text, new QualityConfig { MinLinePunctuationFraction = 0.85 }));
        Assert.Null(Check(text, new QualityConfig { MinLinePunctuationFraction = null }));
    }
}
