// Checks every architecture's tests run the same way: the engine's logits of a sequence, cached decode against a
// full recompute, a GGUF export run by llama.cpp against Quill (logits and greedy tokens), and a LoRA adapter trained
// a few steps (its loss must fall).
using Quill.Autograd;
using Quill.Inference;
using Quill.Models;

namespace Quill.Tests.Support;

internal static class ArchChecks
{
    /// <summary>Logits [T, V] of tokens run at once through a fresh cache of an engine of <paramref name="context"/> positions.</summary>
    public static float[] Logits(InferenceModel m, int[] tokens, int context = 64)
    {
        var e = new InferenceEngine(m, context);
        var all = new float[tokens.Length * m.Spec.VocabSize];
        e.Forward(e.CreateCache(), tokens, all, allLogits: true);
        return all;
    }

    /// <summary>The first <paramref name="prefill"/> tokens at once, then one at a time: each step's logits equal the full run's.</summary>
    public static void CachedDecodeEqualsRecompute(InferenceModel m, int[] tokens, int prefill, string what, int context = 64)
    {
        int v = m.Spec.VocabSize;
        float[] full = Logits(m, tokens, context);
        var e = new InferenceEngine(m, context);
        var cache = e.CreateCache();
        e.Forward(cache, tokens[..prefill], new float[prefill * v], allLogits: true);
        var step = new float[v];
        for (int t = prefill; t < tokens.Length; t++)
        {
            e.Forward(cache, tokens[t..(t + 1)], step);
            Close.Assert(full.AsSpan(t * v, v).ToArray(), step, 1e-5, $"{what}: decode at {t} vs full recompute");
        }
    }

    /// <summary>llama.cpp on the GGUF computes <paramref name="want"/> (Quill's logits of tokens, within tol) and the same greedy tokens.</summary>
    public static void LlamaCppAgrees(string gguf, int[] tokens, float[] want, double tol, int greedy, string what, int context = 64)
    {
        using var cpp = LlamaCpp.Open(gguf, f32Cache: true);
        Close.Assert([.. cpp.Logits(tokens).SelectMany(r => r)], want, tol, $"llama.cpp vs Quill on {what}");
        using var quill = ModelLoader.Load(gguf);
        var engine = new InferenceEngine(quill, context);
        Xunit.Assert.Equal(cpp.Greedy(tokens[..4], greedy), Inference.LlamaCppOracleTests.GreedyQuill(engine, tokens[..4], greedy, quill.Spec.VocabSize));
    }

    /// <summary>Trains lm's trainable parameters (an adapter) with AdamW at lr 3e-2 on tokens as 2 rows of 12; returns the first and last loss.</summary>
    public static (double First, double Last) Train(LanguageModel lm, int[] tokens, int steps)
    {
        lm.Parameters.EnableGrads();
        var opt = new Quill.Training.AdamWOptimizer(lm.Parameters, new Quill.Training.TrainConfig { LearningRate = 3e-2f, WeightDecay = 0f });
        double first = 0, last = 0;
        for (int i = 0; i < steps; i++)
        {
            var g = new Graph();
            var loss = lm.Loss(g, tokens[..24], tokens[1..25], 2, 12);
            if (i == 0) first = loss.Item();
            last = loss.Item();
            g.Backward(loss);
            opt.Step(3e-2f, 1f);
            lm.Parameters.ZeroGrads();
        }
        return (first, last);
    }
}
