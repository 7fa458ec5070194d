// Hugging Face folders: a Quill GPT-2 written under HF's names (no "transformer." prefix, Conv1D weights stored
// [in, out]) with a gpt2 config.json, and a Quill Llama under HF names with a llama config.json, load through
// ModelLoader and give the training model's logits.
using System.Globalization;
using Quill.Autograd;
using Quill.Formats.SafeTensors;
using Quill.Inference;
using Quill.Models;

namespace Quill.Tests.Inference;

public sealed class HfModelTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("quill-hf-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static float[] Transpose(ReadOnlySpan<float> a, int rows, int cols)
    {
        var t = new float[a.Length];
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j];
        }
        return t;
    }

    private static void AssertSameLogits(LanguageModel lm, InferenceModel model)
    {
        int[] tokens = [3, 1, 4, 1, 5, 9, 2, 6];
        var full = lm.Forward(new Graph(recording: false), tokens, 1, tokens.Length).ToArray();
        var engine = new InferenceEngine(model);
        var got = new float[full.Length];
        engine.Forward(engine.CreateCache(), tokens, got, allLogits: true);
        for (int i = 0; i < full.Length; i++) Assert.True(Math.Abs(full[i] - got[i]) <= 2e-4f * (1 + Math.Abs(full[i])), $"logit {i}: {full[i]} vs {got[i]}");
    }

    [Fact]
    public void Hf_gpt2_folder_with_conv1d_weights()
    {
        var cfg = new ModelConfig { Arch = "gpt2", VocabSize = 40, NLayer = 2, NHead = 2, NEmbd = 16, BlockSize = 24 };
        var lm = LanguageModel.Create(cfg, seed: 9);
        var tensors = new List<SafeTensor>();
        foreach (var p in lm.Parameters)
        {
            string name = p.Name.StartsWith("transformer.", StringComparison.Ordinal) ? p.Name["transformer.".Length..] : p.Name;
            bool conv = p.Rank == 2 && (name.Contains("c_attn") || name.Contains("c_proj") || name.Contains("c_fc"));
            tensors.Add(conv ? new SafeTensor(name, [p.Shape[1], p.Shape[0]], Transpose(p.Span, p.Shape[0], p.Shape[1])) : new SafeTensor(name, p.Shape, p.Span.ToArray()));
        }
        SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors);
        File.WriteAllText(Path.Combine(dir, "config.json"), """
            {"model_type": "gpt2", "n_embd": 16, "n_layer": 2, "n_head": 2, "vocab_size": 40, "n_positions": 24, "layer_norm_epsilon": 1e-5}
            """);
        using var model = ModelLoader.Load(dir);
        Assert.Equal((NormKind.LayerNorm, MlpKind.Gelu, PositionKind.Learned), (model.Spec.Norm, model.Spec.Mlp, model.Spec.Positions));
        AssertSameLogits(lm, model);
    }

    [Fact]
    public void Hf_llama_folder_with_gqa()
    {
        var cfg = new ModelConfig { Arch = "llama", VocabSize = 40, NLayer = 2, NHead = 4, NKvHead = 2, NEmbd = 32, BlockSize = 24, MlpHidden = 40, RopeTheta = 500000 };
        var lm = LanguageModel.Create(cfg, seed: 4);
        SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), lm.Parameters.Select(p => new SafeTensor(p.Name, p.Shape, p.Span.ToArray())));
        File.WriteAllText(Path.Combine(dir, "config.json"), string.Create(CultureInfo.InvariantCulture, $$"""
            {"model_type": "llama", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
             "intermediate_size": 40, "vocab_size": 40, "max_position_embeddings": 24, "rms_norm_eps": {{cfg.NormEps}}, "rope_theta": 500000.0}
            """));
        using var model = ModelLoader.Load(dir);
        Assert.Equal((2, 4, 2), (model.Spec.Layers, model.Spec.Heads, model.Spec.KvHeads));
        AssertSameLogits(lm, model);
    }

    [Fact]
    public void Llama3_rope_scaling_keeps_high_frequencies_and_divides_low_ones()
    {
        var s = new Llama3RopeScaling(8, 1, 4, 8192);
        double high = 1.0, low = 2 * Math.PI / 100000;
        Assert.Equal(high, RopeFrequencies.ScaleLlama3(high, s));
        Assert.Equal(low / 8, RopeFrequencies.ScaleLlama3(low, s), 12);
        double mid = 2 * Math.PI / 4000; // wavelength between 8192/4 and 8192/1: a blend
        double scaled = RopeFrequencies.ScaleLlama3(mid, s);
        Assert.True(scaled < mid && scaled > mid / 8);
    }
}
