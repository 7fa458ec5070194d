// Qwen3 (per-head RMSNorm of q and k before RoPE, no q/k/v biases): the crosscheck fixture's HF folder (weights and
// PyTorch reference from make_crosscheck_fixtures.py; CrossCheckTests checks logits and gradients) exported to GGUF
// as llama.cpp's qwen3 and back to a Hugging Face folder: Quill reads both as it read the original, and llama.cpp,
// reading the GGUF, computes Quill's logits and its greedy tokens.
using Quill.Formats.SafeTensors;
using Quill.Inference;
using Quill.Tests.Support;

namespace Quill.Tests.Models;

public sealed class Qwen3Tests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("quill-qwen3-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static string Fixture => Path.Combine(AppContext.BaseDirectory, "fixtures", "crosscheck", "qwen3", "hf");

    private static float[] Logits(InferenceModel m, int[] tokens)
    {
        var e = new InferenceEngine(m, 64);
        var all = new float[tokens.Length * m.Spec.VocabSize];
        e.Forward(e.CreateCache(), tokens, all, allLogits: true);
        return all;
    }

    [Fact]
    public void The_hf_folder_loads_as_qwen3_with_q_and_k_norms()
    {
        using var m = ModelLoader.Load(Fixture);
        Assert.True(m.Spec.QkNorm);
        Assert.False(m.Spec.QkvBias);
        Assert.Equal(16, m.Spec.HeadDim);
        Assert.Equal(16, m.Layers[0].QNorm!.Length);
        Assert.Equal("qwen3", Quill.Models.ModelConfig.FromSpec(m.Spec).Arch);
    }

    [Fact]
    public void Gguf_and_hf_exports_read_back_with_the_same_logits_and_llama_cpp_agrees()
    {
        using var hf = ModelLoader.Load(Fixture);
        int[] tokens = [.. Enumerable.Range(0, 16).Select(i => (i * 29 + 3) % hf.Spec.VocabSize)];
        float[] want = Logits(hf, tokens);

        string gguf = Path.Combine(dir, "qwen3.gguf");
        GgufExport.Write(hf, gguf, TensorTypePlan.Parse("f32"));
        using (var back = ModelLoader.Load(gguf))
        {
            Assert.True(back.Spec.QkNorm);
            Close.Assert(want, Logits(back, tokens), 1e-6, "qwen3 through GGUF");
        }
        string folder = Path.Combine(dir, "hf");
        HfExport.Write(hf, folder, SafeTensorDtype.F32);
        using (var back = ModelLoader.Load(folder)) Close.Assert(want, Logits(back, tokens), 1e-6, "qwen3 through an HF folder");

        using var cpp = LlamaCpp.Open(gguf);
        float[][] theirs = cpp.Logits(tokens);
        int v = hf.Spec.VocabSize;
        Close.Assert([.. theirs.SelectMany(r => r)], want, 1e-3, "llama.cpp vs Quill on qwen3");
        using var quill = ModelLoader.Load(gguf);
        var engine = new InferenceEngine(quill, 64);
        Assert.Equal(cpp.Greedy(tokens[..4], 24), Inference.LlamaCppOracleTests.GreedyQuill(engine, tokens[..4], 24, v));
    }
}
