// stories260K with tok512, run through the inference engine as llama2.c's run.c runs it: every case of
// expected_outputs.json (greedy 200 and 256 steps, top-p with seed 133742, prompt "Zoo") must match byte for byte.
// run.c semantics: -n counts positions including the prompt, generation stops when BOS is sampled, and the
// printed text includes the prompt's pieces (the first piece's leading space dropped after BOS).
using System.Text.Json;
using Quill.Inference;
using Quill.Tests.Support;

namespace Quill.Tests.Inference;

public sealed class Llama2cGoldenTests
{
    internal const string Model = "llama2c/stories260K.bin";
    internal const string Tok = "llama2c/tok512.bin";
    internal const string Expected = "llama2c/expected_outputs.json";

    [TestDataTheory(Model, Tok, Expected)]
    [InlineData("test_all_greedy_200")]
    [InlineData("doc_greedy_default_steps")]
    [InlineData("doc_topp_seed133742")]
    [InlineData("c64_zoo_greedy_60")]
    public void Stories260K_reproduces_run_c(string id) => Reproduce(TestData.PathOf(Model), TestData.PathOf(Tok), id);

    /// <summary>Runs case <paramref name="id"/> of expected_outputs.json on a stories260K file and tokenizer.</summary>
    internal static void Reproduce(string modelPath, string tokPath, string id)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestData.PathOf(Expected)));
        var c = doc.RootElement.GetProperty("stories260K_generation").EnumerateArray().Single(e => e.GetProperty("id").GetString() == id);
        string prompt = c.GetProperty("prompt").GetString()!;
        int steps = c.GetProperty("steps").GetInt32();
        var sampling = new SamplingOptions
        {
            Temperature = c.GetProperty("temperature").GetSingle(),
            TopP = c.TryGetProperty("topp", out var p) ? p.GetSingle() : 1f,
            Seed = c.TryGetProperty("seed", out var s) ? s.GetUInt64() : 1,
        };

        using var model = ModelLoader.Load(modelPath, tokPath);
        var gen = new Generator(new InferenceEngine(model));
        int[] ids = gen.EncodePrompt(prompt);
        Assert.Equal(1, ids[0]);
        var options = new GenerationOptions { Sampling = sampling, MaxTokens = steps - ids.Length + 1, StopAtEos = false, StopTokens = [1] };
        var text = new System.Text.StringBuilder(gen.Tokenizer.Decode(ids.AsSpan(1)));
        foreach (var t in gen.Generate(ids, options)) text.Append(t.Text);

        Assert.Equal(c.GetProperty("expected").GetString(), text.ToString());
        if (c.TryGetProperty("derived_token_ids", out var derived))
        {
            var got = new List<int>(ids);
            var idsOnly = gen.Generate(ids, options).Where(t => t.Id >= 0).Select(t => t.Id);
            got.AddRange(idsOnly);
            Assert.Equal(derived.EnumerateArray().Select(e => e.GetInt32()), got);
        }
    }
}
