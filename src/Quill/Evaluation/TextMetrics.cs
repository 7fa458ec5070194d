// Corpus BLEU as sacreBLEU computes it with its defaults, and ROUGE-1 / ROUGE-2 / ROUGE-L F-measure as Google's
// rouge-score computes it with its defaults (../shared/research/wave2-facts.md 4.3 and 4.4).
// BLEU: the 13a tokenizer (drop "<skipped>", join "-\n", newlines to spaces, unescape &quot; &amp; &lt; &gt;, split
// punctuation and symbols, split . and , unless between digits, split a dash after a digit), case kept, n-grams 1-4
// clipped by the largest count in any one reference, the closest reference length (shorter on ties) for the brevity
// penalty, 'exp' smoothing (each n with no match halves a running factor: p_n = 100 / (factor * total_n)), score =
// BP * exp(mean log p_n) on 0-100; 0 when no unigram matches.
// ROUGE: lower case, every run of [^a-z0-9] a space, split (so non-ASCII letters vanish: such text scores 0), no
// stemming; ROUGE-N from clipped n-gram overlap, ROUGE-L from the longest common subsequence; P = overlap / predicted,
// R = overlap / reference, F = 2PR / (P + R). The corpus figure is the mean of the per-item F (rouge-score's
// BootstrapAggregator reports that mean as "mid"; Quill gives the standard error instead of bootstrap bounds).
// Does not handle: sacreBLEU's other tokenizers (zh, ja-mecab, intl, char), chrF / TER, ROUGE-Lsum, stemming.
using System.Text.RegularExpressions;

namespace Quill.Evaluation;

/// <summary>Corpus BLEU with its parts.</summary>
public sealed record BleuScore(double Score, double[] Precisions, double BrevityPenalty, long HypothesisLength, long ReferenceLength);

/// <summary>Precision, recall and F-measure of one ROUGE type.</summary>
public readonly record struct RougeScore(double Precision, double Recall, double F);

