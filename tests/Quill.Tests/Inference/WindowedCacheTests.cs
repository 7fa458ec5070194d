// The KV cache of a windowed layer keeps only its window (a ring of window + PrefillChunk - 1 positions, the low
// slots mirrored): for Mistral-shaped (every layer windowed) and Gemma 3-shaped (five local layers, one global)
// models, a long prefill (several chunks) and hundreds of decode steps past the window give bit for bit the logits
// of a cache that keeps every position, the training forward (masked full attention) agrees, the cache's bytes are
// exactly the rings' (not the context's), and a rewind the ring cannot serve is refused, or run again from 0 by a chat.
using Quill.Autograd;
using Quill.Inference;
using Quill.Models;
using Quill.Tests.Support;

namespace Quill.Tests.Inference;

public sealed class WindowedCacheTests
{
    private const int Context = 1024, Window = 16;

    private static LanguageModel Model(string arch) => LanguageModel.Create(new ModelConfig
    {
        Arch = arch, VocabSize = 53, NLayer = arch == "gemma3" ? 6 : 2, NHead = 4, NKvHead = 2, NEmbd = 32, HeadDimOverride = 8,
        MlpHidden = 48, BlockSize = Context, SlidingWindow = Window, RopeTheta = 10000,
    }, seed: 21);

    private static int[] Tokens(int n) => [.. Enumerable.Range(0, n).Select(i => (i * 31 + 7) % 53)];

    [Theory]
    [InlineData("mistral")]
    [InlineData("gemma3")]
    public void A_ring_cache_gives_the_full_cache_logits_bit_for_bit_past_the_window(string arch)
    {
        var lm = Model(arch);
        using var m = InferenceModel.FromLanguageModel(lm);
        var s = m.Spec;
        var e = new InferenceEngine(m, Context);
        var ring = e.CreateCache();
        var full = e.CreateCache(keepAll: true);
        for (int l = 0; l < s.Layers; l++)
        {
            Assert.Equal(s.LayerWindow(l) > 0, ring.IsWindowed(l));
            Assert.False(full.IsWindowed(l));
        }
        int v = s.VocabSize, prompt = 300; // two prefill chunks (256 + 44)
        int[] tokens = Tokens(prompt);
        float[] a = new float[prompt * v], b = new float[prompt * v];
        e.Forward(ring, tokens, a, allLogits: true);
        e.Forward(full, tokens, b, allLogits: true);
        Assert.Equal(b, a);
        float[] x = new float[v], y = new float[v];
        int next = 3;
        for (int t = prompt; t < 800; t++)
        {
            e.Forward(ring, [next], x);
            e.Forward(full, [next], y);
            Assert.True(x.AsSpan().SequenceEqual(y), $"{arch}: decode at position {t} differs from the full cache");
            next = Array.IndexOf(x, x.Max()) is int g && g != next ? g : (next + 7) % v; // keep the tokens varied
        }

        // bytes: a windowed layer holds window + 255 + window - 1 rows per kv head, a global one the context
        long perRow = 2L * s.KvHeads * s.HeadDim * sizeof(float);
        long want = Enumerable.Range(0, s.Layers).Sum(l => perRow * (s.LayerWindow(l) > 0 ? Window + InferenceEngine.PrefillChunk - 1 + Window - 1 : Context));
        Assert.Equal(want, ring.ByteSize);
        Assert.Equal(perRow * Context * s.Layers, full.ByteSize);
        Assert.True(ring.ByteSize * (arch == "mistral" ? 3 : 1.5) < full.ByteSize, $"{ring.ByteSize} of {full.ByteSize} bytes");
    }

    [Fact]
    public void The_ring_cache_equals_masked_full_attention_in_training()
    {
        var lm = Model("mistral");
        int[] tokens = Tokens(300);
        float[] train = lm.Forward(new Graph(recording: false), tokens, 1, 300).ToArray();
        using var m = InferenceModel.FromLanguageModel(lm);
        var e = new InferenceEngine(m, Context);
        var cache = e.CreateCache();
        var infer = new float[300 * m.Spec.VocabSize];
        e.Forward(cache, tokens[..200], infer, allLogits: true);
        for (int t = 200; t < 300; t++) e.Forward(cache, tokens[t..(t + 1)], infer.AsSpan(t * m.Spec.VocabSize, m.Spec.VocabSize));
        Assert.True(cache.IsWindowed(0));
        Close.Assert(train, infer, 1e-4, "ring-cache decode vs the training forward's masked attention");
    }

    [Fact]
    public void A_rewind_past_the_ring_is_refused_and_a_chat_runs_it_again()
    {
        var lm = Model("mistral");
        using var m = InferenceModel.FromLanguageModel(lm);
        var e = new InferenceEngine(m, Context);
        var cache = e.CreateCache();
        e.Forward(cache, Tokens(600), new float[m.Spec.VocabSize]);
        Assert.True(cache.CanTruncate(590));
        Assert.True(cache.CanTruncate(0));
        Assert.False(cache.CanTruncate(100)); // positions 85 .. 99 were overwritten by later ones
        Assert.Throws<InvalidOperationException>(() => cache.Truncate(100));
        cache.Truncate(0);
        e.Forward(cache, Tokens(120), new float[m.Spec.VocabSize]);
        Assert.True(cache.CanTruncate(100)); // after a reset, nothing past 120 was written
    }
}
