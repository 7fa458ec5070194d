// Mixtures of experts: Mixtral and Qwen3-MoE. CrossCheckTests holds the crosscheck fixtures' tiny random models
// (make_crosscheck_fixtures.py: 4 experts, 2 per token) to PyTorch for logits and every gradient, router included;
// here: the spec they read as, exports to GGUF (llama.cpp's llama with experts / qwen3moe, 3-D expert tensors) and
// HF folders read back with the same logits, llama.cpp on the GGUF computes Quill's logits and greedy tokens, a Q8_0
// file stays within the quantization bound, cached decode equals a full recompute, a decode step reads only the k
// chosen experts' weights, the routing gradient (renormalized or not) against finite differences, and one-line
// refusals of what is not supported.
using Quill.Autograd;
using Quill.Autograd.Ops;
using Quill.Formats;
using Quill.Formats.SafeTensors;
using Quill.Inference;
using Quill.Kernels;
using Quill.Models;
using Quill.Quantization;
using Quill.Tensors;
using Quill.Tests.Support;

namespace Quill.Tests.Models;

public sealed class MoeTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("quill-moe-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static string Fixture(string arch) => Path.Combine(AppContext.BaseDirectory, "fixtures", "crosscheck", arch, "hf");

    private static float[] Logits(InferenceModel m, int[] tokens) => ArchChecks.Logits(m, tokens);

    private static int[] Tokens(int n, int vocab) => [.. Enumerable.Range(0, n).Select(i => (i * 29 + 3) % vocab)];

    [Theory]
    [InlineData("mixtral", false)]
    [InlineData("qwen3moe", true)]
    public void The_fixtures_read_as_mixtures_of_four_experts_two_per_token(string arch, bool qkNorm)
    {
        using var m = ModelLoader.Load(Fixture(arch));
        var s = m.Spec;
        Assert.Equal(arch, s.Arch);
        Assert.True(s.IsMoe && s.NormTopK);
        Assert.Equal((4, 2, 32, qkNorm), (s.Experts, s.ExpertsUsed, s.Hidden, s.QkNorm));
        Assert.All(m.Layers, l => Assert.True(l.Experts != null && l.Gate == null && l.Up == null && l.Down == null));
        using var raw = SafeTensorsFile.Open(Path.Combine(Fixture(arch), "model.safetensors"));
        string down = arch == "mixtral" ? "model.layers.1.block_sparse_moe.experts.3.w2.weight" : "model.layers.1.mlp.experts.3.down_proj.weight";
        Assert.Equal(raw.ReadSingle(down), m.Layers[1].Experts!.Down[3].ToFloats());
        Assert.Equal(arch, ModelConfig.FromSpec(s).Arch);
        // a decode step reads the router and 2 of the 4 experts of each layer
        long experts = m.Layers.Sum(l => l.Experts!.ExpertBytes());
        Assert.False(m.Weights.Tied);
        Assert.Equal(m.Weights.WeightBytes - experts / 2, m.WeightBytesPerToken + m.Weights.TokenEmbedding.ByteSize - m.Weights.TokenEmbedding.RowBytes);
    }

    [Theory]
    [InlineData("mixtral", "llama")]
    [InlineData("qwen3moe", "qwen3moe")]
    public void Gguf_and_hf_exports_read_back_with_the_same_logits_and_llama_cpp_agrees(string arch, string ggufArch)
    {
        using var hf = ModelLoader.Load(Fixture(arch));
        int v = hf.Spec.VocabSize;
        int[] tokens = Tokens(16, v);
        float[] want = Logits(hf, tokens);

        string gguf = Path.Combine(dir, arch + ".gguf");
        var report = GgufExport.Write(hf, gguf, TensorTypePlan.Parse("f32"));
        Assert.Equal(ggufArch, report.Architecture);
        using (var back = ModelLoader.Load(gguf))
        {
            Assert.Equal(hf.Spec with { Arch = arch }, back.Spec with { Arch = arch, RopeStyle = hf.Spec.RopeStyle });
            Assert.Equal(arch, back.Spec.Arch); // GGUF llama with experts is Mixtral
            Close.Assert(want, Logits(back, tokens), 1e-5, $"{arch} through GGUF");
        }
        string folder = Path.Combine(dir, "hf");
        HfExport.Write(hf, folder, SafeTensorDtype.F32);
        Assert.Equal(HfConfig.Load(Fixture(arch)).ModelType, HfConfig.Load(folder).ModelType);
        using (var back = ModelLoader.Load(folder)) Close.Assert(want, Logits(back, tokens), 1e-6, $"{arch} through an HF folder");

        ArchChecks.LlamaCppAgrees(gguf, tokens, want, 1e-3, 20, arch); // 1e-3 as for qwen3: 1.2e-4 apart at most here
        using var quill = ModelLoader.Load(gguf);
        int[] mine = Inference.LlamaCppOracleTests.GreedyQuill(new InferenceEngine(quill, 64), tokens[..4], 20, v);
        using var fromHf = ModelLoader.Load(Fixture(arch));
        Assert.Equal(mine, Inference.LlamaCppOracleTests.GreedyQuill(new InferenceEngine(fromHf, 64), tokens[..4], 20, v)); // GGUF and HF forms agree
    }

    [Theory]
    [InlineData("mixtral")]
    [InlineData("qwen3moe")]
    public void A_q8_0_gguf_stays_within_the_block_bound_and_matches_llama_cpp(string arch)
    {
        using var hf = ModelLoader.Load(Fixture(arch));
        int[] tokens = Tokens(16, hf.Spec.VocabSize);
        string gguf = Path.Combine(dir, arch + "-q8_0.gguf");
        GgufExport.Write(hf, gguf, TensorTypePlan.Parse("q8_0"));
        using var q = ModelLoader.Load(gguf);
        Assert.All(q.Layers, l => Assert.Equal(GgmlType.Q8_0, l.Experts!.Down[1].Type));
        Assert.All(q.Layers, l => Assert.Equal(GgmlType.F32, l.Experts!.Router.Type));
        float[] ours = Logits(q, tokens);
        Close.Assert(Logits(hf, tokens), ours, 2e-2, $"{arch} q8_0 vs f32");
        using var cpp = LlamaCpp.Open(gguf, f32Cache: true);
        Close.Assert([.. cpp.Logits(tokens).SelectMany(r => r)], ours, 1e-2, $"llama.cpp vs Quill on {arch} q8_0");
    }

    [Theory]
    [InlineData("mixtral")]
    [InlineData("qwen3moe")]
    public void Cached_decode_equals_a_full_recompute(string arch)
    {
        using var m = ModelLoader.Load(Fixture(arch));
        ArchChecks.CachedDecodeEqualsRecompute(m, Tokens(20, m.Spec.VocabSize), 3, arch);
    }

    [Fact]
    public void A_decode_step_reads_only_the_chosen_experts_and_a_prefill_each_expert_once()
    {
        using var m = ModelLoader.Load(Fixture("mixtral"));
        var x = m.Layers[0].Experts!;
        long router = x.Router.ByteSize, expert = x.Gate[0].ByteSize + x.Up[0].ByteSize + x.Down[0].ByteSize;
        var e = new InferenceEngine(m, 64);
        var cache = e.CreateCache();
        int[] tokens = Tokens(12, m.Spec.VocabSize);
        e.Forward(cache, tokens, new float[m.Spec.VocabSize]);
        long prefill = e.ExpertBytesRead;
        Assert.True(prefill <= m.Spec.Layers * (router + 4 * expert), $"a prefill read {prefill} bytes: some expert ran more than once");
        e.Forward(cache, [5], new float[m.Spec.VocabSize]);
        long step = e.ExpertBytesRead - prefill;
        Assert.Equal(m.Spec.Layers * (router + 2 * expert), step); // 2 of 4 experts per layer
        Assert.Equal(m.Weights.WeightBytes - m.Spec.Layers * 2 * expert, m.WeightBytesPerToken + m.Weights.TokenEmbedding.ByteSize - m.Weights.TokenEmbedding.RowBytes);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void The_routing_gradient_matches_finite_differences(bool normalize)
    {
        var rng = new Random(7);
        int e = 6, k = 3;
        float[] z = [.. Enumerable.Range(0, e).Select(_ => (float)(rng.NextDouble() * 4 - 2))];
        float[] c = [.. Enumerable.Range(0, k).Select(_ => (float)(rng.NextDouble() * 2 - 1))];
        int[] chosen = new int[k];
        float[] w = new float[k];
        double Loss(float[] logits)
        {
            int[] ch = new int[k];
            float[] ww = new float[k];
            MoeRouting.Route(logits, k, normalize, ch, ww);
            Assert.Equal(chosen, ch); // the perturbation crosses no routing boundary
            return Enumerable.Range(0, k).Sum(j => (double)c[j] * ww[j]);
        }
        MoeRouting.Route(z, k, normalize, chosen, w);
        Assert.Equal(normalize ? 1.0 : w.Sum(), w.Sum(), 1e-6);
        Assert.True(normalize || w.Sum() < 0.999f, "the plain weights of 3 of 6 experts do not sum to 1");
        var grad = new float[e];
        MoeRouting.Backward(z, chosen, w, c, normalize, grad);
        for (int i = 0; i < e; i++)
        {
            const float h = 1e-2f;
            float[] up = (float[])z.Clone(), down = (float[])z.Clone();
            up[i] += h;
            down[i] -= h;
            double fd = (Loss(up) - Loss(down)) / (2 * h);
            Assert.True(Math.Abs(fd - grad[i]) < 2e-4, $"dlogit {i}: analytic {grad[i]:G6}, finite differences {fd:G6}");
            if (normalize && !chosen.Contains(i)) Assert.Equal(0f, grad[i]);
            if (!normalize) Assert.NotEqual(0f, grad[i]); // every logit moves the plain softmax
        }
    }

    [Fact]
    public void The_combine_op_backward_matches_finite_differences()
    {
        // y[t] = sum_s w[t, s] out_e[row], through a cross-entropy to a scalar: d out_e[row] = w dy[t], d w[t, s] = <out_e[row], dy[t]>
        int n = 3, k = 2, c = 4;
        var rng = new Rng(3);
        Tensor Param(params int[] shape)
        {
            var t = new Tensor(shape);
            var s = t.Span;
            for (int i = 0; i < s.Length; i++) s[i] = (float)(rng.NextDouble() * 2 - 1);
            t.RequiresGrad = true;
            return t;
        }
        var w = Param(n, k);
        var o0 = Param(2, c); // expert 0 answers picks 0 (token 0) and 4 (token 2)
        var o1 = Param(4, c); // expert 1 answers picks 1, 2, 3, 5
        int[]?[] picks = [[0, 4], [1, 2, 3, 5]];
        int[] targets = [1, 3, 0];
        double Loss()
        {
            var g0 = new Graph(recording: false);
            return CrossEntropyOp.Forward(g0, MoeCombineOp.Forward(g0, [o0, o1], picks, w, [n, c]), targets).Item();
        }
        var g = new Graph();
        g.Backward(CrossEntropyOp.Forward(g, MoeCombineOp.Forward(g, [o0, o1], picks, w, [n, c]), targets));
        foreach (var p in new[] { w, o0, o1 })
        {
            for (int i = 0; i < p.Length; i++)
            {
                float keep = p.Span[i];
                p.Span[i] = keep + 1e-2f;
                double up = Loss();
                p.Span[i] = keep - 1e-2f;
                double down = Loss();
                p.Span[i] = keep;
                double fd = (up - down) / 2e-2;
                Assert.True(Math.Abs(fd - p.Grad!.Span[i]) < 1e-4 + 1e-3 * Math.Abs(fd), $"{Tensor.Describe(p.Shape)}[{i}]: analytic {p.Grad.Span[i]:G6}, finite differences {fd:G6}");
            }
        }
    }

    [Fact]
    public void Unnormalized_gates_train_and_infer_alike()
    {
        // Qwen3-MoE with norm_topk_prob false: the plain softmax weights of the chosen experts
        var cfg = new ModelConfig { Arch = "qwen3moe", VocabSize = 61, NLayer = 2, NHead = 4, NKvHead = 2, NEmbd = 32, BlockSize = 32, MlpHidden = 16, Experts = 4, ExpertsUsed = 2, NormTopK = false, TieEmbeddings = false };
        var lm = LanguageModel.Create(cfg, seed: 11);
        foreach (var p in lm.Parameters.Where(p => p.Name.EndsWith("mlp.gate.weight", StringComparison.Ordinal))) Elementwise.Scale(p.Span, 50f); // clear routing margins
        Assert.False(lm.Spec.NormTopK);
        int[] tokens = Tokens(16, 61);
        float[] train = lm.Forward(new Graph(recording: false), tokens, 2, 8).ToArray();
        using var view = InferenceModel.FromLanguageModel(lm);
        var e = new InferenceEngine(view, 32);
        var infer = new float[16 * 61];
        for (int b = 0; b < 2; b++) e.Forward(e.CreateCache(), tokens.AsSpan(b * 8, 8), infer.AsSpan(b * 8 * 61, 8 * 61), allLogits: true);
        Close.Assert(train, infer, 1e-5, "qwen3moe without renormalization: training vs inference");
        Assert.Throws<QuillException>(() => GgufExport.ArchitectureOf(lm.Spec, "test")); // llama.cpp always renormalizes
    }

    [Fact]
    public void A_lora_adapter_on_all_linear_layers_sits_on_the_attention_and_trains()
    {
        using var m = ModelLoader.Load(Fixture("mixtral"));
        var lm = LanguageModel.FromWeights(m.Weights);
        var adapter = lm.AddLora(new LoraConfig { Rank = 4, Alpha = 8, TargetModules = [LoraConfig.AllLinear] });
        Assert.Equal(4 * m.Spec.Layers, adapter.Modules.Count);
        Assert.All(adapter.Modules, x => Assert.Contains(x.Slot, new[] { WeightSlot.Q, WeightSlot.K, WeightSlot.V, WeightSlot.O }));
        var (first, last) = ArchChecks.Train(lm, Tokens(25, m.Spec.VocabSize), 15);
        Assert.True(last < first - 0.1, $"loss {first} -> {last}");
        Assert.All(lm.Parameters.Where(p => p.Name.Contains("experts", StringComparison.Ordinal)), p => Assert.False(p.RequiresGrad));
    }

    [Fact]
    public void Unsupported_mixtures_are_one_line_errors()
    {
        string cfg = File.ReadAllText(Path.Combine(Fixture("qwen3moe"), "config.json"));
        var e = Assert.Throws<InvalidConfigException>(() => HfConfig.Parse(cfg.Replace("\"mlp_only_layers\": []", "\"mlp_only_layers\": [0]", StringComparison.Ordinal), "cfg"));
        Assert.Contains("dense layers", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
        var bad = Assert.Throws<InvalidConfigException>(() => HfConfig.Parse(cfg.Replace("\"num_experts_per_tok\": 2", "\"num_experts_per_tok\": 9", StringComparison.Ordinal), "cfg"));
        Assert.Contains("between 1 and all", bad.Message, StringComparison.Ordinal);
        using var m = ModelLoader.Load(Fixture("mixtral"));
        Assert.Throws<InvalidConfigException>(() => LanguageModel.QuantizedBase(m.Weights, GgmlType.Q8_0));
        Assert.Throws<QuillException>(() => Llama2cExport.Write(m, Path.Combine(dir, "x.bin")));
    }
}
