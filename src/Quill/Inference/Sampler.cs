// Picks the next token from logits. In order: repetition / frequency / presence penalties on the logits of tokens
// already seen; temperature 0 = greedy (first maximum); otherwise logits / temperature, softmax, top-k and min-p
// filters (renormalized), then top-p nucleus sampling or plain multinomial, drawn with one uniform number from a
// xorshift64* generator. Without penalties, top-k and min-p this is exactly llama2.c run.c's sampler (same RNG,
// same division by temperature, same float softmax, same top-p cutoff / sort / cumulative rule), so a run.c
// seed reproduces run.c's tokens. Log-probabilities are those of the penalized logits before temperature.
// Sampling never fails on odd settings: a temperature so small that the largest logit / temperature overflows is
// greedy (any gap between two distinct logits, divided by such a temperature, is over 1e31: the exact distribution
// is one-hot), and a top-p cut that keeps nothing (a flat distribution) takes the most likely token.
// Logits holding NaN or +Infinity, or only -Infinity (-Infinity alone masks a token), raise
// NonFiniteLogitsException, a QuillException that ends just that sequence.
// Does not handle: beam search, grammars / constrained decoding, logit bias maps, Mirostat.
// Glossary: V vocabulary.
namespace Quill.Inference;

/// <summary>How to choose tokens.</summary>
public sealed record SamplingOptions
{
    /// <summary>0 = greedy; 1 = the model's distribution.</summary>
    public float Temperature { get; init; } = 1f;

    /// <summary>Keep only the K most likely tokens (0 = off).</summary>
    public int TopK { get; init; }

    /// <summary>Nucleus: the smallest set of tokens whose probability exceeds P (1 = off).</summary>
    public float TopP { get; init; } = 1f;

    /// <summary>Drop tokens less likely than MinP times the most likely one (0 = off).</summary>
    public float MinP { get; init; }

    /// <summary>Divides positive (multiplies negative) logits of tokens seen in the window (1 = off).</summary>
    public float RepetitionPenalty { get; init; } = 1f;

    /// <summary>Subtracts this times a token's count in the window (0 = off).</summary>
    public float FrequencyPenalty { get; init; }

    /// <summary>Subtracts this once from every token present in the window (0 = off).</summary>
    public float PresencePenalty { get; init; }

    /// <summary>How many recent tokens the penalties look at (0 = all).</summary>
    public int PenaltyWindow { get; init; } = 64;

    /// <summary>Random seed (null: from the clock).</summary>
    public ulong? Seed { get; init; }

    /// <summary>How many top alternatives to report with each token's log-probability (0 = no log-probabilities).</summary>
    public int TopLogprobs { get; init; }

    /// <summary>Report the chosen token's log-probability even when TopLogprobs is 0.</summary>
    public bool Logprobs { get; init; }

    /// <summary>Throws InvalidConfigException naming the bad option and the fix.</summary>
    public void Validate()
    {
        if (!(Temperature >= 0) || float.IsInfinity(Temperature)) throw new InvalidConfigException($"--temperature must be >= 0 (got {Temperature}).");
        if (TopK < 0) throw new InvalidConfigException($"--top-k must be >= 0 (got {TopK}).");
        if (!(TopP > 0 && TopP <= 1)) throw new InvalidConfigException($"--top-p must be in (0, 1] (got {TopP}).");
        if (!(MinP >= 0 && MinP < 1)) throw new InvalidConfigException($"--min-p must be in [0, 1) (got {MinP}).");
        if (!(RepetitionPenalty > 0)) throw new InvalidConfigException($"--repetition-penalty must be > 0 (got {RepetitionPenalty}).");
        if (float.IsNaN(FrequencyPenalty) || float.IsNaN(PresencePenalty)) throw new InvalidConfigException("penalties must be numbers.");
        if (PenaltyWindow < 0) throw new InvalidConfigException($"penalty window must be >= 0 (got {PenaltyWindow}).");
        if (TopLogprobs is < 0 or > 20) throw new InvalidConfigException($"top logprobs must be in [0, 20] (got {TopLogprobs}).");
    }
}

/// <summary>A token and its log-probability.</summary>
public readonly record struct TokenLogprob(int Id, float Logprob);

/// <summary>Chooses tokens from logits; keeps its random state between calls.</summary>
public sealed class Sampler
{
    private readonly SamplingOptions options;
    private ulong state;
    private float[] probs = [];
    private (float Prob, int Index)[] order = [];
    private readonly Dictionary<int, int> counts = [];

