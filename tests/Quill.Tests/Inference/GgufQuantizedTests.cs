// GGUF files written by Quill (GgufWriter) with every weight type the engine runs: a small Llama (GQA, interleaved
// RoPE as GGUF's llama layout implies) is exported with its matrices in F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0,
// Q5_1, Q4_K or Q6_K, loaded back through ModelLoader, and its logits compared with the fp32 training model's full
// forward: equal for F32, and within a tolerance that grows as the block format gets coarser; and the quantized
// kernels against fp32 kernels on the very same (dequantized) weights, closely.
using Quill.Autograd;
using Quill.Formats.Gguf;
using Quill.Inference;
using Quill.Models;
using Quill.Quantization;
using Quill.Tests.Support;

namespace Quill.Tests.Inference;

public sealed class GgufQuantizedTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("quill-ggufq-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Theory]
    [InlineData(GgmlType.F32, 1e-4)]
    [InlineData(GgmlType.F16, 5e-3)]
    [InlineData(GgmlType.BF16, 3e-2)]
    [InlineData(GgmlType.Q8_0, 3e-2)]
    [InlineData(GgmlType.Q6_K, 5e-2)]
    [InlineData(GgmlType.Q5_0, 0.1)]
    [InlineData(GgmlType.Q5_1, 0.1)]
    [InlineData(GgmlType.Q4_K, 0.3)]
    [InlineData(GgmlType.Q4_0, 0.3)]
    [InlineData(GgmlType.Q4_1, 0.3)]
    public void Quantized_gguf_logits_follow_the_fp32_model(GgmlType type, double tolerance)
    {
        var cfg = new ModelConfig
        {
            Arch = "llama", VocabSize = 64, NLayer = 1, NHead = 4, NKvHead = 2, NEmbd = 256, BlockSize = 32, MlpHidden = 256, RopeStyle = "interleaved",
        };
        var lm = LanguageModel.Create(cfg, seed: 5);
        string path = Path.Combine(dir, $"m-{type}.gguf");
        GgufExport.Write(new InferenceModel(lm.ToWeights()), path, TensorTypePlan.Uniform(type));

        int[] tokens = [1, 5, 9, 33, 2, 60, 7, 7, 12];
        var full = lm.Forward(new Graph(recording: false), tokens, 1, tokens.Length).ToArray();
        using var model = ModelLoader.Load(path);
        Assert.Equal(type, model.Layers[0].Wq!.Type);
        var engine = new InferenceEngine(model);
        var cache = engine.CreateCache();
        var step = new float[64];
        double scale = full.Max(Math.Abs), worst = 0;
        for (int t = 0; t < tokens.Length; t++)
        {
            engine.Forward(cache, tokens.AsSpan(t, 1), step);
            for (int i = 0; i < 64; i++) worst = Math.Max(worst, Math.Abs(step[i] - full[t * 64 + i]));
        }
        Assert.True(worst <= tolerance * scale, $"{type}: logits differ by {worst} (logit scale {scale}, allowed {tolerance * scale})");

        // the kernels alone: the same (dequantized) weights run in fp32 must agree closely; what remains is the int8
        // activation of the Q8_0 / Q4_0 kernels
        using var dequantized = model.Requantize(GgmlType.F32);
        var e32 = new InferenceEngine(dequantized);
        var all = new float[tokens.Length * 64];
        var all32 = new float[tokens.Length * 64];
        engine.Forward(engine.CreateCache(), tokens, all, allLogits: true);
        e32.Forward(e32.CreateCache(), tokens, all32, allLogits: true);
        double kernelErr = all.Zip(all32, (a, b) => (double)Math.Abs(a - b)).Max();
        Assert.True(kernelErr <= 0.02 * scale + 1e-5, $"{type}: kernels differ from fp32 on the same weights by {kernelErr}");
    }
}
