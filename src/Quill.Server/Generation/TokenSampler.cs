// Chooses each next token of one sequence from its logits: presence and frequency penalties over the tokens
// generated so far, then greedy at temperature 0, else temperature, top-k, top-p, min-p and a draw from the
// sequence's own seeded generator. Each sequence owns one sampler, so what it draws never depends on other
// sequences. Log-probabilities are reported from the model's raw distribution (before penalties and temperature).
// Does not handle: grammar constraints, logit bias, repetition penalty in llama.cpp's multiplicative form.
// Glossary: V tokens the sampler may choose (the tokenizer's vocabulary, at most the model's).
using Quill.Tensors;

namespace Quill.Server.Generation;

/// <summary>Per-sequence token selection.</summary>
public sealed class TokenSampler
{
    private readonly SamplingParams p;
    private readonly int vocab;
    private readonly Rng rng;
    private readonly Dictionary<int, int> counts = [];
    private readonly float[] work;
    private int[]? order;

    /// <param name="p">Settings (validated).</param>
    /// <param name="vocab">Only ids below this are drawn (a model may be wider than its tokenizer).</param>
    public TokenSampler(SamplingParams p, int vocab)
    {
        ArgumentNullException.ThrowIfNull(p);
        ArgumentOutOfRangeException.ThrowIfLessThan(vocab, 1);
        this.p = p;
        this.vocab = vocab;
        rng = new Rng(p.Seed);
        work = new float[vocab];
    }

    /// <summary>Picks the next token from logits [>= V] and remembers it for the penalties.</summary>
    public int Next(ReadOnlySpan<float> logits)
    {
        var x = work.AsSpan();
        logits[..vocab].CopyTo(x);
        if (p.PresencePenalty != 0 || p.FrequencyPenalty != 0)
        {
            foreach (var (id, n) in counts) x[id] -= p.PresencePenalty + p.FrequencyPenalty * n;
        }
        int next = p.Temperature == 0 ? ArgMax(x) : Draw(x);
        counts[next] = counts.GetValueOrDefault(next) + 1;
        return next;
    }

    private static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int j = 1; j < x.Length; j++) if (x[j] > x[best]) best = j;
        return best;
    }

    /// <summary>Softmax at the temperature, truncated by top-k / top-p / min-p, then one draw.</summary>
    private int Draw(Span<float> x)
    {
        float max = float.NegativeInfinity;
        foreach (float v in x) max = Math.Max(max, v);
        float invT = 1f / p.Temperature;
        double sum = 0;
        for (int j = 0; j < x.Length; j++)
        {
            float e = float.IsFinite(x[j]) ? MathF.Exp((x[j] - max) * invT) : 0f;
            x[j] = e;
            sum += e;
        }
        // x now holds unnormalized probabilities; the most likely has weight 1.
        if (p.MinP > 0)
        {
            for (int j = 0; j < x.Length; j++) if (x[j] < p.MinP) x[j] = 0;
        }
        if (p.TopK > 0 && p.TopK < x.Length || p.TopP < 1f)
        {
            order ??= new int[x.Length];
            for (int j = 0; j < order.Length; j++) order[j] = j;
            var keys = x.ToArray();
            Array.Sort(keys, order, Comparer<float>.Create((a, b) => b.CompareTo(a)));
            double total = 0;
            foreach (float v in keys) total += v;
            int keep = p.TopK > 0 ? Math.Min(p.TopK, x.Length) : x.Length;
            if (p.TopP < 1f)
            {
                double acc = 0, target = p.TopP * total;
                int k = 0;
                while (k < keep)
                {
                    acc += keys[k++];
                    if (acc >= target) break;
                }
                keep = Math.Max(1, k);
            }
            for (int r = keep; r < order.Length; r++) x[order[r]] = 0;
        }
        sum = 0;
        foreach (float v in x) sum += v;
        double u = rng.NextDouble() * sum, run = 0;
        int last = 0;
        for (int j = 0; j < x.Length; j++)
        {
            if (x[j] == 0) continue;
            run += x[j];
            last = j;
            if (run > u) return j;
        }
        return last;
    }

    /// <summary>Log-softmax of the raw logits [>= V] at id, and the top alternatives (most likely first).</summary>
    public static (float Logprob, (int Id, float Logprob)[] Top) Logprobs(ReadOnlySpan<float> logits, int vocab, int id, int top)
    {
        var x = logits[..vocab];
        float max = float.NegativeInfinity;
        foreach (float v in x) max = Math.Max(max, v);
        double sum = 0;
        foreach (float v in x) sum += Math.Exp(v - max);
        float logZ = max + (float)Math.Log(sum);
        var best = new List<(int Id, float Logit)>(top + 1);
        if (top > 0)
        {
            for (int j = 0; j < x.Length; j++)
            {
                if (best.Count == top && x[j] <= best[^1].Logit) continue;
                int at = best.Count;
                while (at > 0 && best[at - 1].Logit < x[j]) at--;
                best.Insert(at, (j, x[j]));
                if (best.Count > top) best.RemoveAt(best.Count - 1);
            }
        }
        return (x[id] - logZ, best.Select(b => (b.Id, b.Logit - logZ)).ToArray());
    }
}
