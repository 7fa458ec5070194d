// The KV-cache engine against the training model's full forward (autograd Forward, no cache): logits of every
// position must agree when decoding one token at a time, when prefilling in one batch, and when several sequences
// decode together; for GPT-2 and for Llama with grouped-query attention in both RoPE styles; a prompt's tiled
// attention (window, soft-cap) against the cached kernel's, token by token. Also quantized
// weights (Q8_0) staying close to fp32, and the context limit raising a one-line QuillException.
using Quill.Quantization;
using Quill.Autograd;
using Quill.Formats.Gguf;
using Quill.Inference;
using Quill.Kernels;
using Quill.Models;

namespace Quill.Tests.Inference;

public sealed class InferenceEngineTests
{
    private static ModelConfig Config(string arch, string rope = "half") => new()
    {
        Arch = arch, VocabSize = 61, NLayer = 2, NHead = 4, NKvHead = arch == "llama" ? 2 : 0, NEmbd = 32,
        BlockSize = 40, MlpHidden = 48, RopeStyle = rope,
    };

    private static float[] FullLogits(LanguageModel m, int[] tokens)
    {
        var g = new Graph(recording: false);
        return m.Forward(g, tokens, 1, tokens.Length).ToArray(); // [T, V]
    }

    private static int[] Tokens(int n, int seed)
    {
        var r = new Random(seed);
        return [.. Enumerable.Range(0, n).Select(_ => r.Next(61))];
    }

