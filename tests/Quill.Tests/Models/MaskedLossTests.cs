// LanguageModel.Loss runs the head only on the rows that have a target (GatherRowsOp), so a fine-tuning batch whose
// prompt and padding are masked never makes their logits. The loss and every gradient must be those of the full
// logits through CrossEntropyOp (which ignores the masked rows): checked on a tied Llama trained whole (the table
// gets gradients through the head and the lookup) and on an untied GPT-2 with a LoRA adapter, with most targets
// masked, one kept, none masked (the full path) and all masked (loss 0, no gradient).
using Quill.Autograd;
using Quill.Autograd.Ops;
using Quill.Models;
using Quill.Tensors;

namespace Quill.Tests.Models;

public class MaskedLossTests
{
    private const int B = 2, T = 12, V = 40;

    private static LanguageModel Model(string arch, bool lora)
    {
        var lm = LanguageModel.Create(new ModelConfig { Arch = arch, VocabSize = V, NLayer = 2, NHead = 2, NEmbd = 16, BlockSize = 16, MlpHidden = 32, TieEmbeddings = arch == "llama" }, 5);
        if (lora)
        {
            var a = lm.AddLora(new LoraConfig { Rank = 2, Alpha = 4 }, seed: 2);
            var rng = new Rng(9);
            foreach (var m in a.Modules) rng.FillNormal(m.B.Span, 0.1);
        }
        lm.Parameters.EnableGrads();
        return lm;
    }

    private static (float Loss, float[][] Grads) Step(LanguageModel lm, int[] tokens, int[] targets, bool gathered)
    {
        lm.Parameters.ZeroGrads();
        var g = new Graph();
        var loss = gathered ? lm.Loss(g, tokens, targets, B, T) : CrossEntropyOp.Forward(g, lm.Forward(g, tokens, B, T), targets);
        float l = loss.Item();
        if (loss.RequiresGrad) g.Backward(loss);
        return (l, [.. lm.Parameters.Trainable.Select(p => p.Grad?.ToArray() ?? new float[p.Length])]);
    }

    public static TheoryData<string, bool, int> Cases() => new()
    {
        { "llama", false, 3 }, { "llama", false, 1 }, { "llama", false, 0 }, { "llama", false, B * T },
        { "gpt2", true, 3 }, { "gpt2", true, B * T },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void The_loss_on_kept_rows_equals_the_loss_of_the_full_logits(string arch, bool lora, int every)
    {
        var lm = Model(arch, lora);
        int[] tokens = [.. Enumerable.Range(0, B * T).Select(i => (i * 7 + 3) % V)];
        // every = k keeps every k-th target (1: none masked; B * T: only the first; 0: all masked)
        int[] targets = [.. Enumerable.Range(0, B * T).Select(i => every > 0 && i % every == 0 ? (i * 11 + 1) % V : -1)];
        var want = Step(lm, tokens, targets, gathered: false);
        var got = Step(lm, tokens, targets, gathered: true);
        Assert.Equal(want.Loss, got.Loss, 6);
        if (every == 0) Assert.Equal(0f, got.Loss);
        else Assert.True(got.Loss > 0);
        bool any = false;
        for (int i = 0; i < want.Grads.Length; i++)
        {
            for (int k = 0; k < want.Grads[i].Length; k++)
            {
                Assert.True(Math.Abs(want.Grads[i][k] - got.Grads[i][k]) <= 1e-6f + 1e-5f * Math.Abs(want.Grads[i][k]), $"gradient {i}[{k}]: {got.Grads[i][k]} vs {want.Grads[i][k]}");
                any |= want.Grads[i][k] != 0;
            }
        }
        Assert.Equal(every != 0, any);
    }
}
