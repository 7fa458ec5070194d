// One model definition, checked three ways: for tiny random models of every architecture the loaders read (gpt2,
// llama with Llama 3 RoPE scaling, mistral, qwen2 with q/k/v biases and head_dim != width / heads, phi3 with fused
// q|k|v and gate|up and partial rotary), the trainable model built from the loaded weights (training forward), the
// inference engine (inference forward) and a float64 PyTorch forward (fixtures/crosscheck, from
// make_crosscheck_fixtures.py) give the same logits, the same loss, and one training step's gradients of every
// parameter match PyTorch's. GGUF forms (quantized included) and a llama2.c checkpoint (interleaved RoPE) are held
// to the inference engine running the same dequantized weights.
using System.Text.Json.Nodes;
using Quill.Autograd;
using Quill.Formats.SafeTensors;
using Quill.Inference;
using Quill.Models;
using Quill.Quantization;
using Quill.Tests.Support;

namespace Quill.Tests.Models;

public sealed class CrossCheckTests
{
    private static readonly string Root = Path.Combine(AppContext.BaseDirectory, "fixtures", "crosscheck");

    public static TheoryData<string> Archs() => new("gpt2", "llama", "mistral", "qwen2", "qwen3", "phi3", "gemma2", "gemma3", "mixtral", "qwen3moe", "olmo2");

    private sealed record Step(int B, int T, int V, int[] Tokens, int[] Targets, double Loss, float[] Logits);

    private static Step ReadStep(string arch)
    {
        var j = JsonNode.Parse(File.ReadAllText(Path.Combine(Root, arch, "step.json")))!;
        int[] Flat(string key) => [.. j[key]!.AsArray().SelectMany(row => row!.AsArray().Select(n => n!.GetValue<int>()))];
        var s = j["sizes"]!;
        int b = s["batch"]!.GetValue<int>(), t = s["seq"]!.GetValue<int>(), v = s["vocab"]!.GetValue<int>();
        byte[] raw = File.ReadAllBytes(Path.Combine(Root, arch, j["logits_file"]!.GetValue<string>()));
        var logits = new float[raw.Length / 4];
        Buffer.BlockCopy(raw, 0, logits, 0, raw.Length);
        Assert.Equal(b * t * v, logits.Length);
        return new Step(b, t, v, Flat("tokens"), Flat("targets"), j["loss"]!.GetValue<double>(), logits);
    }

    /// <summary>Logits [N, V] of each row of tokens [B, T] run through the inference engine with a fresh cache per sequence.</summary>
    private static float[] InferenceLogits(InferenceModel model, int[] tokens, int b, int t)
    {
        var engine = new InferenceEngine(model);
        int v = model.Spec.VocabSize;
        var all = new float[b * t * v];
        for (int i = 0; i < b; i++) engine.Forward(engine.CreateCache(), tokens.AsSpan(i * t, t), all.AsSpan(i * t * v, t * v), allLogits: true);
        return all;
    }

    private static float[] TrainingLogits(LanguageModel lm, int[] tokens, int b, int t) =>
        lm.Forward(new Graph(recording: false), tokens, b, t).ToArray();

    [Theory]
    [MemberData(nameof(Archs))]
    public void Training_forward_equals_inference_forward_equals_torch(string arch)
    {
        var step = ReadStep(arch);
        using var model = ModelLoader.Load(Path.Combine(Root, arch, "hf"));
        var lm = LanguageModel.FromWeights(model.Weights);
        Assert.Equal(model.Spec with { MaxContext = lm.Spec.MaxContext }, lm.Spec);

        float[] train = TrainingLogits(lm, step.Tokens, step.B, step.T);
        float[] infer = InferenceLogits(model, step.Tokens, step.B, step.T);
        Close.Assert(infer, train, 1e-4, $"{arch}: training forward vs inference forward");
        Close.Assert(step.Logits, train, 1e-4, $"{arch}: training forward vs torch");
        Close.Assert(step.Logits, infer, 1e-4, $"{arch}: inference forward vs torch");

        // the trainable model's own weights, viewed without copying, run the same in the engine
        using var view = InferenceModel.FromLanguageModel(lm);
        Close.Assert(train, InferenceLogits(view, step.Tokens, step.B, step.T), 1e-5, $"{arch}: engine over the trainable model's parameters");
    }

    /// <summary>Also phi3longrope: its 12-token step uses LongRoPE's short factors (LongRopeTests holds its forwards).</summary>
    public static TheoryData<string> TrainArchs() => new("gpt2", "llama", "mistral", "qwen2", "qwen3", "phi3", "gemma2", "gemma3", "mixtral", "qwen3moe", "olmo2", "phi3longrope");

