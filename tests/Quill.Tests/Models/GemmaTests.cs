// Gemma 2 and Gemma 3 (text): the crosscheck fixtures' HF folders (tiny random models and their PyTorch reference
// from make_crosscheck_fixtures.py; CrossCheckTests holds logits and gradients to it) read with the Gemma choices
// (windows per layer, the scale, the soft-caps, norm weights 1 + w), exported to GGUF as llama.cpp's gemma2 / gemma3
// and back to HF folders: Quill reads both as it read the original, llama.cpp reading the GGUF computes Quill's
// logits and greedy tokens over a sequence longer than the window, and cached decode equals a full recompute; a
// QLoRA adapter on a Q8_0 base of each trains (the loss falls, the base stays as it was).
using Quill.Formats;
using Quill.Formats.SafeTensors;
using Quill.Inference;
using Quill.Models;
using Quill.Tests.Support;

namespace Quill.Tests.Models;

public sealed class GemmaTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("quill-gemma-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static string Fixture(string arch) => Path.Combine(AppContext.BaseDirectory, "fixtures", "crosscheck", arch, "hf");

    private static float[] Logits(InferenceModel m, int[] tokens)
    {
        var e = new InferenceEngine(m, 64);
        var all = new float[tokens.Length * m.Spec.VocabSize];
        e.Forward(e.CreateCache(), tokens, all, allLogits: true);
        return all;
    }

    private static int[] Tokens(int n, int vocab) => [.. Enumerable.Range(0, n).Select(i => (i * 29 + 3) % vocab)];

    [Fact]
    public void Gemma2_reads_as_alternating_windows_with_soft_caps_and_one_plus_w_norms()
    {
        using var m = ModelLoader.Load(Fixture("gemma2"));
        var s = m.Spec;
        Assert.Equal("gemma2", s.Arch);
        Assert.Equal([5, 0], Enumerable.Range(0, s.Layers).Select(s.LayerWindow));
        Assert.Equal(64, s.MaxContext); // the window caps nothing
        Assert.Equal(1f / MathF.Sqrt(16), s.EffectiveAttentionScale);
        Assert.Equal(0.03f, s.AttnSoftcap);
        Assert.Equal(0.2f, s.FinalSoftcap);
        Assert.True(s.PostNorms && s.EmbedScale && s.TiedEmbeddings && !s.QkNorm);
        Assert.Equal(MlpKind.GeGlu, s.Mlp);
        using var raw = SafeTensorsFile.Open(Path.Combine(Fixture("gemma2"), "model.safetensors"));
        float[] w = raw.ReadSingle("model.layers.1.pre_feedforward_layernorm.weight");
        Assert.Equal(w.Select(x => 1 + x), m.Layers[1].MlpNorm);
        Assert.Equal("gemma2", ModelConfig.FromSpec(s).Arch);
    }

    [Fact]
    public void Gemma3_reads_five_local_layers_then_a_global_one_with_two_rope_bases()
    {
        using var m = ModelLoader.Load(Fixture("gemma3"));
        var s = m.Spec;
        Assert.Equal("gemma3", s.Arch);
        Assert.Equal([5, 5, 5, 5, 5, 0], Enumerable.Range(0, s.Layers).Select(s.LayerWindow));
        Assert.Equal(10000, s.LayerRopeTheta(0));
        Assert.Equal(1_000_000, s.LayerRopeTheta(5));
        Assert.True(s.QkNorm && s.PostNorms && s.AttnSoftcap == 0 && s.FinalSoftcap == 0);
        Assert.Equal("gemma3", ModelConfig.FromSpec(s).Arch);
    }

    [Theory]
    [InlineData("gemma2")]
    [InlineData("gemma3")]
    public void Gguf_and_hf_exports_read_back_with_the_same_logits_and_llama_cpp_agrees(string arch)
    {
        using var hf = ModelLoader.Load(Fixture(arch));
        int v = hf.Spec.VocabSize;
        int[] tokens = Tokens(16, v); // longer than the window of 5
        float[] want = Logits(hf, tokens);

        string gguf = Path.Combine(dir, arch + ".gguf");
        var report = GgufExport.Write(hf, gguf, TensorTypePlan.Parse("f32"));
        Assert.Equal(arch, report.Architecture);
        using (var back = ModelLoader.Load(gguf))
        {
            Assert.Equal(hf.Spec with { Arch = arch }, back.Spec with { Arch = arch });
            Close.Assert(want, Logits(back, tokens), 1e-6, $"{arch} through GGUF");
        }
        string folder = Path.Combine(dir, "hf");
        HfExport.Write(hf, folder, SafeTensorDtype.F32);
        Assert.Equal(HfConfig.Load(Fixture(arch)).ModelType, HfConfig.Load(folder).ModelType);
        using (var back = ModelLoader.Load(folder)) Close.Assert(want, Logits(back, tokens), 1e-6, $"{arch} through an HF folder");

        using var cpp = LlamaCpp.Open(gguf, f32Cache: true);
        float[][] theirs = cpp.Logits(tokens);
        Close.Assert([.. theirs.SelectMany(r => r)], want, 1e-3, $"llama.cpp vs Quill on {arch}"); // ggml's GELU is a half-precision table
        using var quill = ModelLoader.Load(gguf);
        var engine = new InferenceEngine(quill, 64);
        Assert.Equal(cpp.Greedy(tokens[..4], 24), Inference.LlamaCppOracleTests.GreedyQuill(engine, tokens[..4], 24, v));
    }

    [Theory]
    [InlineData("gemma2")]
    [InlineData("gemma3")]
    public void Quantized_gguf_matches_llama_cpp_on_the_same_file(string arch)
    {
        using var hf = ModelLoader.Load(Fixture(arch));
        int v = hf.Spec.VocabSize;
        int[] tokens = Tokens(16, v);
        string gguf = Path.Combine(dir, arch + "-q8_0.gguf");
        GgufExport.Write(hf, gguf, TensorTypePlan.Parse("q8_0"));
        using var q = ModelLoader.Load(gguf);
        float[] ours = Logits(q, tokens), exact = Logits(hf, tokens);
        Assert.Contains(q.Layers.SelectMany(l => l.Matrices()), m => m.Type == Quill.Quantization.GgmlType.Q8_0);
        Close.Assert(exact, ours, 2e-2, $"{arch} q8_0 vs f32");
        using var cpp = LlamaCpp.Open(gguf, f32Cache: true);
        // llama.cpp also rounds the activations to 8 bits for its q8_0 products, Quill keeps them in f32
        Close.Assert([.. cpp.Logits(tokens).SelectMany(r => r)], ours, 1e-2, $"llama.cpp vs Quill on {arch} q8_0");
    }

    [Theory]
    [InlineData("gemma2")]
    [InlineData("gemma3")]
    public void Cached_decode_past_the_window_equals_a_full_recompute(string arch)
    {
        using var m = ModelLoader.Load(Fixture(arch));
        int v = m.Spec.VocabSize;
        int[] tokens = Tokens(20, v);
        float[] full = Logits(m, tokens);
        var e = new InferenceEngine(m, 64);
        var cache = e.CreateCache();
        var step = new float[v];
        e.Forward(cache, tokens[..3], new float[3 * v], allLogits: true);
        for (int t = 3; t < tokens.Length; t++)
        {
            e.Forward(cache, tokens[t..(t + 1)], step);
            Close.Assert(full.AsSpan(t * v, v).ToArray(), step, 1e-5, $"{arch}: decode at {t} vs full recompute");
        }
    }

    [Theory]
    [InlineData("gemma2")]
    [InlineData("gemma3")]
    public void A_qlora_adapter_on_a_q8_0_base_trains(string arch)
    {
        using var m = ModelLoader.Load(Fixture(arch));
        int v = m.Spec.VocabSize, b = 2, t = 12;
        int[] tokens = Tokens(b * t + 1, v);
        int[] input = tokens[..(b * t)], targets = tokens[1..];
        var lm = LanguageModel.QuantizedBase(m.Weights, Quill.Quantization.GgmlType.Q8_0);
        float[] f32 = LanguageModel.FromWeights(m.Weights).Forward(new Quill.Autograd.Graph(recording: false), input, b, t).ToArray();
        Close.Assert(f32, lm.Forward(new Quill.Autograd.Graph(recording: false), input, b, t).ToArray(), 2e-2, $"{arch}: Q8_0 base vs f32");
        lm.AddLora(new LoraConfig { Rank = 4, Alpha = 8, TargetModules = [LoraConfig.AllLinear] });
        lm.Parameters.EnableGrads();
        var opt = new Quill.Training.AdamWOptimizer(lm.Parameters, new Quill.Training.TrainConfig { LearningRate = 3e-2f, WeightDecay = 0f });
        double first = 0, last = 0;
        for (int step = 0; step < 10; step++)
        {
            var g = new Quill.Autograd.Graph();
            var loss = lm.Loss(g, input, targets, b, t);
            if (step == 0) first = loss.Item();
            last = loss.Item();
            g.Backward(loss);
            opt.Step(3e-2f, 1f);
            lm.Parameters.ZeroGrads();
        }
        Assert.True(last < first - 0.1, $"{arch}: loss {first} -> {last}");
    }
}
