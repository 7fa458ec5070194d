// The frozen QLoRA base (LanguageModel.QuantizedBase) on stories260K: written as a GGUF Q8_0 / Q4_0 file, its
// matrices stay in the file's block type (never dequantized to f32 copies: the model owns only norms and the adapter),
// the tied table is looked up by dequantizing the rows read, and one training step (loss and every adapter gradient)
// equals LoRA on the f32 copy of the same dequantized weights: the forward over more than WeightMatrix.SmallM rows
// dequantizes panels of rows into the same GEMM, so only the input gradient's sum over panels may round differently
// (1e-5 allowed; here every matrix fits one panel of 1024 rows and the step measured equal bit for bit). An F32
// base is quantized to Q4_0 in memory (rows that are not whole blocks stay F32 views) and matches its
// Requantize(Q4_0) copy the same way, and in bitsandbytes' NF4 its Requantize(NF4) copy. Dropping a mapped model's resident pages leaves its views readable. Bad types
// fail in one line.
using Quill.Autograd;
using Quill.Autograd.Ops;
using Quill.Inference;
using Quill.Models;
using Quill.Quantization;
using Quill.Tensors;
using Quill.Tests.Support;

namespace Quill.Tests.Models;

public sealed class QLoraTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("quill-qlora-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static string Stories => TestData.PathOf("llama2c/stories260K.bin");

    /// <summary>stories260K written as a GGUF with its matrices in type (rows that are not whole blocks stay F32).</summary>
    internal static string WriteGguf(string folder, GgmlType type)
    {
        string path = Path.Combine(folder, $"stories260K-{type}.gguf");
        using var m = ModelLoader.Load(Stories, TestData.PathOf("llama2c/tok512.bin"));
        GgufExport.Write(m, path, TensorTypePlan.Uniform(type));
        return path;
    }

    private static readonly int[] Tokens = [.. Enumerable.Range(0, 2 * 40).Select(i => (i * 37 + 11) % 512)];
    private static readonly int[] Targets = [.. Enumerable.Range(0, 2 * 40).Select(i => i % 5 == 0 ? -1 : (i * 53 + 3) % 512)];

    /// <summary>Adds the same adapter to a model (A from the seed, B drawn so the adapter changes the output).</summary>
    private static LoraAdapter Adapt(LanguageModel lm)
    {
        var a = lm.AddLora(new LoraConfig { Rank = 4, Alpha = 8, TargetModules = [LoraConfig.AllLinear] }, seed: 3);
        var rng = new Rng(4);
        foreach (var m in a.Modules) rng.FillNormal(m.B.Span, 0.05);
        lm.Parameters.EnableGrads();
        return a;
    }

    /// <summary>One step's loss and the adapter's gradients.</summary>
    private static (float Loss, float[][] Grads) Step(LanguageModel lm)
    {
        var g = new Graph();
        var loss = lm.Loss(g, Tokens, Targets, 2, 40);
        float l = loss.Item();
        g.Backward(loss);
        return (l, [.. lm.Parameters.Trainable.Select(p => p.Grad!.ToArray())]);
    }

    private static void AssertSameStep((float Loss, float[][] Grads) want, (float Loss, float[][] Grads) got, string what)
    {
        Assert.True(Math.Abs(want.Loss - got.Loss) <= 1e-5 * Math.Abs(want.Loss), $"{what}: loss {got.Loss} vs {want.Loss}");
        Assert.Equal(want.Grads.Length, got.Grads.Length);
        for (int i = 0; i < want.Grads.Length; i++)
        {
            double diff = 0, norm = 0;
            for (int k = 0; k < want.Grads[i].Length; k++)
            {
                diff += Math.Pow(want.Grads[i][k] - got.Grads[i][k], 2);
                norm += Math.Pow(want.Grads[i][k], 2);
            }
            Assert.True(norm > 0, $"{what}: gradient {i} is zero");
            Assert.True(Math.Sqrt(diff / norm) <= 1e-5, $"{what}: gradient {i} differs by {Math.Sqrt(diff / norm):G3} of its norm");
        }
    }

    [TestDataTheory("llama2c/stories260K.bin", "llama2c/tok512.bin")]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_0)]
    public void A_gguf_base_stays_in_its_block_type_and_trains_like_lora_on_its_dequantized_copy(GgmlType type)
    {
        using var open = ModelLoader.Load(WriteGguf(dir, type));
        var q = LanguageModel.QuantizedBase(open.Weights);
        var spec = q.Spec;
        Assert.True(spec.TiedEmbeddings);
        Assert.Equal(type, q.Parameters["model.embed_tokens.weight"].DType);                  // the tied table, as stored
        Assert.Equal(type, q.Parameters["model.layers.0.self_attn.q_proj.weight"].DType);
        Assert.Equal(type, q.Parameters["model.layers.4.mlp.up_proj.weight"].DType);
        Assert.Equal(GgmlType.F32, q.Parameters["model.layers.0.mlp.down_proj.weight"].DType);  // rows of 172: F32 in the file
        Assert.All(q.Parameters.Where(p => p.Rank == 2), p => Assert.True(p.IsForeign, $"{p.Name} was copied"));
        Assert.All(q.Parameters, p => Assert.False(p.RequiresGrad));
        long f32 = 4 * spec.ParameterCount();
        Assert.True(q.Parameters.OwnedBytes < f32 / 100, $"the base owns {q.Parameters.OwnedBytes} bytes of floats (f32 size {f32})");

        var dense = LanguageModel.FromWeights(open.Weights); // LoRA's base: the same values widened to f32
        var g = new Graph(recording: false);
        float[] want = dense.Forward(g, Tokens, 2, 40).ToArray(), got = q.Forward(new Graph(recording: false), Tokens, 2, 40).ToArray();
        for (int i = 0; i < want.Length; i++) Assert.True(Math.Abs(want[i] - got[i]) <= 1e-5f * (1 + Math.Abs(want[i])), $"logit {i}: {got[i]} vs {want[i]}");

        Adapt(dense);
        Adapt(q);
        Assert.True(q.Parameters.OwnedBytes < f32 / 5, $"base + adapter own {q.Parameters.OwnedBytes} bytes (f32 size {f32})");
        AssertSameStep(Step(dense), Step(q), $"{type} QLoRA vs LoRA on the dequantized base");
        Assert.All(q.Parameters.Where(p => !p.RequiresGrad), p => Assert.Null(p.Grad));
    }

    [TestDataFact("llama2c/stories260K.bin", "llama2c/tok512.bin")]
    public void A_float_base_is_quantized_in_memory_and_trains_like_lora_on_its_requantized_copy()
    {
        using var open = ModelLoader.Load(Stories, TestData.PathOf("llama2c/tok512.bin"));
        var q = LanguageModel.QuantizedBase(open.Weights, GgmlType.Q4_0);
        Assert.Equal(GgmlType.Q4_0, q.Parameters["model.layers.2.self_attn.v_proj.weight"].DType);
        Assert.Equal(GgmlType.Q4_0, q.Parameters["model.embed_tokens.weight"].DType); // tied: the head's table is quantized too
        Assert.Equal(GgmlType.F32, q.Parameters["model.layers.2.mlp.down_proj.weight"].DType); // 172 is not whole blocks: viewed in the file
        Assert.True(q.Parameters["model.layers.2.mlp.down_proj.weight"].IsForeign);

        using var requantized = open.Requantize(GgmlType.Q4_0);
        var dense = LanguageModel.FromWeights(requantized.Weights);
        Adapt(dense);
        Adapt(q);
        AssertSameStep(Step(dense), Step(q), "Q4_0 in memory vs LoRA on the requantized copy");
    }

    [TestDataFact("llama2c/stories260K.bin", "llama2c/tok512.bin")]
    public void A_float_base_in_nf4_trains_like_lora_on_its_dequantized_weights()
    {
        using var open = ModelLoader.Load(Stories, TestData.PathOf("llama2c/tok512.bin"));
        var q = LanguageModel.QuantizedBase(open.Weights, GgmlType.NF4);
        Assert.Equal(GgmlType.NF4, q.Parameters["model.layers.2.self_attn.v_proj.weight"].DType);
        Assert.Equal(GgmlType.NF4, q.Parameters["model.layers.4.mlp.up_proj.weight"].DType);
        Assert.Equal(GgmlType.NF4, q.Parameters["model.embed_tokens.weight"].DType); // tied: the head's table too
        Assert.Equal(GgmlType.F32, q.Parameters["model.layers.2.mlp.down_proj.weight"].DType); // rows of 172 are not whole blocks of 64
        long f32 = 4 * q.Spec.ParameterCount();
        Assert.True(q.Parameters.OwnedBytes < f32 / 100, $"the NF4 base owns {q.Parameters.OwnedBytes} bytes of floats (f32 size {f32})");

        // LoRA's base: every NF4 matrix dequantized to f32 (code * absmax), the rest as stored
        using var requantized = open.Requantize(GgmlType.NF4);
        Assert.Equal(GgmlType.NF4, requantized.Weights.Layers[0].Wq!.Type);
        var dense = LanguageModel.FromWeights(requantized.Weights);
        float[] wq = open.Weights.Layers[1].Wq!.ToFloats(), deq = dense.Parameters["model.layers.1.self_attn.q_proj.weight"].ToArray();
        Assert.NotEqual(wq, deq); // quantization did change the weights
        Adapt(dense);
        Adapt(q);
        AssertSameStep(Step(dense), Step(q), "NF4 in memory vs LoRA on the dequantized NF4 weights");
        Assert.All(q.Parameters.Where(p => !p.RequiresGrad), p => Assert.Null(p.Grad));
    }

    [TestDataFact("llama2c/stories260K.bin", "llama2c/tok512.bin")]
    public void Dropping_the_resident_pages_of_a_mapped_model_keeps_its_views_readable()
    {
        using var open = ModelLoader.Load(WriteGguf(dir, GgmlType.Q8_0));
        float[] before = open.Weights.Layers[3].Wq!.ToFloats(), embed = open.Weights.TokenEmbedding.ToFloats();
        open.Weights.ReleaseResidentPages();
        Assert.Equal(before, open.Weights.Layers[3].Wq!.ToFloats()); // faulted back in from the file
        open.Weights.ReleaseResidentPages();
        Assert.Equal(embed, open.Weights.TokenEmbedding.ToFloats());
        using var stories = ModelLoader.Load(Stories, TestData.PathOf("llama2c/tok512.bin"));
        float[] down = stories.Weights.Layers[0].Down!.ToFloats();
        stories.Weights.ReleaseResidentPages();
        Assert.Equal(down, stories.Weights.Layers[0].Down!.ToFloats());
    }

    [Fact]
    public void An_untied_float_base_keeps_its_embedding_as_stored_and_quantizes_the_head()
    {
        var lm = LanguageModel.Create(new ModelConfig { Arch = "llama", VocabSize = 96, NLayer = 1, NHead = 2, NEmbd = 64, BlockSize = 32, MlpHidden = 128 });
        using var weights = lm.ToWeights();
        var q = LanguageModel.QuantizedBase(weights, GgmlType.Q8_0);
        Assert.Equal(GgmlType.F32, q.Parameters["model.embed_tokens.weight"].DType);
        Assert.True(q.Parameters["model.embed_tokens.weight"].IsForeign); // a view, not a copy
        Assert.Equal(GgmlType.Q8_0, q.Parameters["lm_head.weight"].DType);
        Assert.Equal(GgmlType.Q8_0, q.Parameters["model.layers.0.mlp.down_proj.weight"].DType);
    }

    [Fact]
    public void A_block_typed_table_is_looked_up_by_its_dequantized_rows()
    {
        var wq = WeightMatrix.Quantize("e", [.. Enumerable.Range(0, 10 * 64).Select(i => MathF.Sin(i * 0.37f))], 10, 64, GgmlType.Q4_0);
        var table = wq.AsTensor();
        int[] ids = [3, 0, 9, 3];
        var y = EmbeddingOp.Forward(new Graph(), table, ids, 2, 2).ToArray();
        var dense = wq.ToFloats();
        for (int i = 0; i < ids.Length; i++) Assert.Equal(dense.AsSpan(ids[i] * 64, 64).ToArray(), y.AsSpan(i * 64, 64).ToArray());
        Assert.Throws<QuillException>(() => EmbeddingOp.Forward(new Graph(), table, [10], 1, 1));
    }

    [Fact]
    public void Types_that_cannot_hold_the_base_fail_in_one_line()
    {
        var lm = LanguageModel.Create(new ModelConfig { Arch = "llama", VocabSize = 96, NLayer = 1, NHead = 2, NEmbd = 64, BlockSize = 32, MlpHidden = 96 });
        using var weights = lm.ToWeights();
        var e = Assert.Throws<InvalidConfigException>(() => LanguageModel.QuantizedBase(weights, GgmlType.Q4_K));
        Assert.Contains("no weight matrix has rows of whole Q4_K blocks (256 values", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<InvalidConfigException>(() => LanguageModel.QuantizedBase(weights, GgmlType.F16));
        Assert.Contains("F16 is not one", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }
}