    [Theory]
    [MemberData(nameof(TrainArchs))]
    public void One_training_step_has_torch_gradients_for_every_parameter(string arch)
    {
        var step = ReadStep(arch);
        using var model = ModelLoader.Load(Path.Combine(Root, arch, "hf"));
        var lm = LanguageModel.FromWeights(model.Weights);
        lm.Parameters.EnableGrads();
        var g = new Graph();
        var loss = lm.Loss(g, step.Tokens, step.Targets, step.B, step.T);
        Assert.Equal(step.Loss, loss.Item(), 1e-5);
        g.Backward(loss);

        using var grads = SafeTensorsFile.Open(Path.Combine(Root, arch, "grads.safetensors"));
        var covered = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in lm.Parameters)
        {
            float[] want = TorchGradient(grads, arch, p.Name, p.Shape, covered);
            float[] got = p.Grad!.ToArray();
            double diff = 0, norm = 0;
            for (int i = 0; i < want.Length; i++)
            {
                diff += (double)(got[i] - want[i]) * (got[i] - want[i]);
                norm += (double)want[i] * want[i];
            }
            double rel = Math.Sqrt(diff) / Math.Max(Math.Sqrt(norm), 1e-12);
            Assert.True(Math.Sqrt(norm) > 0, $"{arch}: torch gradient of {p.Name} is zero; the fixture would prove nothing.");
            Assert.True(rel < 2e-3, $"{arch}: gradient of {p.Name} differs from torch by {rel:G3} of its norm");
        }
        Assert.Equal(grads.Names.OrderBy(n => n), covered.OrderBy(n => n));
    }

    /// <summary>Torch's gradient for one of Quill's parameters: same name, or a transposed HF Conv1D, or rows of a fused phi3 tensor.</summary>
    private static float[] TorchGradient(SafeTensorsFile grads, string arch, string name, int[] shape, HashSet<string> covered)
    {
        int n = shape.Aggregate(1, (a, d) => a * d);
        if (grads.Contains(name))
        {
            covered.Add(name);
            float[] all = grads.ReadSingle(name);
            var st = grads.GetInfo(name).Shape;
            // HF GPT-2's Conv1D matrices (attn.*, mlp.*) are stored [in, out]: square ones too
            bool conv1d = arch == "gpt2" && shape.Length == 2 && (name.Contains(".attn.", StringComparison.Ordinal) || name.Contains(".mlp.", StringComparison.Ordinal));
            if (!conv1d) return st.SequenceEqual(shape.Select(d => (long)d)) ? all : throw new InvalidOperationException($"{name}: torch shape [{string.Join(", ", st)}]");
            Assert.True(st.Count == 2 && st[0] == shape[1] && st[1] == shape[0], $"{name}: torch shape [{string.Join(", ", st)}]");
            var t = new float[n];
            for (int i = 0; i < shape[0]; i++)
            {
                for (int j = 0; j < shape[1]; j++) t[i * shape[1] + j] = all[j * shape[0] + i];
            }
            return t;
        }
        // phi3: q|k|v rows of qkv_proj, gate|up rows of gate_up_proj
        string[] parts = ["q_proj", "k_proj", "v_proj", "gate_proj", "up_proj"];
        string part = parts.First(s => name.Contains(s, StringComparison.Ordinal));
        string fused = name.Replace("self_attn." + part, "self_attn.qkv_proj", StringComparison.Ordinal).Replace("mlp." + part, "mlp.gate_up_proj", StringComparison.Ordinal);
        covered.Add(fused);
        float[] f = grads.ReadSingle(fused);
        int cols = shape[1];
        int q = 32, kv = 16, hidden = 48; // fixture sizes: 4 heads x 8, 2 kv heads x 8, MLP 48
        int row0 = part switch { "q_proj" => 0, "k_proj" => q, "v_proj" => q + kv, "gate_proj" => 0, _ => hidden };
        return f.AsSpan(row0 * cols, n).ToArray();
    }

    public static TheoryData<string> GgufArchs() => new("qwen2", "mistral", "phi3", "gpt2");

    [Theory]
    [MemberData(nameof(GgufArchs))]
    public void Training_model_from_a_gguf_runs_as_the_engine_runs_its_dequantized_weights(string arch)
    {
        string path = Path.Combine(AppContext.BaseDirectory, "fixtures", "arch", arch, arch + ".gguf");
        using var model = ModelLoader.Load(path);
        Assert.Contains(model.Layers.SelectMany(l => l.Matrices()), w => w.Type != GgmlType.F32); // quantized or half weights widen to f32
        var lm = LanguageModel.FromWeights(model.Weights);
        int[] tokens = [.. Enumerable.Range(0, 20).Select(i => (i * 37 + 5) % model.Spec.VocabSize)];
        using var exact = model.Requantize(GgmlType.F32);
        Close.Assert(InferenceLogits(exact, tokens, 2, 10), TrainingLogits(lm, tokens, 2, 10), 1e-4, $"{arch} gguf");
    }

    [TestDataFact("llama2c/stories260K.bin")]
    public void Training_model_from_llama2c_runs_as_the_engine_does()
    {
        using var model = ModelLoader.Load(TestData.PathOf("llama2c/stories260K.bin"));
        Assert.Equal(Quill.Kernels.RopeStyle.Interleaved, model.Spec.RopeStyle);
        var lm = LanguageModel.FromWeights(model.Weights);
        int[] tokens = [1, .. Enumerable.Range(0, 23).Select(i => (i * 53 + 11) % model.Spec.VocabSize)];
        Close.Assert(InferenceLogits(model, tokens, 2, 12), TrainingLogits(lm, tokens, 2, 12), 1e-4, "stories260K");
    }

    [Fact]
    public void A_spec_survives_the_trip_through_a_checkpoint_config()
    {
        foreach (string arch in new[] { "gpt2", "llama", "mistral", "qwen2", "qwen3", "phi3", "gemma2", "gemma3", "mixtral", "qwen3moe", "olmo2" })
        {
            using var model = ModelLoader.Load(Path.Combine(Root, arch, "hf"));
            var cfg = ModelConfig.FromSpec(model.Spec);
            Assert.Equal(model.Spec.Arch, cfg.Arch);
            var back = cfg.ToSpec();
            Assert.Equal(model.Spec with { RopeFreqFactors = null }, back with { RopeFreqFactors = null });
        }
    }
}
