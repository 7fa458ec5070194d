// OLMo 2 (no norms before attention or the MLP, RMSNorms of their outputs, q and k each RMS-normalized over the whole
// projection): the crosscheck fixture's HF folder (make_crosscheck_fixtures.py; CrossCheckTests holds logits and
// every gradient to PyTorch) exported to GGUF as llama.cpp's olmo2 and back to a Hugging Face folder: Quill reads
// both as it read the original, llama.cpp computes Quill's logits and greedy tokens on the GGUF, cached decode equals
// a full recompute, and a LoRA adapter on it trains.
using Quill.Autograd;
using Quill.Formats;
using Quill.Formats.SafeTensors;
using Quill.Inference;
using Quill.Models;
using Quill.Tests.Support;

namespace Quill.Tests.Models;

public sealed class Olmo2Tests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("quill-olmo2-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static string Fixture => Path.Combine(AppContext.BaseDirectory, "fixtures", "crosscheck", "olmo2", "hf");

    private static float[] Logits(InferenceModel m, int[] tokens) => ArchChecks.Logits(m, tokens);

    private static int[] Tokens(int n, int vocab) => [.. Enumerable.Range(0, n).Select(i => (i * 29 + 3) % vocab)];

    [Fact]
    public void The_hf_folder_loads_as_olmo2_with_post_norms_only_and_whole_width_qk_norms()
    {
        using var m = ModelLoader.Load(Fixture);
        var s = m.Spec;
        Assert.Equal("olmo2", s.Arch);
        Assert.True(s.PostNorms && !s.PreNorms && s.QkNorm && s.QkNormWhole && !s.EmbedScale && !s.IsGemma);
        Assert.All(m.Layers, l => Assert.True(l.AttnNorm == null && l.MlpNorm == null && l.AttnPostNorm != null && l.MlpPostNorm != null));
        Assert.Equal((32, 16), (m.Layers[0].QNorm!.Length, m.Layers[0].KNorm!.Length)); // [Hq D], [Hkv D]
        Assert.Equal("olmo2", ModelConfig.FromSpec(s).Arch);
        Assert.Throws<QuillException>(() => Llama2cExport.Write(m, Path.Combine(dir, "x.bin")));
    }

    [Fact]
    public void Gguf_and_hf_exports_read_back_with_the_same_logits_and_llama_cpp_agrees()
    {
        using var hf = ModelLoader.Load(Fixture);
        int v = hf.Spec.VocabSize;
        int[] tokens = Tokens(16, v);
        float[] want = Logits(hf, tokens);

        string gguf = Path.Combine(dir, "olmo2.gguf");
        Assert.Equal("olmo2", GgufExport.Write(hf, gguf, TensorTypePlan.Parse("f32")).Architecture);
        using (var back = ModelLoader.Load(gguf))
        {
            Assert.Equal(hf.Spec, back.Spec);
            Close.Assert(want, Logits(back, tokens), 1e-6, "olmo2 through GGUF");
        }
        string folder = Path.Combine(dir, "hf");
        HfExport.Write(hf, folder, SafeTensorDtype.F32);
        Assert.Equal("olmo2", HfConfig.Load(folder).ModelType);
        using (var back = ModelLoader.Load(folder)) Close.Assert(want, Logits(back, tokens), 1e-6, "olmo2 through an HF folder");

        ArchChecks.LlamaCppAgrees(gguf, tokens, want, 1e-3, 24, "olmo2");
    }

    [Fact]
    public void Cached_decode_equals_a_full_recompute_and_an_adapter_trains()
    {
        using var m = ModelLoader.Load(Fixture);
        ArchChecks.CachedDecodeEqualsRecompute(m, Tokens(20, m.Spec.VocabSize), 3, "olmo2");
        var lm = LanguageModel.FromWeights(m.Weights);
        lm.AddLora(new LoraConfig { Rank = 4, Alpha = 8, TargetModules = [LoraConfig.AllLinear] });
        var (first, last) = ArchChecks.Train(lm, Tokens(25, m.Spec.VocabSize), 30);
        Assert.True(last < first - 0.1, $"loss {first} -> {last}");
    }
}