    private static void Close(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, float tol)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol * (1 + Math.Abs(expected[i])), $"index {i}: expected {expected[i]}, got {actual[i]}");
    }

    [Theory]
    [InlineData("gpt2", "half")]
    [InlineData("llama", "half")]
    [InlineData("llama", "interleaved")]
    public void Decode_with_cache_equals_full_recompute(string arch, string rope)
    {
        var lm = LanguageModel.Create(Config(arch, rope), seed: 7);
        int[] tokens = Tokens(23, 1);
        float[] full = FullLogits(lm, tokens);
        using var model = ModelLoader.FromLanguageModel(lm);
        var engine = new InferenceEngine(model);
        int v = 61;

        var cache = engine.CreateCache();
        var step = new float[v];
        for (int t = 0; t < tokens.Length; t++)
        {
            engine.Forward(cache, tokens.AsSpan(t, 1), step);
            Close(full.AsSpan(t * v, v), step, 2e-4f);
        }
        Assert.Equal(tokens.Length, cache.Length);

        // prefill as one batch (GEMM path), all logits
        var all = new float[tokens.Length * v];
        engine.Forward(engine.CreateCache(), tokens, all, allLogits: true);
        Close(full, all, 2e-4f);

        // prefill of a prefix, then decode of the rest
        var c2 = engine.CreateCache();
        engine.Forward(c2, tokens.AsSpan(0, 15), step);
        Close(full.AsSpan(14 * v, v), step, 2e-4f);
        for (int t = 15; t < tokens.Length; t++)
        {
            engine.Forward(c2, tokens.AsSpan(t, 1), step);
            Close(full.AsSpan(t * v, v), step, 2e-4f);
        }
    }

    [Theory]
    [InlineData("llama", 0, 0f)]      // grouped-query attention
    [InlineData("mistral", 6, 0f)]    // every layer windowed (a ring cache)
    [InlineData("gemma2", 6, 0.05f)]  // alternate windowed layers, scores soft-capped where the cap bends them
    public void A_prompt_through_the_tiled_kernel_equals_one_token_at_a_time(string arch, int window, float softcap)
    {
        // A prompt's chunks of at least CachedTiledMinRows rows run the training forward's tiled attention over the
        // cache (the second chunk's queries start at PrefillChunk; windowed layers: the first chunk only); one token at
        // a time runs the per-row kernel. Same logits at every position, and the training forward's.
        int n = InferenceEngine.PrefillChunk + 44;
        var lm = LanguageModel.Create(new ModelConfig
        {
            Arch = arch, VocabSize = 61, NLayer = 2, NHead = 4, NKvHead = 2, NEmbd = 32, HeadDimOverride = 8,
            BlockSize = n, MlpHidden = 48, SlidingWindow = window, AttnSoftcap = softcap,
        }, seed: 5);
        using var model = ModelLoader.FromLanguageModel(lm);
        var engine = new InferenceEngine(model);
        Assert.Equal(window, model.Spec.LayerWindow(0) > 0 ? model.Spec.LayerWindow(0) : model.Spec.LayerWindow(1));
        Assert.True(n - InferenceEngine.PrefillChunk >= Attention.CachedTiledMinRows);
        int v = 61;
        int[] tokens = Tokens(n, 3);
        var all = new float[n * v];
        engine.Forward(engine.CreateCache(), tokens, all, allLogits: true);
        var cache = engine.CreateCache();
        var step = new float[v];
        for (int t = 0; t < n; t++)
        {
            engine.Forward(cache, tokens.AsSpan(t, 1), step);
            Close(step, all.AsSpan(t * v, v), 2e-5f);
        }
        Close(FullLogits(lm, tokens), all, 2e-4f);
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    public void Batched_decode_equals_separate_sequences(string arch)
    {
        var lm = LanguageModel.Create(Config(arch), seed: 3);
        using var model = ModelLoader.FromLanguageModel(lm);
        var engine = new InferenceEngine(model);
        int v = 61;
        int[][] seqs = [Tokens(9, 2), Tokens(5, 3), Tokens(12, 4)];
        var caches = seqs.Select(s => engine.CreateCache()).ToArray();
        var tmp = new float[v];
        for (int i = 0; i < seqs.Length; i++) engine.Forward(caches[i], seqs[i].AsSpan(0, seqs[i].Length - 1), tmp);
        int[] next = [.. seqs.Select(s => s[^1])];
        var batched = new float[seqs.Length * v];
        engine.DecodeBatch(caches, next, batched);
        for (int i = 0; i < seqs.Length; i++)
        {
            float[] full = FullLogits(lm, seqs[i]);
            Close(full.AsSpan((seqs[i].Length - 1) * v, v), batched.AsSpan(i * v, v), 2e-4f);
            Assert.Equal(seqs[i].Length, caches[i].Length);
        }
    }

    [Fact]
    public void Q8_0_weights_stay_close_to_fp32()
    {
        var lm = LanguageModel.Create(Config("llama"), seed: 11);
        using var f32 = ModelLoader.FromLanguageModel(lm);
        using var q8 = f32.Requantize(GgmlType.Q8_0);
        Assert.Equal(GgmlType.Q8_0, q8.Layers[0].Wq!.Type);
        int[] tokens = Tokens(10, 5);
        var a = new float[61];
        var b = new float[61];
        new InferenceEngine(f32).Forward(new InferenceEngine(f32).CreateCache(), tokens, a);
        var e8 = new InferenceEngine(q8);
        e8.Forward(e8.CreateCache(), tokens, b);
        double maxAbs = a.Max(Math.Abs), maxErr = a.Zip(b, (x, y) => Math.Abs(x - y)).Max();
        Assert.True(maxErr < 0.05 * maxAbs + 1e-3, $"Q8_0 logits differ by {maxErr} (scale {maxAbs})");
        Assert.True(maxErr > 0, "quantization changed nothing: the Q8_0 path did not run");
    }

    [Fact]
    public void Prompt_longer_than_context_is_a_one_line_error()
    {
        var lm = LanguageModel.Create(Config("llama"), seed: 1);
        using var model = ModelLoader.FromLanguageModel(lm);
        var engine = new InferenceEngine(model);
        var e = Assert.Throws<QuillException>(() => engine.Forward(engine.CreateCache(), Tokens(41, 1), new float[61]));
        Assert.Contains("context", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Throws<QuillException>(() => engine.Forward(engine.CreateCache(), [61], new float[61]));
    }
}
