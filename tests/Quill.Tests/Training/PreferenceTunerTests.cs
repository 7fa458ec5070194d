// Preference pairs and the preference trainer on a real model: TRL's pair shapes read into the same layout SFT uses,
// bad pairs counted and skipped or refused in one line, and DPO / IPO / ORPO / SimPO runs on stories260K (llama2.c)
// that separate chosen from rejected replies, log their figures, keep the base frozen under an adapter and compare
// with the starting model as reference.
using System.Text.Json.Nodes;
using Quill.Autograd;
using Quill.Autograd.Ops;
using Quill.Data.Sft;
using Quill.Inference;
using Quill.Models;
using Quill.Tests.Support;
using Quill.Tokenization;
using Quill.Training;

namespace Quill.Tests.Training;

public sealed class PreferenceTunerTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("quill-pref-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static string Stories => TestData.PathOf("llama2c/stories260K.bin");

    private static string Tok => TestData.PathOf("llama2c/tok512.bin");

    private string Write(string name, string text)
    {
        string path = Path.Combine(dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private const string Pairs = """
        {"prompt": "Once upon a time, there was a cat named", "chosen": " Tom. Tom liked to play in the sun. The end.", "rejected": " Max. Max ran and ran and ran and ran."}
        {"prompt": "Once upon a time, there was a dog named", "chosen": " Ben. Ben found a ball and was happy. The end.", "rejected": " Sue. Sue was sad sad sad sad."}
        {"prompt": "Once upon a time, there was a bird named", "chosen": " Lily. Lily sang in the tree all day. The end.", "rejected": " Sam. Sam Sam Sam Sam Sam."}
        {"prompt": "Once upon a time, there was a fox named", "chosen": " Kim. Kim found a shell by the sea. The end.", "rejected": " Bob. Bob was bad and mean and bad."}
        """;

    [Fact]
    public void Pairs_in_each_trl_shape_render_as_sft_does_and_bad_ones_are_counted()
    {
        var tok = new ByteTokenizer();
        var renderer = new SftRenderer(tok, null, false);
        string path = Write("pairs.jsonl", """
            {"prompt": "Hi", "chosen": "Hello", "rejected": "Go"}
            {"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Hello"}], "rejected": "Go"}
            {"messages": [{"role": "user", "content": "Hi"}], "chosen": "Hello", "rejected": "Go"}
            {"chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}], "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go"}]}
            {"prompt": "Hi", "chosen": "Same", "rejected": "Same"}
            {"prompt": "Hi", "chosen": "", "rejected": "Go"}
            {"prompt": "  ", "chosen": "Hello", "rejected": "Go"}

            """);
        File.AppendAllText(path, $$"""{"prompt": "{{new string('x', 300)}}", "chosen": "Yes", "rejected": "No"}""" + "\n"); // beyond 200 tokens
        var data = PreferenceDataset.Load(path, renderer, maxTokens: 200, valFraction: 0);
        var r = data.Report;
        Assert.Equal((8, 4, 1, 2, 1), (r.Read, r.Train, r.SkippedIdentical, r.SkippedEmpty, r.SkippedTooLong));
        Assert.Contains("8 pairs", r.Describe());
        Assert.Contains("1 skipped (chosen = rejected)", r.Describe());
        Assert.Contains("2 skipped (empty field)", r.Describe());
        Assert.Contains("1 skipped (longer than the context)", r.Describe());
        // the raw pair is prompt + reply as text; the chat shapes (explicit, messages, implicit) render identically
        // through the Alpaca layout, as `quill finetune` renders the same conversation for SFT
        var raw = data.Train[0];
        Assert.Equal(tok.Encode("HiHello").Append(tok.EosId).Where(i => i >= 0), raw.Chosen.Ids);
        Assert.Equal(5, raw.Chosen.TrainedTargets - (tok.EosId >= 0 ? 1 : 0));
        var sft = renderer.Render(SftReader.Parse("""{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}""", "x", 1)!);
        foreach (var p in data.Train.Skip(1))
        {
            Assert.Equal(sft.Ids, p.Chosen.Ids);
            Assert.Equal(sft.Trained, p.Chosen.Trained);
        }
        Assert.Equal(2, data.Train[1].Rejected.TrainedTargets - (tok.EosId >= 0 ? 1 : 0));
    }

    [Theory]
    [InlineData("""{"prompt": "a"}""", "pairs.jsonl:1", "not a preference pair")]
    [InlineData("""{"prompt": "a", "chosen": 3, "rejected": "b"}""", "pairs.jsonl:1", "\"chosen\" must be a string or a list of turns")]
    [InlineData("""{"chosen": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "rejected": [{"role": "user", "content": "z"}, {"role": "assistant", "content": "c"}]}""", "pairs.jsonl:1", "differ only in their last")]
    [InlineData("""{"prompt": [{"role": "assistant", "content": "a"}], "chosen": "b", "rejected": "c"}""", "pairs.jsonl:1", "turn 0 is assistant")]
    [InlineData("not json", "pairs.jsonl:1", "invalid JSON")]
    public void A_line_that_is_not_a_pair_is_a_one_line_error_naming_it(string line, string at, string why)
    {
        string path = Write("pairs.jsonl", line + "\n");
        var e = Assert.Throws<InvalidFileException>(() => PreferenceDataset.Load(path, new SftRenderer(new ByteTokenizer(), null, false), 64, 0));
        Assert.Contains(at, e.Message);
        Assert.Contains(why, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    private (PreferenceTuner Tuner, InferenceModel Open) Make(PreferenceLoss loss, FinetuneMethod method, string run, int steps = 30, double beta = 0.1, float lr = 5e-3f,
        int? stop = null, bool resume = false)
    {
        var open = ModelLoader.Load(Stories, Tok);
        var options = new FinetuneOptions(Write("pairs.jsonl", Pairs), Path.Combine(dir, run))
        {
            Method = method, ValFraction = 0, StopAfterSteps = stop, Resume = resume, Lora = new LoraConfig { Rank = 4, Alpha = 8, TargetModules = [LoraConfig.AllLinear] },
        };
        var lm = Finetuner.BaseModel(open.Weights, options);
        var cfg = new RunConfig { Train = new TrainConfig { BatchSize = 2, SeqLen = 64, MaxSteps = steps, LearningRate = lr, WarmupSteps = 2, EvalEvery = 0, CheckpointEvery = 0 } };
        return (new PreferenceTuner(new FinetuneBase(lm, open.Tokenizer!, null, open.AddBos, open.ExtraStopIds), cfg, options, new PreferenceSettings(loss, beta)), open);
    }

    /// <summary>Summed completion log-probs of every pair's chosen and rejected reply under the model as it is.</summary>
    private static (float[] Chosen, float[] Rejected) LogProbs(LanguageModel lm, PreferenceDataset data)
    {
        var src = new PreferenceBatchSource(data.Train);
        int p = data.Train.Count, t = 64;
        int[] x = new int[2 * p * t], y = new int[2 * p * t];
        src.WriteRows([.. Enumerable.Range(0, p)], p, t, x, y);
        var g = new Graph(recording: false);
        var lp = SequenceLogProbOp.Forward(g, lm.Forward(g, x, 2 * p, t), y, 2 * p).ToArray();
        return (lp[..p], lp[p..]);
    }

    [TestDataTheory("llama2c/stories260K.bin", "llama2c/tok512.bin")]
    [InlineData(PreferenceLoss.Dpo)]
    [InlineData(PreferenceLoss.Ipo)]
    [InlineData(PreferenceLoss.Orpo)]
    [InlineData(PreferenceLoss.SimPo)]
    public void A_lora_run_separates_chosen_from_rejected_keeps_the_base_and_logs_rewards(PreferenceLoss loss)
    {
        var (tuner, open) = Make(loss, FinetuneMethod.Lora, "run", beta: loss == PreferenceLoss.SimPo ? 2.0 : 0.1);
        using (open)
        using (tuner)
        {
            var lm = tuner.Trainer.Model;
            var frozen = lm.Parameters.Where(p => !p.Name.Contains(".lora_", StringComparison.Ordinal)).Select(p => (p.Name, p.ToArray())).ToList();
            var (c0, r0) = LogProbs(lm, tuner.Data);
            var result = tuner.Run();
            var (c1, r1) = LogProbs(lm, tuner.Data);
            for (int i = 0; i < c0.Length; i++)
                Assert.True(c1[i] - r1[i] > c0[i] - r0[i] + 0.5, $"{loss} pair {i}: log-ratio chosen - rejected {c0[i] - r0[i]} -> {c1[i] - r1[i]}");
            foreach (var (name, values) in frozen) Assert.Equal(values, lm.Parameters[name].ToArray());
            // the adapter switched off is still the reference the run compared with
            lm.Lora!.Enabled = false;
            var (cb, rb) = LogProbs(lm, tuner.Data);
            lm.Lora.Enabled = true;
            Assert.Equal(c0, cb);
            Assert.Equal(r0, rb);

            var lines = File.ReadAllLines(Path.Combine(dir, "run", "metrics.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
            Assert.Equal(30, lines.Count);
            Assert.All(lines, l => Assert.NotNull(l["reward_accuracy"]));
            var last = lines[^1];
            Assert.Equal(1.0, last["reward_accuracy"]!.GetValue<double>());
            Assert.True(last["margin"]!.GetValue<double>() > 0);
            Assert.Equal(last["chosen_reward"]!.GetValue<double>() - last["rejected_reward"]!.GetValue<double>(), last["margin"]!.GetValue<double>(), 1e-5);
            if (loss == PreferenceLoss.Dpo) Assert.Equal(Math.Log(2), lines[0]["loss"]!.GetValue<double>(), 1e-5); // B = 0: policy = reference
            Assert.Contains("Reward accuracy", File.ReadAllText(Path.Combine(dir, "run", "rewards.svg")));
            Assert.True(result.LastLoss < lines[0]["loss"]!.GetValue<float>());
        }
    }

    [TestDataFact("llama2c/stories260K.bin", "llama2c/tok512.bin")]
    public void Full_dpo_compares_with_the_starting_weights_and_a_resumed_run_continues_bit_for_bit()
    {
        float[][] Weights(PreferenceTuner t) => [.. t.Trainer.Model.Parameters.Select(p => p.ToArray())];
        float[][] want;
        var (straight, o1) = Make(PreferenceLoss.Dpo, FinetuneMethod.Full, "straight", steps: 8, lr: 1e-3f);
        using (o1)
        using (straight)
        {
            straight.Run();
            want = Weights(straight);
            var first = JsonNode.Parse(File.ReadLines(Path.Combine(dir, "straight", "metrics.jsonl")).First())!;
            Assert.Equal(Math.Log(2), first["loss"]!.GetValue<double>(), 1e-5); // the reference is the model before the first update
        }
        var (part, o2) = Make(PreferenceLoss.Dpo, FinetuneMethod.Full, "split", steps: 8, lr: 1e-3f, stop: 5);
        using (o2)
        using (part)
        {
            Assert.Equal(5, part.Run().Steps);
        }
        // the resumed run rebuilds the model from the base, so its reference is the base again, not step 5's weights
        var (rest, o3) = Make(PreferenceLoss.Dpo, FinetuneMethod.Full, "split", steps: 8, lr: 1e-3f, resume: true);
        using (o3)
        using (rest)
        {
            Assert.Equal(8, rest.Run().Steps);
            var got = Weights(rest);
            for (int i = 0; i < want.Length; i++) Assert.Equal(want[i], got[i]);
        }
        Assert.Equal(File.ReadAllLines(Path.Combine(dir, "straight", "metrics.jsonl")).Select(Loss), File.ReadAllLines(Path.Combine(dir, "split", "metrics.jsonl")).Select(Loss));
    }

    private static double Loss(string line) => JsonNode.Parse(line)!["loss"]!.GetValue<double>();
}
