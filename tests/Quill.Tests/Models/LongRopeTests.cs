// Phi-3.5 / Phi-4 LongRoPE: the crosscheck fixture phi3longrope (make_crosscheck_fixtures.py: original context 32,
// maximum 64, so the attention factor is sqrt(1 + ln 2 / ln 32); full-head rotary with four pairs and their short
// and long factors) holds a 12-token step (short factors, as transformers uses below the original context; its
// gradients are checked in CrossCheckTests) and a 40-token sequence (long factors). Here: the spec it reads as, the
// training forward and the engine against both references (the engine picks by its context, as llama.cpp does), a
// GGUF export (llama.cpp's phi3 with rope_factors_long / _short and the attention factor) read back and run by
// llama.cpp to the same logits and greedy tokens, cached decode, and the checkpoint config's round trip.
using System.Text.Json.Nodes;
using Quill.Autograd;
using Quill.Formats;
using Quill.Inference;
using Quill.Models;
using Quill.Tests.Support;

namespace Quill.Tests.Models;

public sealed class LongRopeTests : IDisposable
{
    private static readonly string Root = Path.Combine(AppContext.BaseDirectory, "fixtures", "crosscheck", "phi3longrope");
    private readonly string dir = Directory.CreateTempSubdirectory("quill-longrope-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static JsonNode Step => JsonNode.Parse(File.ReadAllText(Path.Combine(Root, "step.json")))!;

    private static int[] Flat(JsonNode j, string key) => [.. j[key]!.AsArray().SelectMany(row => row!.AsArray().Select(n => n!.GetValue<int>()))];

    private static float[] Floats(string file)
    {
        byte[] raw = File.ReadAllBytes(Path.Combine(Root, file));
        var f = new float[raw.Length / 4];
        Buffer.BlockCopy(raw, 0, f, 0, raw.Length);
        return f;
    }

    private static float[] EngineLogits(InferenceModel m, int context, int[] tokens, int rows)
    {
        var e = new InferenceEngine(m, context);
        int t = tokens.Length / rows, v = m.Spec.VocabSize;
        var all = new float[tokens.Length * v];
        for (int r = 0; r < rows; r++) e.Forward(e.CreateCache(), tokens.AsSpan(r * t, t), all.AsSpan(r * t * v, t * v), allLogits: true);
        return all;
    }

    [Fact]
    public void The_config_reads_as_longrope_with_the_default_attention_factor()
    {
        using var m = ModelLoader.Load(Path.Combine(Root, "hf"));
        var lr = m.Spec.LongRope!;
        Assert.Equal([1.0f, 1.25f, 1.5f, 2.0f], lr.ShortFactors);
        Assert.Equal([1.0f, 3.0f, 7.5f, 24.0f], lr.LongFactors);
        Assert.Equal(32, lr.OriginalMaxPositions);
        Assert.Equal(Step["rope_magnitude"]!.GetValue<double>(), lr.AttentionFactor, 12);
        Assert.Equal(Math.Sqrt(1 + Math.Log(2) / Math.Log(32)), lr.AttentionFactor, 12);
    }

    [Fact]
    public void Short_and_long_factors_match_torch_in_training_and_inference()
    {
        var j = Step;
        using var m = ModelLoader.Load(Path.Combine(Root, "hf"));
        var lm = LanguageModel.FromWeights(m.Weights);
        int[] tokens = Flat(j, "tokens"), longTokens = Flat(j, "long_tokens");
        float[] shortRef = Floats("logits.bin"), longRef = Floats("logits_long.bin");

        Close.Assert(shortRef, lm.Forward(new Graph(recording: false), tokens, 2, 12).ToArray(), 1e-4, "training, 12 tokens (short factors)");
        Close.Assert(shortRef, EngineLogits(m, 32, tokens, 2), 1e-4, "engine at context 32 (short factors)");
        Close.Assert(longRef, lm.Forward(new Graph(recording: false), longTokens, 1, 40).ToArray(), 1e-4, "training, 40 tokens (long factors)");
        Close.Assert(longRef, EngineLogits(m, 64, longTokens, 1), 1e-4, "engine at context 64 (long factors)");
        // the factors matter: the 12 tokens run at context 64 (long factors) are not the short reference
        float[] wrong = EngineLogits(m, 64, tokens, 2);
        Assert.True(wrong.Zip(shortRef).Max(p => Math.Abs(p.First - p.Second)) > 1e-3, "long and short factors give the same logits; the test would prove nothing");
    }

    [Fact]
    public void A_gguf_export_is_phi3_with_the_factors_and_llama_cpp_agrees()
    {
        using var hf = ModelLoader.Load(Path.Combine(Root, "hf"));
        int[] tokens = Flat(Step, "long_tokens");
        string gguf = Path.Combine(dir, "phi3longrope.gguf");
        Assert.Equal("phi3", GgufExport.Write(hf, gguf, TensorTypePlan.Parse("f32")).Architecture);
        using var back = ModelLoader.Load(gguf);
        var lr = back.Spec.LongRope!;
        Assert.Equal(hf.Spec.LongRope!.ShortFactors, lr.ShortFactors);
        Assert.Equal(hf.Spec.LongRope.LongFactors, lr.LongFactors);
        Assert.Equal((32, (float)hf.Spec.LongRope.AttentionFactor), (lr.OriginalMaxPositions, (float)lr.AttentionFactor));
        float[] want = EngineLogits(hf, 64, tokens, 1);
        Close.Assert(want, EngineLogits(back, 64, tokens, 1), 1e-5, "through GGUF, long factors");
        Close.Assert(EngineLogits(hf, 32, tokens[..20], 1), EngineLogits(back, 32, tokens[..20], 1), 1e-5, "through GGUF, short factors");

        // llama.cpp's context (256) exceeds the original 32: the long factors, as ours at 64
        ArchChecks.LlamaCppAgrees(gguf, tokens, want, 1e-3, 24, "phi3 LongRoPE");
    }

    [Fact]
    public void Cached_decode_equals_a_full_recompute()
    {
        using var m = ModelLoader.Load(Path.Combine(Root, "hf"));
        ArchChecks.CachedDecodeEqualsRecompute(m, Flat(Step, "long_tokens"), 5, "phi3 LongRoPE");
    }

    [Fact]
    public void A_checkpoint_config_keeps_longrope()
    {
        using var m = ModelLoader.Load(Path.Combine(Root, "hf"));
        var cfg = ModelConfig.FromSpec(m.Spec);
        Assert.Equal("longrope", cfg.RopeScaling!.Type);
        var json = System.Text.Json.JsonSerializer.Serialize(cfg);
        var back = System.Text.Json.JsonSerializer.Deserialize<ModelConfig>(json)!;
        back.Validate();
        var lr = back.ToSpec().LongRope!;
        Assert.Equal(m.Spec.LongRope!.ShortFactors, lr.ShortFactors);
        Assert.Equal(m.Spec.LongRope.LongFactors, lr.LongFactors);
        Assert.Equal(m.Spec.LongRope.AttentionFactor, lr.AttentionFactor, 12);
        var bad = Assert.Throws<InvalidConfigException>(() => HfConfig.Parse(File.ReadAllText(Path.Combine(Root, "hf", "config.json")).Replace("\"short_factor\"", "\"shortish\"", StringComparison.Ordinal), "cfg"));
        Assert.Contains("short_factor", bad.Message, StringComparison.Ordinal);
    }
}
