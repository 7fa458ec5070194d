// The small statistics the evaluation reports share: the standard error of a mean from running sums (llama.cpp's
// sqrt(var / (count - 1))), a binomial proportion's standard error (lm-evaluation-harness's stderr for acc), a 95%
// interval from a standard error, and llama.cpp's linear-interpolation percentile of sorted values.
// Does not handle: bootstrap intervals (lm-evaluation-harness uses them for BLEU / ROUGE; Quill reports none there).
namespace Quill.Evaluation;

/// <summary>Standard errors, intervals and percentiles for the evaluation reports.</summary>
public static class Statistics
{
    /// <summary>z for a two-sided 95% normal interval.</summary>
    public const double Z95 = 1.959963984540054;

    /// <summary>sqrt((E[x^2] - E[x]^2) / (count - 1)) from sums; 0 when count &lt; 2 or the variance is not positive.</summary>
    public static double StandardError(double sum, double sumSquares, long count)
    {
        if (count < 2) return 0;
        double mean = sum / count, variance = sumSquares / count - mean * mean;
        return variance > 0 ? Math.Sqrt(variance / (count - 1)) : 0;
    }

    /// <summary>Standard error of a proportion p over n trials: sqrt(p (1 - p) / (n - 1)) (0 when n &lt; 2).</summary>
    public static double ProportionError(double p, long n) => n < 2 ? 0 : Math.Sqrt(p * (1 - p) / (n - 1));

    /// <summary>The value at <paramref name="fraction"/> of sorted values, interpolating linearly between neighbours.</summary>
    public static double Percentile(IReadOnlyList<double> sorted, double fraction)
    {
        ArgumentNullException.ThrowIfNull(sorted);
        if (sorted.Count == 0) return double.NaN;
        if (fraction <= 0) return sorted[0];
        if (fraction >= 1) return sorted[^1];
        double p = fraction * (sorted.Count - 1);
        int i = (int)p;
        p -= i;
        return (1 - p) * sorted[i] + p * sorted[Math.Min(i + 1, sorted.Count - 1)];
    }

    /// <summary>The median of sorted values (the mean of the middle two for an even count).</summary>
    public static double Median(IReadOnlyList<double> sorted)
    {
        ArgumentNullException.ThrowIfNull(sorted);
        if (sorted.Count == 0) return double.NaN;
        int h = sorted.Count / 2;
        return sorted.Count % 2 == 0 ? 0.5 * (sorted[h] + sorted[h - 1]) : sorted[h];
    }
}

/// <summary>Progress of an evaluation: items done of total, time so far and a short running figure.</summary>
public readonly record struct EvalProgress(int Done, int Total, TimeSpan Elapsed, string Status)
{
    /// <summary>Time left at the pace so far, or null before the first item.</summary>
    public TimeSpan? Eta => Done <= 0 ? null : TimeSpan.FromSeconds(Elapsed.TotalSeconds / Done * (Total - Done));
}

/// <summary>An IProgress that calls back on the reporting thread (Progress&lt;T&gt; would post to the thread pool).</summary>
internal sealed class CallbackProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