    public Sampler(SamplingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        this.options = options;
        state = options.Seed ?? (ulong)DateTime.UtcNow.Ticks;
        if (state == 0) state = 0x9E3779B97F4A7C15UL; // xorshift must not start at 0
    }

    public SamplingOptions Options => options;

    /// <summary>run.c's generator: xorshift64*, upper 32 bits.</summary>
    internal uint NextUInt32()
    {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        return (uint)((state * 0x2545F4914F6CDD1DUL) >> 32);
    }

    /// <summary>Uniform in [0, 1) with 24 bits, as run.c's random_f32.</summary>
    internal float NextSingle() => (NextUInt32() >> 8) / 16777216.0f;

    /// <summary>
    /// Chooses the next token. logits: [V], modified in place (penalties, temperature). history: tokens so far
    /// (prompt and generated), for the penalties. Fills chosen / top with log-probabilities when asked.
    /// </summary>
    public int Sample(Span<float> logits, ReadOnlySpan<int> history, out float chosenLogprob, List<TokenLogprob>? top = null)
    {
        CheckFinite(logits);
        ApplyPenalties(logits, history);
        float[]? logp = null;
        if (options.Logprobs || options.TopLogprobs > 0 || top != null)
        {
            logp = LogSoftmax(logits);
            if (top != null)
            {
                top.Clear();
                foreach (int id in TopIndices(logp, Math.Max(options.TopLogprobs, 1))) top.Add(new TokenLogprob(id, logp[id]));
            }
        }
        int next = Choose(logits);
        chosenLogprob = logp != null ? logp[next] : float.NaN;
        return next;
    }

    /// <summary>Chooses the next token (no log-probabilities).</summary>
    public int Sample(Span<float> logits, ReadOnlySpan<int> history = default) => Sample(logits, history, out _);

    /// <summary>Throws NonFiniteLogitsException on NaN or +Infinity, or when no token is above -Infinity.</summary>
    private static void CheckFinite(ReadOnlySpan<float> logits)
    {
        bool any = false;
        for (int i = 0; i < logits.Length; i++)
        {
            float x = logits[i];
            if (float.IsNaN(x) || float.IsPositiveInfinity(x))
            {
                throw new NonFiniteLogitsException($"the model produced a {(float.IsNaN(x) ? "NaN" : "+Infinity")} logit (token id {i}): its weights hold NaN / Inf values or its activations overflowed; this sequence was stopped.");
            }
            any |= x > float.NegativeInfinity;
        }
        if (!any) throw new NonFiniteLogitsException($"the model gave every one of its {logits.Length} tokens a -Infinity logit; there is nothing to sample and this sequence was stopped.");
    }

    private int Choose(Span<float> logits)
    {
        int v = logits.Length;
        if (options.Temperature == 0) return ArgMax(logits);
        float t = options.Temperature;
        int best = ArgMax(logits);
        if (float.IsInfinity(logits[best] / t)) return best;
        for (int i = 0; i < v; i++) logits[i] /= t;
        if (probs.Length < v) probs = new float[v];
        var p = probs.AsSpan(0, v);
        Softmax(logits, p);
        if (options.TopK > 0 && options.TopK < v) KeepTopK(p, options.TopK);
        if (options.MinP > 0) KeepMinP(p, options.MinP);
        float coin = NextSingle();
        return options.TopP > 0 && options.TopP < 1 ? SampleTopP(p, options.TopP, coin) : SampleMultinomial(p, coin);
    }

