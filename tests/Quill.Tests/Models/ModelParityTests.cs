// Parity with PyTorch: logits, loss, every parameter gradient and 10 AdamW steps of a small GPT-2 and a small
// Llama match the reference values in fixtures/model_*.safetensors (made by fixtures/make_model_fixtures.py).
using System.Text.Json;
using Quill.Autograd;
using Quill.Autograd.Ops;
using Quill.Formats.SafeTensors;
using Quill.Models;
using Quill.Training;

namespace Quill.Tests.Models;

public class ModelParityTests
{
    private const float Rel = 1e-4f, Abs = 1e-5f;

    private static SafeTensorsFile Open(string arch) =>
        SafeTensorsFile.Open(Path.Combine(AppContext.BaseDirectory, "fixtures", $"model_{arch}.safetensors"));

    private static (LanguageModel Model, int[] Tokens, int[] Targets, int B, int T) Load(SafeTensorsFile f)
    {
        var meta = f.Metadata;
        var cfg = JsonSerializer.Deserialize<ModelConfig>(meta["config"])!;
        var model = LanguageModel.Create(cfg);
        foreach (var p in model.Parameters) f.ReadSingle("param." + p.Name, p.Span);
        return (model, JsonSerializer.Deserialize<int[]>(meta["tokens"])!, JsonSerializer.Deserialize<int[]>(meta["targets"])!,
            int.Parse(meta["batch"], System.Globalization.CultureInfo.InvariantCulture), int.Parse(meta["time"], System.Globalization.CultureInfo.InvariantCulture));
    }

    private static float[] Read(SafeTensorsFile f, string name)
    {
        int n = f.GetInfo(name).Shape.Select(x => (int)x).ToArray().Aggregate(1, (a, b) => a * b);
        var data = new float[n];
        f.ReadSingle(name, data);
        return data;
    }

    internal static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            float e = expected[i], a = actual[i];
            if (!(Math.Abs(e - a) <= Abs + Rel * Math.Abs(e)))
                Assert.Fail($"{what}[{i}]: expected {e}, got {a} (diff {Math.Abs(e - a)})");
        }
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    public void Logits_loss_and_every_gradient_match_pytorch(string arch)
    {
        using var f = Open(arch);
        var (model, tokens, targets, b, t) = Load(f);
        model.Parameters.EnableGrads();
        var g = new Graph();
        var logits = model.Forward(g, tokens, b, t);
        var loss = CrossEntropyOp.Forward(g, logits, targets);
        AssertClose(Read(f, "logits"), logits.Span, "logits");
        AssertClose(Read(f, "loss"), loss.Span, "loss");
        g.Backward(loss);
        foreach (var p in model.Parameters) AssertClose(Read(f, "grad." + p.Name), p.Grad!.Span, "grad." + p.Name);
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    public void Ten_adamw_steps_reproduce_the_reference_losses(string arch)
    {
        using var f = Open(arch);
        var (model, tokens, targets, b, t) = Load(f);
        var expected = Read(f, "losses");
        var cfg = new TrainConfig { LearningRate = 1e-3f, MinLr = 1e-4f, WarmupSteps = 3, MaxSteps = 10, Beta1 = 0.9f, Beta2 = 0.95f, Eps = 1e-8f, WeightDecay = 0.1f, GradClip = 1f };
        model.Parameters.EnableGrads();
        var opt = new AdamWOptimizer(model.Parameters, cfg);
        var losses = new float[10];
        var g = new Graph();
        for (int step = 0; step < 10; step++)
        {
            model.Parameters.ZeroGrads();
            g.Reset();
            var loss = model.Loss(g, tokens, targets, b, t);
            losses[step] = loss.Item();
            g.Backward(loss);
            opt.Step(LrSchedule.At(cfg, step, 10), AdamWOptimizer.ClipScale((float)opt.GradNorm(), cfg.GradClip));
        }
        AssertClose(expected, losses, "losses");
    }
}
