// BLEU and ROUGE on cases small enough to check by hand (the arithmetic is in the comments), sacreBLEU's 13a
// tokenizer on its rules one by one, and rouge-score's tokenizer. The nltk cross-check lives in
// fixtures/make_bleu_fixture.py (Debian's python3-nltk, where installed): nltk's corpus_bleu with method3 smoothing
// (NIST geometric, which is sacreBLEU's 'exp') on text that 13a leaves as it is.
using System.Text.Json;
using Quill.Evaluation;

namespace Quill.Tests.Evaluation;

public sealed class TextMetricsTests
{
    [Theory]
    [InlineData("Hello, world! It's 3.5-4 km.", "Hello , world ! It's 3.5 - 4 km .")]
    [InlineData("say &quot;hi&quot; &amp; go", "say \" hi \" & go")]
    [InlineData("1,000 people (roughly)", "1,000 people ( roughly )")]
    [InlineData("line one-\ncontinued\nnext<skipped>", "line onecontinued next")]
    [InlineData("a/b $5 {x} [y] @home", "a / b $ 5 { x } [ y ] @ home")]
    public void Tokenizer_13a_follows_its_rules(string input, string expected) => Assert.Equal(expected, TextMetrics.Tokenize13a(input));

    [Fact]
    public void Bleu_of_hand_checked_cases()
    {
        Assert.Equal(100, TextMetrics.Bleu(["the cat sat on the mat"], [["the cat sat on the mat"]]).Score, 1e-9);

        // hyp "the cat the cat" vs "the cat sat on the mat": unigrams 3/4 (the x2, cat clipped to 1), bigrams 1/3,
        // trigrams 0/2 -> exp smoothing 100/(2*2) = 25, 4-grams 0/1 -> 100/(4*1) = 25; BP = exp(1 - 6/4);
        // BLEU = exp(-0.5) * (75 * 33.33 * 25 * 25)^(1/4) = exp(-0.5) * 35.3553 = 21.4441
        var b = TextMetrics.Bleu(["the cat the cat"], [["the cat sat on the mat"]]);
        Assert.Equal([75, 100.0 / 3, 25, 25], b.Precisions, (x, y) => Math.Abs(x - y) < 1e-9);
        Assert.Equal(Math.Exp(-0.5), b.BrevityPenalty, 1e-12);
        Assert.Equal(Math.Exp(-0.5) * Math.Pow(75 * (100.0 / 3) * 25 * 25, 0.25), b.Score, 1e-9);
        Assert.Equal(21.4441, b.Score, 1e-4);

        // corpus level: counts add up over segments before the precisions are taken
        var c = TextMetrics.Bleu(["the cat sat on the mat", "the cat the cat"], [["the cat sat on the mat", "the cat sat on the mat"]]);
        Assert.Equal([90, 100.0 * 6 / 8, 100.0 * 4 / 6, 100.0 * 3 / 4], c.Precisions, (x, y) => Math.Abs(x - y) < 1e-9);
        Assert.Equal(Math.Exp(1 - 12.0 / 10), c.BrevityPenalty, 1e-12);

        Assert.Equal(0, TextMetrics.Bleu(["dog"], [["the cat"]]).Score); // no unigram matches
    }

    [Fact]
    public void Bleu_takes_the_closest_reference_length_and_the_shorter_on_ties()
    {
        // hyp of 4 words; references of 3 and 5 words are equally close: the shorter (3) is used, so no penalty
        var tie = TextMetrics.Bleu(["a b c d"], [["a b c"], ["a b c d e"]]);
        Assert.Equal(3, tie.ReferenceLength);
        Assert.Equal(1, tie.BrevityPenalty);
        var closest = TextMetrics.Bleu(["a b c d"], [["a b"], ["a b c d e"]]);
        Assert.Equal(5, closest.ReferenceLength);
        // clipping uses the largest count in any one reference: "a a" gets 2 unigram matches from a reference with two a's
        Assert.Equal(100, TextMetrics.Bleu(["a a"], [["a b"], ["a a"]]).Precisions[0]);
        Assert.Throws<InvalidConfigException>(() => TextMetrics.Bleu(["x", "y"], [["x"]]));
    }

    [Fact]
    public void Rouge_of_hand_checked_cases()
    {
        // tokens: the cat sat on the mat / the cat is on the mat
        var r1 = TextMetrics.RougeN("The cat sat on the mat.", "The cat is on the mat!", 1);
        Assert.Equal(5.0 / 6, r1.F, 1e-12);   // the x2, cat, on, mat
        var r2 = TextMetrics.RougeN("The cat sat on the mat.", "The cat is on the mat!", 2);
        Assert.Equal(3.0 / 5, r2.F, 1e-12);   // "the cat", "on the", "the mat"
        var rl = TextMetrics.RougeL("The cat sat on the mat.", "The cat is on the mat!");
        Assert.Equal(5.0 / 6, rl.F, 1e-12);   // the cat on the mat
        var asym = TextMetrics.RougeL("a b c d", "a c");
        Assert.Equal((1.0, 0.5), (asym.Precision, asym.Recall));
        Assert.Equal(2 * 0.5 / 1.5, asym.F, 1e-12);
        Assert.Equal(default, TextMetrics.RougeL("", "a"));
        Assert.Equal(["caf", "ber", "x2"], TextMetrics.RougeTokens("Café über X2!")); // non-ASCII letters vanish, as in rouge-score
    }

    [Fact]
    public void Bleu_equals_nltk_corpus_bleu_where_the_definitions_meet()
    {
        string path = Path.Combine(AppContext.BaseDirectory, "fixtures", "bleu", "nltk_reference.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            string[] hyps = [.. c.GetProperty("hypotheses").EnumerateArray().Select(x => x.GetString()!)];
            IReadOnlyList<string>[] refs = [.. c.GetProperty("references").EnumerateArray().Select(s => (IReadOnlyList<string>)[.. s.EnumerateArray().Select(x => x.GetString()!)])];
            double want = c.GetProperty("bleu").GetDouble();
            Assert.Equal(want, TextMetrics.Bleu(hyps, refs).Score, 1e-9 * Math.Max(1, want));
        }
    }
}