    private static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        float max = x[0];
        for (int i = 1; i < x.Length; i++)
        {
            if (x[i] > max)
            {
                max = x[i];
                best = i;
            }
        }
        return best;
    }

    // run.c's softmax: max, expf, running float sum, divide.
    private static void Softmax(ReadOnlySpan<float> x, Span<float> p)
    {
        float max = x[0];
        for (int i = 1; i < x.Length; i++) max = x[i] > max ? x[i] : max;
        float sum = 0f;
        for (int i = 0; i < x.Length; i++)
        {
            p[i] = MathF.Exp(x[i] - max);
            sum += p[i];
        }
        for (int i = 0; i < x.Length; i++) p[i] /= sum;
    }

    private static float[] LogSoftmax(ReadOnlySpan<float> x)
    {
        float max = float.NegativeInfinity;
        foreach (float f in x) max = Math.Max(max, f);
        double sum = 0;
        foreach (float f in x) sum += Math.Exp(f - max);
        float lse = max + (float)Math.Log(sum);
        var r = new float[x.Length];
        for (int i = 0; i < x.Length; i++) r[i] = x[i] - lse;
        return r;
    }

    private static int[] TopIndices(float[] x, int k)
    {
        k = Math.Min(k, x.Length);
        var idx = new int[x.Length];
        for (int i = 0; i < idx.Length; i++) idx[i] = i;
        Array.Sort(idx, (a, b) => x[b].CompareTo(x[a]) is var c && c != 0 ? c : a.CompareTo(b));
        return idx[..k];
    }

    private void KeepTopK(Span<float> p, int k)
    {
        var copy = p.ToArray();
        Array.Sort(copy);
        float kth = copy[^k];
        Renormalize(p, kth, strict: false, keepAtMost: k);
    }

    private static void KeepMinP(Span<float> p, float minP)
    {
        float max = 0;
        foreach (float f in p) max = Math.Max(max, f);
        Renormalize(p, max * minP, strict: false, keepAtMost: p.Length);
    }

    // Zeroes probabilities below the threshold (ties at the threshold kept, lowest ids first, up to keepAtMost), renormalizes.
    private static void Renormalize(Span<float> p, float threshold, bool strict, int keepAtMost)
    {
        float sum = 0;
        int kept = 0;
        for (int i = 0; i < p.Length; i++)
        {
            bool keep = (strict ? p[i] > threshold : p[i] >= threshold) && p[i] > 0;
            if (keep && kept < keepAtMost)
            {
                kept++;
                sum += p[i];
            }
            else
            {
                p[i] = 0;
            }
        }
        if (sum > 0)
        {
            for (int i = 0; i < p.Length; i++) p[i] /= sum;
        }
    }

    // run.c sample_mult: the first index whose running sum exceeds the coin.
    private static int SampleMultinomial(ReadOnlySpan<float> p, float coin)
    {
        float cdf = 0;
        for (int i = 0; i < p.Length; i++)
        {
            cdf += p[i];
            if (coin < cdf) return i;
        }
        return p.Length - 1;
    }

    // run.c sample_topp: drop tokens below (1 - topp) / (n - 1), sort descending, cut where the running sum first
    // exceeds topp, draw coin * (that sum) from the kept prefix.
    private int SampleTopP(ReadOnlySpan<float> p, float topp, float coin)
    {
        int n = p.Length, n0 = 0;
        if (order.Length < n) order = new (float, int)[n];
        float cutoff = (1.0f - topp) / (n - 1);
        for (int i = 0; i < n; i++)
        {
            if (p[i] >= cutoff) order[n0++] = (p[i], i);
        }
        if (n0 == 0) return ArgMax(p); // a top_p so small (and a distribution so flat) that nothing passes the cutoff
        Array.Sort(order, 0, n0, ProbDescending.Instance);
        float cumulative = 0;
        int last = n0 - 1;
        for (int i = 0; i < n0; i++)
        {
            cumulative += order[i].Prob;
            if (cumulative > topp)
            {
                last = i;
                break;
            }
        }
        float r = coin * cumulative;
        float cdf = 0;
        for (int i = 0; i <= last; i++)
        {
            cdf += order[i].Prob;
            if (r < cdf) return order[i].Index;
        }
        return order[last].Index;
    }

    private void ApplyPenalties(Span<float> logits, ReadOnlySpan<int> history)
    {
        bool rep = options.RepetitionPenalty != 1f, freq = options.FrequencyPenalty != 0f, pres = options.PresencePenalty != 0f;
        if (!(rep || freq || pres) || history.IsEmpty) return;
        var window = options.PenaltyWindow > 0 && history.Length > options.PenaltyWindow ? history[^options.PenaltyWindow..] : history;
        counts.Clear();
        foreach (int id in window)
        {
            if ((uint)id < (uint)logits.Length) counts[id] = counts.GetValueOrDefault(id) + 1;
        }
        foreach (var (id, count) in counts)
        {
            float l = logits[id];
            if (rep) l = l > 0 ? l / options.RepetitionPenalty : l * options.RepetitionPenalty;
            l -= options.FrequencyPenalty * count + options.PresencePenalty;
            logits[id] = l;
        }
    }

    // Descending by probability; equal probabilities by index (run.c's qsort leaves ties in an unspecified order).
    private sealed class ProbDescending : IComparer<(float Prob, int Index)>
    {
        public static readonly ProbDescending Instance = new();

        public int Compare((float Prob, int Index) a, (float Prob, int Index) b) =>
            a.Prob > b.Prob ? -1 : a.Prob < b.Prob ? 1 : a.Index.CompareTo(b.Index);
    }
}
