using Quill.Autograd;
using Quill.Autograd.Ops;
using Quill.Models;
using Quill.Tensors;

namespace Quill.Tests.Autograd;

public class GraphTests
{
    private static LanguageModel Tiny(string arch) => LanguageModel.Create(new ModelConfig
    {
        Arch = arch, VocabSize = 11, NLayer = 2, NHead = 2, NKvHead = arch == "llama" ? 1 : 0, NEmbd = 8, BlockSize = 6, MlpHidden = 16,
    });

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    public void Inference_mode_records_nothing_and_allocates_no_gradients(string arch)
    {
        var model = Tiny(arch);
        var g = new Graph(recording: false);
        var logits = model.Forward(g, [1, 2, 3, 4], 1, 4);
        Assert.Equal(0, g.NodeCount);
        Assert.All(model.Parameters, p => Assert.Null(p.Grad));
        Assert.Equal([1, 4, 11], logits.Shape);
        Assert.Throws<InvalidOperationException>(() => g.Backward(CrossEntropyOp.Forward(g, logits, [1, 2, 3, 4])));
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    public void Gradients_accumulate_across_backward_passes(string arch)
    {
        var model = Tiny(arch);
        model.Parameters.EnableGrads();
        int[] x = [1, 2, 3, 4, 5, 6], y = [2, 3, 4, 5, 6, 7];
        var g = new Graph();
        g.Backward(model.Loss(g, x, y, 2, 3));
        var once = model.Parameters.Select(p => p.Grad!.Span.ToArray()).ToList();
        g.Reset();
        g.Backward(model.Loss(g, x, y, 2, 3));
        for (int i = 0; i < once.Count; i++)
        {
            var twice = model.Parameters[i].Grad!.Span;
            for (int j = 0; j < twice.Length; j++) Assert.Equal(2 * once[i][j], twice[j], 1e-5f + 1e-5f * Math.Abs(twice[j]));
        }
        Assert.Contains(once, a => a.Any(v => v != 0f));
    }

    [Fact]
    public void Arena_reuses_storage_from_the_second_step_on()
    {
        var model = Tiny("gpt2");
        model.Parameters.EnableGrads();
        var g = new Graph();
        int[] x = [1, 2, 3, 4, 5, 6], y = [2, 3, 4, 5, 6, 7];
        g.Backward(model.Loss(g, x, y, 2, 3));
        g.Reset();
        long held = g.ArenaBytes;
        for (int i = 0; i < 3; i++)
        {
            g.Backward(model.Loss(g, x, y, 2, 3));
            g.Reset();
        }
        Assert.Equal(held, g.ArenaBytes);
    }

    [Fact]
    public unsafe void Activations_gradients_and_parameter_gradients_start_on_a_64_byte_line()
    {
        static long Misalignment(Tensor t)
        {
            fixed (float* p = t.Span) return (long)p % 64;
        }
        var model = Tiny("gpt2");
        model.Parameters.EnableGrads();
        var g = new Graph();
        foreach (int n in new[] { 1, 3, 16, 17, 1000, 4099 }) Assert.Equal(0, Misalignment(g.NewTensor([n])));
        var loss = model.Loss(g, [1, 2, 3, 4, 5, 6], [2, 3, 4, 5, 6, 7], 2, 3);
        Assert.Equal(0, Misalignment(loss));
        g.Backward(loss);
        Assert.All(model.Parameters, p => Assert.Equal(0, Misalignment(p.Grad!)));
        // a discarded activation goes back to the arena whole, and the next request of its size gets it again
        g.Reset();
        var a = g.NewTensor([37]);
        g.Discard(a);
        var b = g.NewTensor([37]);
        Assert.Same(a.Storage, b.Storage);
        Assert.Equal(37, b.Length);
        Assert.Equal(0, Misalignment(b));
        Assert.False(TensorArena.IsWhole(b.Narrow(0, 0, 10)));
        Assert.False(TensorArena.IsWhole(b.Narrow(0, 1, 36)));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Backward_reuses_the_gradients_of_later_layers_for_earlier_ones(bool lora)
    {
        // 8 layers: without reuse the backward would add about as much storage as the forward holds (a gradient per
        // activation); freeing each output's gradient after its producer's backward keeps a few layers' worth.
        var model = LanguageModel.Create(new ModelConfig { Arch = "llama", VocabSize = 11, NLayer = 8, NHead = 2, NEmbd = 32, BlockSize = 16, MlpHidden = 64 });
        if (lora)
        {
            var rng = new Rng(2);
            foreach (var m in model.AddLora(new LoraConfig { Rank = 2 }).Modules) rng.FillNormal(m.B.Span, 0.1); // B != 0: A gets a gradient
        }
        model.Parameters.EnableGrads();
        var g = new Graph();
        int[] x = [.. Enumerable.Range(0, 32).Select(i => i % 11)], y = [.. Enumerable.Range(0, 32).Select(i => (i + 1) % 11)];
        var loss = model.Loss(g, x, y, 2, 16);
        long forward = g.ArenaBytes;
        g.Backward(loss);
        long backward = g.ArenaBytes - forward;
        Assert.True(backward < forward / 3, $"the backward rented {backward} bytes beside the forward's {forward}");
        Assert.All(model.Parameters.Trainable, p => Assert.Contains(p.Grad!.ToArray(), v => v != 0f));
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    public void Whole_model_gradient_matches_finite_differences(string arch)
    {
        var model = Tiny(arch);
        int[] x = [1, 2, 3, 4, 5, 6], y = [2, 3, 4, 5, 6, 7];
        model.Parameters.EnableGrads();
        var g = new Graph();
        g.Backward(model.Loss(g, x, y, 2, 3));
        var rng = new Rng(3);
        foreach (var p in model.Parameters)
        {
            for (int k = 0; k < 3; k++)
            {
                int i = (int)rng.NextInt64(p.Length);
                float orig = p.Span[i];
                const float eps = 1e-2f;
                p.Span[i] = orig + eps;
                double up = model.Loss(new Graph(false), x, y, 2, 3).Item();
                p.Span[i] = orig - eps;
                double down = model.Loss(new Graph(false), x, y, 2, 3).Item();
                p.Span[i] = orig;
                double numeric = (up - down) / (2 * eps);
                double analytic = p.Grad!.Span[i];
                Assert.True(Math.Abs(numeric - analytic) <= 2e-3 + 5e-2 * Math.Abs(numeric), $"{p.Name}[{i}]: analytic {analytic}, numeric {numeric}");
            }
        }
    }
}
