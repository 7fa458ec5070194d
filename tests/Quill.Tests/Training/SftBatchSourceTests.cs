// SFT rows: one example per row from its first token, trained targets shifted by one, the EOS a target, pad
// inputs after the example with masked targets; rows depend only on the generator's seed, so a fine-tuning run
// resumed from its checkpoint ends bit for bit where the uninterrupted run does.
using Quill.Data.Sft;
using Quill.Models;
using Quill.Tensors;
using Quill.Tokenization;
using Quill.Training;

namespace Quill.Tests.Training;

public sealed class SftBatchSourceTests
{
    private static SftTokens Example(int line, int[] ids, int promptLength) =>
        new(line, ids, [.. ids.Select((_, i) => i >= promptLength)]);

    [Fact]
    public void A_padded_row_holds_the_example_then_pad_inputs_with_masked_targets()
    {
        var e = Example(1, [1, 10, 11, 12, 20, 21, 2], promptLength: 4); // BOS, prompt 10-12, reply 20 21, EOS 2
        int[] x = new int[10], y = new int[10];
        SftBatchSource.WriteRow(e, x, y, padId: 0);
        Assert.Equal([1, 10, 11, 12, 20, 21, 2, 0, 0, 0], x);
        Assert.Equal([-1, -1, -1, 20, 21, 2, -1, -1, -1, -1], y); // the EOS is a target: the model learns to stop
    }

    [Fact]
    public void Fill_is_deterministic_for_a_seed_and_refuses_rows_too_short()
    {
        var examples = Enumerable.Range(0, 20).Select(i => Example(i + 1, [.. Enumerable.Range(3, 2 + i % 5)], 2)).ToList();
        var source = new SftBatchSource(examples, padId: 1);
        Assert.True(source.CanSample(6));
        Assert.False(source.CanSample(4)); // the longest example has 7 tokens: rows of 6 inputs
        int[] Draw(ulong seed)
        {
            int[] x = new int[4 * 6], y = new int[4 * 6];
            source.Fill(new Rng(seed), 4, 6, x, y);
            return [.. x, .. y];
        }
        Assert.Equal(Draw(7), Draw(7));
        Assert.NotEqual(Draw(7), Draw(8));
        Assert.False(new SftBatchSource([]).CanSample(8));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // packed rows (PackingTests has the rest of packing)
    public void Fine_tuning_on_sft_rows_resumes_bit_for_bit(bool packing)
    {
        var tok = new ByteTokenizer();
        var lines = Enumerable.Range(0, 12).Select(i => $$"""{"prompt": "Q{{i}}: ", "completion": "A{{i}}{{new string('!', i)}}"}""");
        string dir = Directory.CreateTempSubdirectory("quill-sft-train").FullName;
        string path = Path.Combine(dir, "data.jsonl");
        File.WriteAllLines(path, lines);
        var data = SftDataset.Load(path, new SftRenderer(tok, null, addBos: false), new SftOptions { MaxTokens = 33, ValFraction = 0 });
        var cfg = new RunConfig
        {
            Model = new ModelConfig { Arch = "llama", VocabSize = 256, NLayer = 1, NHead = 2, NEmbd = 16, BlockSize = 32 },
            Train = new TrainConfig { BatchSize = 2, SeqLen = 32, TokensPerStep = 128, MaxSteps = 6, LearningRate = 3e-3f, WarmupSteps = 1, EvalEvery = 0, CheckpointEvery = 0, Packing = packing },
        };
        var source = new SftBatchSource(data.Train, packing: packing);
        if (packing) Assert.True(source.Layout(32, true).Rows < source.Layout(32, false).Rows); // rows do hold several examples
        var start = LanguageModel.Create(cfg.Model, seed: 3);
        Trainer Make(string run, bool resume = false, int? stop = null) => new(cfg, new TrainOptions(null, Path.Combine(dir, run), Resume: resume, StopAfterSteps: stop),
            LanguageModel.FromWeights(start.ToWeights()), source);
        using (var full = Make("full")) full.Run();
        using (var first = Make("split", stop: 4)) first.Run();
        using (var second = Make("split", resume: true)) second.Run();
        foreach (string f in new[] { "model.safetensors", "optimizer.safetensors" })
            Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "full", "checkpoint", f)), File.ReadAllBytes(Path.Combine(dir, "split", "checkpoint", f)));
        Assert.Equal(packing, File.ReadAllText(Path.Combine(dir, "full", "checkpoint", "config.json")).Contains("\"packing\": true", StringComparison.Ordinal));
    }
}
