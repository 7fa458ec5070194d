// How much a quantized copy of a model departs from the original, as `quill quantize` reports it:
// perplexity of both models over the same token windows, the mean KL divergence KL(original || quantized) of
// their next-token distributions, and how often their top token agrees (the weight-space error needs no text and
// comes with the export: ExportReport.WeightError).
// Windows of at most the model's context are scored independently (each starts with an empty cache), every
// position after the first predicting the next token.
// Does not handle: batched or strided evaluation, sampling-based measures (it is llama-perplexity's --kl-divergence
// idea on Quill's own engine, not a copy of its output format).
using Quill.Inference;

namespace Quill.Evaluation;

/// <summary>Quality of a quantized model against its original.</summary>
/// <param name="Tokens">Next-token predictions scored.</param>
/// <param name="PerplexityOriginal">exp(mean NLL) of the original.</param>
/// <param name="PerplexityQuantized">exp(mean NLL) of the quantized model.</param>
/// <param name="MeanKl">Mean KL(original || quantized) in nats.</param>
/// <param name="TopTokenAgreement">Share of positions where both models' most likely token is the same.</param>
public sealed record QuantizationQualityReport(int Tokens, double PerplexityOriginal, double PerplexityQuantized, double MeanKl, double TopTokenAgreement)
{
    /// <summary>Perplexity change in percent.</summary>
    public double PerplexityChangePercent => (PerplexityQuantized / PerplexityOriginal - 1) * 100;
}

/// <summary>Measures quantization error.</summary>
public static class QuantizationQuality
{
    /// <summary>Scores both models on <paramref name="tokens"/> in windows of at most <paramref name="window"/> tokens.</summary>
    public static QuantizationQualityReport Measure(InferenceModel original, InferenceModel quantized, IReadOnlyList<int> tokens, int window = 256)
    {
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(quantized);
        ArgumentNullException.ThrowIfNull(tokens);
        int v = original.Spec.VocabSize;
        if (quantized.Spec.VocabSize != v) throw new InvalidConfigException($"the models have {v} and {quantized.Spec.VocabSize} tokens; compare a model with its own quantized copy.");
        window = Math.Min(window, Math.Min(original.Spec.MaxContext, quantized.Spec.MaxContext));
        if (tokens.Count < 2 || window < 2) throw new InvalidConfigException("quality needs at least two tokens of text and a context of two.");
        var ea = new InferenceEngine(original, window);
        var eb = new InferenceEngine(quantized, window);
        double nllA = 0, nllB = 0, kl = 0;
        int n = 0, agree = 0;
        var pa = new double[v];
        var pb = new double[v];
        for (int start = 0; start + 1 < tokens.Count; start += window)
        {
            int len = Math.Min(window, tokens.Count - start);
            if (len < 2) break;
            int[] ids = [.. tokens.Skip(start).Take(len)];
            var la = new float[len * v];
            var lb = new float[len * v];
            ea.Forward(ea.CreateCache(), ids, la, allLogits: true);
            eb.Forward(eb.CreateCache(), ids, lb, allLogits: true);
            for (int t = 0; t + 1 < len; t++)
            {
                int next = ids[t + 1];
                int topA = LogSoftmax(la.AsSpan(t * v, v), pa), topB = LogSoftmax(lb.AsSpan(t * v, v), pb);
                nllA -= pa[next];
                nllB -= pb[next];
                double k = 0;
                for (int i = 0; i < v; i++) k += Math.Exp(pa[i]) * (pa[i] - pb[i]);
                kl += k;
                if (topA == topB) agree++;
                n++;
            }
        }
        return new QuantizationQualityReport(n, Math.Exp(nllA / n), Math.Exp(nllB / n), kl / n, (double)agree / n);
    }

    /// <summary>log softmax of x into p; returns the argmax.</summary>
    private static int LogSoftmax(ReadOnlySpan<float> x, double[] p)
    {
        int top = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[top]) top = i;
        double max = x[top], sum = 0;
        for (int i = 0; i < x.Length; i++) sum += Math.Exp(x[i] - max);
        double log = max + Math.Log(sum);
        for (int i = 0; i < x.Length; i++) p[i] = x[i] - log;
        return top;
    }
}
