// A PEFT LoRA adapter run unmerged beside the inference weights (InferenceModel.WithAdapter, what generate / chat /
// serve --adapter load): its logits equal the merged model's (WithLoraAdapter: W + s B A in f32) with separate q, k, v
// matrices (Qwen2, Mistral with grouped keys) and a fused c_attn adapted whole (GPT-2), in a prompt (GEMM) and in
// one-token decode (GEMV); a quantized base keeps its block type (no f32 copy) and each of its products gets exactly
// the adapter's s (x A^T) B^T added.
using Quill.Inference;
using Quill.Models;
using Quill.Quantization;
using Quill.Tensors;

namespace Quill.Tests.Inference;

public sealed class UnmergedAdapterTests : IDisposable
{
    /// <summary>The adapter folder of this test (xUnit makes one instance per test).</summary>
    private readonly string dir = Directory.CreateTempSubdirectory("quill-unmerged-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static string Fixture(string arch) => Path.Combine(AppContext.BaseDirectory, "fixtures", "arch", arch, "hf");

    /// <summary>A rank-4 adapter on every linear layer of the fixture, B drawn so that it moves the logits.</summary>
    private static void SaveAdapter(string hf, string folder)
    {
        using var loaded = ModelLoader.Load(hf);
        var lm = LanguageModel.FromWeights(loaded.Weights);
        var lora = lm.AddLora(new LoraConfig { Rank = 4, Alpha = 8, TargetModules = [LoraConfig.AllLinear] });
        var rng = new Rng(11);
        foreach (var m in lora.Modules) rng.FillNormal(m.B.Span, 0.5);
        lora.Save(folder);
    }

    /// <summary>Logits of a 12-token prompt (every position: the GEMM path) and of one more token (the GEMV path).</summary>
    private static float[] Logits(InferenceModel model)
    {
        int v = model.Spec.VocabSize;
        int[] prompt = [.. Enumerable.Range(0, 12).Select(i => (i * 7 + 3) % v)];
        var e = new InferenceEngine(model);
        var cache = e.CreateCache();
        var all = new float[(prompt.Length + 1) * v];
        e.Forward(cache, prompt, all.AsSpan(0, prompt.Length * v), allLogits: true);
        e.Forward(cache, [5 % v], all.AsSpan(prompt.Length * v, v));
        return all;
    }

    private static double Worst(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs((double)x - y)).Max();

    [Theory]
    [InlineData("qwen2")]
    [InlineData("gpt2")]
    [InlineData("mistral")]
    public void Unmerged_logits_equal_the_merged_models(string arch)
    {
        string hf = Fixture(arch);
        SaveAdapter(hf, dir);
        float[] plain, merged;
        using (var m = ModelLoader.Load(hf))
        {
            plain = Logits(m);
            using var mm = m.WithLoraAdapter(dir);
            merged = Logits(mm);
        }
        using var adapted = ModelLoader.Load(hf).WithAdapter(dir);
        Assert.All(adapted.Layers, l => Assert.All(l.Matrices(), w => Assert.NotEmpty(w.Updates)));
        float[] got = Logits(adapted);
        double scale = merged.Max(x => Math.Abs((double)x));
        Assert.True(Worst(got, merged) <= 1e-5 * scale, $"{arch}: unmerged vs merged differ by {Worst(got, merged)} (logit scale {scale})");
        Assert.True(Worst(plain, merged) > 1e-2 * scale, $"{arch}: the adapter moved the logits by only {Worst(plain, merged)}");
    }

    [Fact]
    public void A_quantized_base_keeps_its_block_type_under_an_adapter()
    {
        string hf = Fixture("qwen2");
        SaveAdapter(hf, dir);
        float[] plain;
        GgmlType[] types;
        using (var q = ModelLoader.Load(hf, null, "q8_0"))
        {
            types = [.. q.Layers.SelectMany(l => l.Matrices()).Select(w => w.Type)];
            Assert.Contains(GgmlType.Q8_0, types);
            plain = Logits(q);
        }
        using var adapted = ModelLoader.Load(hf, null, "q8_0").WithAdapter(dir);
        Assert.Equal(types, adapted.Layers.SelectMany(l => l.Matrices()).Select(w => w.Type));
        Assert.All(adapted.Layers, l => Assert.All(l.Matrices(), w => Assert.NotEmpty(w.Updates)));
        Assert.True(Worst(plain, Logits(adapted)) > 1e-2 * plain.Max(x => Math.Abs((double)x)), "the adapter did not move the Q8_0 model's logits");

        // each product of a Q8_0 matrix (GEMV for 1 row, the integer GEMM for 12) plus exactly s (x A^T) B^T
        var w = adapted.Layers[0].Matrices().First(m => m.Type == GgmlType.Q8_0);
        var u = Assert.Single(w.Updates);
        var bare = new WeightMatrix(w.Name, w.Type, w.Address, w.Rows, w.Cols, w);
        var rng = new Rng(3);
        foreach (int m in new[] { 1, 12 })
        {
            var x = new float[m * w.Cols];
            rng.FillNormal(x, 1);
            float[] y = new float[m * w.Rows], y0 = new float[m * w.Rows], want = new float[m * w.Rows];
            unsafe
            {
                fixed (float* px = x, py = y, py0 = y0)
                {
                    w.Multiply(px, w.Cols, m, py, w.Rows);
                    bare.Multiply(px, w.Cols, m, py0, w.Rows);
                }
            }
            for (int i = 0; i < m; i++)
            {
                for (int o = 0; o < u.Rows; o++)
                {
                    double d = 0;
                    for (int j = 0; j < u.Rank; j++)
                    {
                        double ax = 0;
                        for (int c = 0; c < w.Cols; c++) ax += (double)u.A[j * w.Cols + c] * x[i * w.Cols + c];
                        d += u.B[o * u.Rank + j] * ax;
                    }
                    want[i * w.Rows + u.Row0 + o] = (float)(u.Scaling * d);
                }
            }
            double worst = 0, scale = want.Max(v => Math.Abs((double)v));
            for (int k = 0; k < y.Length; k++) worst = Math.Max(worst, Math.Abs((double)y[k] - y0[k] - want[k]));
            Assert.True(scale > 0 && worst <= 1e-5 * (1 + scale), $"{w.Name}, {m} row(s): the update added differs from s (x A^T) B^T by {worst}");
        }
    }

    [Fact]
    public void Converting_exporting_or_merging_into_an_adapted_model_is_refused_rather_than_dropping_the_adapter()
    {
        string hf = Fixture("qwen2");
        SaveAdapter(hf, dir);
        using var adapted = ModelLoader.Load(hf).WithAdapter(dir);
        Assert.True(adapted.HasAdapter);
        foreach (Action act in new Action[]
        {
            () => adapted.Requantize(GgmlType.Q8_0).Dispose(),
            () => adapted.WithLoraAdapter(dir).Dispose(),
            () => GgufExport.Write(adapted, Path.Combine(dir, "x.gguf"), TensorTypePlan.Uniform(GgmlType.F32)),
            () => HfExport.Write(adapted, Path.Combine(dir, "hf"), Quill.Formats.SafeTensors.SafeTensorDtype.F32),
        })
        {
            var e = Assert.Throws<InvalidConfigException>(act);
            Assert.Contains("runs a LoRA adapter unmerged; merge it first", e.Message, StringComparison.Ordinal);
        }
        Assert.False(File.Exists(Path.Combine(dir, "x.gguf")));
    }

    [Fact]
    public void An_adapter_for_another_model_is_one_clear_error_and_the_base_is_untouched()
    {
        SaveAdapter(Fixture("gpt2"), dir);
        using var qwen = ModelLoader.Load(Fixture("qwen2"));
        float[] before = Logits(qwen);
        var e = Assert.ThrowsAny<QuillException>(() => qwen.WithAdapter(dir));
        Assert.DoesNotContain('\n', e.Message);
        Assert.Equal(before, Logits(qwen));
    }
}