/// <summary>sacreBLEU and rouge-score, re-implemented.</summary>
public static partial class TextMetrics
{
    /// <summary>sacreBLEU's 13a tokenization, tokens joined by single spaces.</summary>
    public static string Tokenize13a(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        line = line.Replace("<skipped>", "", StringComparison.Ordinal).Replace("-\n", "", StringComparison.Ordinal).Replace("\n", " ", StringComparison.Ordinal);
        if (line.Contains('&', StringComparison.Ordinal))
        {
            line = line.Replace("&quot;", "\"", StringComparison.Ordinal).Replace("&amp;", "&", StringComparison.Ordinal)
                .Replace("&lt;", "<", StringComparison.Ordinal).Replace("&gt;", ">", StringComparison.Ordinal);
        }
        line = " " + line + " ";
        line = Symbols().Replace(line, " $1 ");
        line = PeriodCommaAfterNonDigit().Replace(line, "$1 $2 ");
        line = PeriodCommaBeforeNonDigit().Replace(line, " $1 $2");
        line = DashAfterDigit().Replace(line, "$1 $2 ");
        return string.Join(' ', line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
    }

    /// <summary>Corpus BLEU of hypotheses against one or more reference streams (each as long as the hypotheses).</summary>
    public static BleuScore Bleu(IReadOnlyList<string> hypotheses, IReadOnlyList<IReadOnlyList<string>> references)
    {
        ArgumentNullException.ThrowIfNull(hypotheses);
        ArgumentNullException.ThrowIfNull(references);
        if (references.Count == 0) throw new InvalidConfigException("BLEU needs at least one reference stream.");
        foreach (var r in references)
            if (r.Count != hypotheses.Count) throw new InvalidConfigException($"BLEU: {hypotheses.Count} predictions but a reference stream of {r.Count} lines; give one reference line per prediction.");
        const int order = 4;
        var correct = new long[order];
        var total = new long[order];
        long sysLen = 0, refLen = 0;
        for (int s = 0; s < hypotheses.Count; s++)
        {
            string[] hyp = Words(Tokenize13a(hypotheses[s]));
            var maxRef = new Dictionary<string, int>(StringComparer.Ordinal);
            int closest = -1;
            foreach (var stream in references)
            {
                string[] rw = Words(Tokenize13a(stream[s]));
                int diff = Math.Abs(rw.Length - hyp.Length), best = Math.Abs(closest - hyp.Length);
                if (closest < 0 || diff < best || (diff == best && rw.Length < closest)) closest = rw.Length;
                foreach (var (g, c) in NGrams(rw, order))
                    if (!maxRef.TryGetValue(g, out int m) || c > m) maxRef[g] = c;
            }
            sysLen += hyp.Length;
            refLen += closest;
            foreach (var (g, c) in NGrams(hyp, order))
            {
                int n = g.Count(ch => ch == '\u0001');
                correct[n] += Math.Min(c, maxRef.GetValueOrDefault(g));
            }
            for (int n = 0; n < order; n++) total[n] += Math.Max(0, hyp.Length - n);
        }
        var precisions = new double[order];
        double factor = 1;
        for (int n = 0; n < order; n++)
        {
            if (total[n] == 0) break;
            if (correct[n] == 0)
            {
                factor *= 2;
                precisions[n] = 100.0 / (factor * total[n]);
            }
            else precisions[n] = 100.0 * correct[n] / total[n];
        }
        double bp = sysLen == 0 ? 0 : sysLen < refLen ? Math.Exp(1 - (double)refLen / sysLen) : 1;
        double score = correct[0] == 0 ? 0 : bp * Math.Exp(precisions.Sum(p => p > 0 ? Math.Log(p) : -9999999999.0) / order);
        return new BleuScore(score, precisions, bp, sysLen, refLen);
    }

    /// <summary>rouge-score's default tokens: lower case, runs of [^a-z0-9] split, nothing else kept.</summary>
    public static string[] RougeTokens(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return NonAlphanumeric().Replace(text.ToLowerInvariant(), " ").Split(' ', StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>ROUGE-N of a prediction against a reference.</summary>
    public static RougeScore RougeN(string reference, string prediction, int n)
    {
        var t = Counts(RougeTokens(reference), n);
        var p = Counts(RougeTokens(prediction), n);
        long overlap = 0;
        foreach (var (g, c) in p) overlap += Math.Min(c, t.GetValueOrDefault(g));
        return Score(overlap, p.Values.Sum(), t.Values.Sum());
    }

    /// <summary>ROUGE-L (longest common subsequence over tokens) of a prediction against a reference.</summary>
    public static RougeScore RougeL(string reference, string prediction)
    {
        string[] t = RougeTokens(reference), p = RougeTokens(prediction);
        if (t.Length == 0 || p.Length == 0) return default;
        var row = new int[p.Length + 1];
        foreach (string a in t)
        {
            int diag = 0;
            for (int j = 1; j <= p.Length; j++)
            {
                int up = row[j];
                row[j] = a == p[j - 1] ? diag + 1 : Math.Max(row[j], row[j - 1]);
                diag = up;
            }
        }
        return Score(row[p.Length], p.Length, t.Length);
    }

    private static RougeScore Score(long overlap, long predicted, long target)
    {
        double precision = (double)overlap / Math.Max(predicted, 1), recall = (double)overlap / Math.Max(target, 1);
        return new RougeScore(precision, recall, precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0);
    }

    private static Dictionary<string, int> Counts(string[] words, int n)
    {
        var d = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i + n <= words.Length; i++)
        {
            string g = string.Join('\u0001', words, i, n);
            d[g] = d.GetValueOrDefault(g) + 1;
        }
        return d;
    }

    /// <summary>Every n-gram of orders 1..maxOrder with its count (words joined by U+0001, so order = separators + 1).</summary>
    private static Dictionary<string, int> NGrams(string[] words, int maxOrder)
    {
        var d = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int n = 1; n <= maxOrder; n++)
            foreach (var (g, c) in Counts(words, n)) d[g] = c;
        return d;
    }

    private static string[] Words(string tokenized) => tokenized.Length == 0 ? [] : tokenized.Split(' ');

    [GeneratedRegex(@"([\{-\~\[-\` -\&\(-\+\:-\@\/])")]
    private static partial Regex Symbols();

    [GeneratedRegex(@"([^0-9])([\.,])")]
    private static partial Regex PeriodCommaAfterNonDigit();

    [GeneratedRegex(@"([\.,])([^0-9])")]
    private static partial Regex PeriodCommaBeforeNonDigit();

    [GeneratedRegex(@"([0-9])(-)")]
    private static partial Regex DashAfterDigit();

    [GeneratedRegex(@"[^a-z0-9]+")]
    private static partial Regex NonAlphanumeric();
}
