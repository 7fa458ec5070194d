// Perplexity and KL divergence against llama.cpp (LLamaSharp, test-only): a small random Llama with the Llama 2
// vocabulary (its weights scaled up so that it has opinions: a perplexity far from the uniform 32,000) is written as
// GGUF; llama.cpp tokenizes the WikiText-2 test text and gives its logits for each window, and the test computes
// llama-perplexity's figure from them in a few plain lines (BOS in front of each 128-token window, rows 64..126
// scoring tokens 65..127, exp of the mean NLL). Quill's `Perplexity` must equal it within 0.1%; the same comparison
// one row off must not (so the test can fail). KLD of the Q8_0 file from the F32 file is computed the same way
// from llama.cpp's two sets of logits: Quill's statistics on those logits equal it, and Quill's own Q8_0-vs-F32 run
// lands within 5% of it (both quantize the activations of Q8_0 products alike).
using Quill.Evaluation;
using Quill.Inference;
using Quill.Models;
using Quill.Quantization;
using Quill.Tests.Support;

namespace Quill.Tests.Evaluation;

public sealed class PerplexityTests : IDisposable
{
    private const string Tiny = "gguf-models/llama-2-tiny-random.gguf";
    private const string Wiki = "eval/wikitext-2-raw-test.txt";
    private const int Context = 128, Windows = 4;
    private readonly string dir = Directory.CreateTempSubdirectory("quill-ppl-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    /// <summary>A 2-layer random Llama over the Llama 2 vocabulary (tiny-random's tokenizer), exported as GGUF of the given weight type.</summary>
    private string OpinionatedLlama(GgmlType type)
    {
        var cfg = new ModelConfig
        {
            Arch = "llama", VocabSize = 32000, NLayer = 2, NHead = 4, NKvHead = 2, NEmbd = 64, BlockSize = 256, MlpHidden = 128, RopeStyle = "interleaved",
        };
        var lm = LanguageModel.Create(cfg, seed: 11);
        foreach (var p in lm.Parameters)
        {
            if (p.Rank < 2) continue;
            var s = p.Span;
            for (int i = 0; i < s.Length; i++) s[i] *= 6f;
        }
        string path = Path.Combine(dir, $"llama-{type}.gguf");
        using var vocab = ModelLoader.Load(TestData.PathOf(Tiny));
        var model = new InferenceModel(lm.ToWeights()) { Tokenizer = vocab.Tokenizer, AddBos = true };
        GgufExport.Write(model, path, TensorTypePlan.Uniform(type));
        return path;
    }

    private static string WikiText() => File.ReadAllText(TestData.PathOf(Wiki))[..4000];

    /// <summary>-log softmax(row)[target] in double.</summary>
    private static double Nll(float[] row, int target)
    {
        double max = row.Max(), sum = 0;
        foreach (float x in row) sum += Math.Exp(x - max);
        return max + Math.Log(sum) - row[target];
    }

    [TestDataFact(Tiny, Wiki)]
    public void Perplexity_equals_llama_cpp_on_the_same_gguf_and_text()
    {
        string path = OpinionatedLlama(GgmlType.F32);
        using var model = ModelLoader.Load(path);
        using var cpp = LlamaCpp.Open(path, Context);
        string text = WikiText();
        int[] tokens = Perplexity.Tokenize(model, text);
        Assert.Equal([1, .. cpp.Tokenize(text)], tokens);
        Assert.True(tokens.Length >= Windows * Context, $"{tokens.Length} tokens");

        double nll = 0, shifted = 0;
        int count = 0;
        for (int w = 0; w < Windows; w++)
        {
            int[] chunk = tokens[(w * Context)..((w + 1) * Context)];
            chunk[0] = 1; // BOS
            float[][] logits = cpp.Logits(chunk);
            for (int j = Context / 2; j < Context - 1; j++)
            {
                nll += Nll(logits[j], chunk[j + 1]);
                shifted += Nll(logits[j - 1], chunk[j + 1]);
                count++;
            }
        }
        double reference = Math.Exp(nll / count), offByOne = Math.Exp(shifted / count);

        var result = Perplexity.Run(model, text, new PerplexityOptions { Context = Context, MaxWindows = Windows });
        Assert.Equal(Windows, result.Windows.Count);
        Assert.Equal(count, result.Count);
        Assert.True(Math.Abs(Math.Log(reference / 32000)) > 0.2, $"the model should have opinions (PPL {reference} near the uniform 32,000)");
        Assert.True(Math.Abs(result.Ppl / reference - 1) < 1e-3, $"Quill PPL {result.Ppl}, llama.cpp's method {reference}");
        Assert.True(Math.Abs(offByOne / reference - 1) > 1e-2, $"one row off gives {offByOne}, too close to {reference} for the test to tell");
        Assert.True(result.PplError > 0 && result.PplError < result.Ppl);
        Assert.True(result.BitsPerByte > 0 && result.Bytes > count, $"{result.Bytes} bytes for {count} tokens");
    }

    [TestDataFact(Tiny, Wiki)]
    public void Kld_of_q8_0_from_f32_agrees_with_llama_cpp()
    {
        string f32 = OpinionatedLlama(GgmlType.F32), q8 = OpinionatedLlama(GgmlType.Q8_0);
        using var baseModel = ModelLoader.Load(f32);
        using var quant = ModelLoader.Load(q8);
        Assert.Equal(GgmlType.Q8_0, quant.Layers[0].Wq!.Type);
        int[] tokens = Perplexity.Tokenize(baseModel, WikiText());
        var kl = new List<double>();
        int sameCount = 0;
        double dp2 = 0;
        var acc = new KldAccumulator(32000); // Quill's statistics, fed llama.cpp's very logits
        using (var cb = LlamaCpp.Open(f32, Context))
        using (var cq = LlamaCpp.Open(q8, Context))
        {
            for (int w = 0; w < Windows; w++)
            {
                int[] chunk = tokens[(w * Context)..((w + 1) * Context)];
                chunk[0] = 1;
                float[][] lb = cb.Logits(chunk), lq = cq.Logits(chunk);
                for (int j = Context / 2; j < Context - 1; j++)
                {
                    double[] pb = Softmax(lb[j]), pq = Softmax(lq[j]);
                    double s = 0;
                    for (int i = 0; i < pb.Length; i++) if (pb[i] > 0) s += pb[i] * (Math.Log(pb[i]) - Math.Log(pq[i]));
                    kl.Add(s);
                    if (Array.IndexOf(lb[j], lb[j].Max()) == Array.IndexOf(lq[j], lq[j].Max())) sameCount++;
                    double d = pq[chunk[j + 1]] - pb[chunk[j + 1]];
                    dp2 += d * d;
                }
                acc.Add([.. lb[(Context / 2)..(Context - 1)].SelectMany(x => x)], [.. lq[(Context / 2)..(Context - 1)].SelectMany(x => x)], chunk[(Context / 2 + 1)..]);
            }
        }
        double meanKld = kl.Average(), sameTop = (double)sameCount / kl.Count, rms = Math.Sqrt(dp2 / kl.Count);
        Assert.True(meanKld > 1e-5, $"Q8_0 should move the distribution a little (llama.cpp KLD {meanKld})");

        var same = acc.Result(Windows, TimeSpan.Zero);
        Assert.Equal(meanKld, same.MeanKld, 1e-4 * meanKld);
        Assert.Equal(rms, same.RmsDeltaP, 1e-4 * rms);
        Assert.Equal(sameTop, same.SameTop, 1e-12);

        // end to end: Quill's own Q8_0 and F32 runs. Quill's quantized products quantize the activations to 8 bits
        // with ggml's rules, as llama.cpp's do, so the two KLDs agree within 5% (measured: 3.012e-4 vs 3.00e-4; with
        // f32 activations Quill gave 1.8e-4, which this bound refuses).
        var r = KlDivergence.Run(quant, baseModel, tokens, new PerplexityOptions { Context = Context, MaxWindows = Windows });
        Assert.Equal(kl.Count, r.Count);
        Assert.InRange(r.MeanKld / meanKld, 0.95, 1.05);
        Assert.InRange(r.RmsDeltaP / rms, 0.95, 1.05);
        Assert.True(Math.Abs(r.SameTop - sameTop) <= 0.03, $"Quill same top {r.SameTop}, llama.cpp {sameTop}");
        Assert.True(r.KldPercentiles.Single(p => p.Name == "Maximum").Value >= r.KldPercentiles.Single(p => p.Name == "Median").Value);
    }

    private static double[] Softmax(float[] row)
    {
        double max = row.Max(), sum = 0;
        var p = new double[row.Length];
        for (int i = 0; i < row.Length; i++) sum += p[i] = Math.Exp(row[i] - max);
        for (int i = 0; i < row.Length; i++) p[i] /= sum;
        return p;
    }

    [Fact]
    public void Windows_follow_llama_perplexity()
    {
        var w = Perplexity.Windows(1000, new PerplexityOptions { Context = 128 }, addBos: true);
        Assert.Equal(7, w.Count); // 1000 / 128, the tail dropped
        Assert.All(w, x => Assert.Equal((64, 63, true), (x.FirstScoredRow, x.Scored, x.BosFirst)));
        Assert.Equal(6 * 128, w[^1].Start);
        Assert.Equal(3, Perplexity.Windows(1000, new PerplexityOptions { Context = 128, MaxWindows = 3 }, true).Count);

        var s = Perplexity.Windows(1000, new PerplexityOptions { Context = 128, Stride = 32 }, addBos: true);
        Assert.Equal((1000 - 128 + 31) / 32, s.Count);
        Assert.All(s, x => Assert.Equal((128 - 32 - 1, 32, false), (x.FirstScoredRow, x.Scored, x.BosFirst)));
        Assert.Equal(32, s[1].Start);
        Assert.True(s[^1].Start + 128 <= 1000);
    }

    [Fact]
    public void Bad_settings_and_short_texts_are_refused_in_one_line()
    {
        var e = Assert.Throws<InvalidConfigException>(() => Perplexity.Windows(200, new PerplexityOptions { Context = 128 }, true));
        Assert.Contains("at least 256", e.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidConfigException>(() => Perplexity.Windows(2000, new PerplexityOptions { Context = 128, Stride = 128 }, true));
        using var model = TinyModels.Inference();
        model.Tokenizer = null;
        var t = Assert.Throws<InvalidConfigException>(() => Perplexity.Tokenize(model, "hello", "ppl"));
        Assert.Contains("no tokenizer", t.Message, StringComparison.Ordinal);
        Assert.Contains("--tokenizer", t.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Char_model_perplexity_matches_a_direct_computation()
    {
        using var model = TinyModels.Inference(blockSize: 64);
        string text = string.Concat(Enumerable.Repeat("The quick brown fox jumps over the lazy dog. ", 8));
        int[] tokens = Perplexity.Tokenize(model, text);
        Assert.Equal(model.Tokenizer!.Encode(text), tokens); // a GPT-2-style model adds no BOS
        var r = Perplexity.Run(model, tokens, new PerplexityOptions { Context = 64 });
        var engine = new InferenceEngine(model, 64);
        int v = model.Spec.VocabSize;
        double nll = 0;
        int n = 0;
        for (int w = 0; w + 64 <= tokens.Length; w += 64)
        {
            var logits = new float[64 * v];
            engine.Forward(engine.CreateCache(), tokens.AsSpan(w, 64), logits, allLogits: true);
            for (int j = 32; j < 63; j++, n++) nll += Nll(logits[(j * v)..((j + 1) * v)], tokens[w + j + 1]);
        }
        Assert.Equal(n, r.Count);
        Assert.Equal(Math.Exp(nll / n), r.Ppl, 1e-4 * r.Ppl);
        Assert.Equal(nll / (r.Count * Math.Log(2)), r.BitsPerByte, 1e-6); // one ASCII byte per character token
    }
}
