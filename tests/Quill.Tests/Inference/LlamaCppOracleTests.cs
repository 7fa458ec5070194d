// llama.cpp (LLamaSharp, test-only) as the oracle for Quill's GGUF reading: the same file, the same token ids, the
// same logits and the same greedy tokens.
using Quill.Inference;
using Quill.Tests.Support;

namespace Quill.Tests.Inference;

public sealed class LlamaCppOracleTests
{
    private const string Tiny = "gguf-models/llama-2-tiny-random.gguf";

    [TestDataFact(Tiny)]
    public void Tiny_random_gguf_has_llama_cpp_logits_and_greedy_tokens()
    {
        string path = TestData.PathOf(Tiny);
        using var quill = ModelLoader.Load(path);
        using var cpp = LlamaCpp.Open(path);
        Assert.Equal(quill.Spec.VocabSize, cpp.VocabSize);

        int[] tokens = [1, 15043, 3186, 29892, 920, 526, 366, 29973, 306, 626];
        int v = quill.Spec.VocabSize;
        var mine = new float[tokens.Length * v];
        var engine = new InferenceEngine(quill, 128);
        engine.Forward(engine.CreateCache(), tokens, mine, allLogits: true);
        float[][] theirs = cpp.Logits(tokens);
        double worst = 0;
        for (int t = 0; t < tokens.Length; t++)
            for (int i = 0; i < v; i++) worst = Math.Max(worst, Math.Abs(mine[t * v + i] - theirs[t][i]) / (1 + Math.Abs(theirs[t][i])));
        Assert.True(worst < 1e-3, $"largest relative logit difference {worst:G3}");

        int[] want = cpp.Greedy(tokens, 32);
        Assert.True(want.Distinct().Count() > 4, "the continuation should not be one repeated token: " + string.Join(",", want));
        int[] got = GreedyQuill(engine, tokens, 32, v);
        Assert.Equal(want, got);
    }

    internal static int[] GreedyQuill(InferenceEngine engine, int[] prompt, int count, int vocab)
    {
        var cache = engine.CreateCache();
        var logits = new float[vocab];
        engine.Forward(cache, prompt, logits);
        var output = new int[count];
        for (int n = 0; n < count; n++)
        {
            int next = 0;
            for (int i = 1; i < vocab; i++) if (logits[i] > logits[next]) next = i;
            output[n] = next;
            if (n + 1 < count) engine.Forward(cache, [next], logits);
        }
        return output;
    }
}
