// Preference tuning held to PyTorch and to finite differences: fixtures/make_preference_fixtures.py computes DPO,
// IPO, ORPO and SimPO (TRL's formulas in plain float64 torch) on the crosscheck llama with the lora/llama PEFT adapter,
// the reference being the same weights without the adapter; Quill must give the same completion log-probs (policy and,
// with the adapter switched off, reference), loss and gradient of every lora_A / lora_B. The ops are also checked by
// central differences, accumulation over micro-batches equals one batch, and a short DPO run with the Trainer
// separates chosen from rejected while logging its figures.
using System.Text.Json.Nodes;
using Quill.Autograd;
using Quill.Autograd.Ops;
using Quill.Formats.SafeTensors;
using Quill.Inference;
using Quill.Models;
using Quill.Tensors;
using Quill.Tests.Autograd;

namespace Quill.Tests.Training;

public sealed class PreferenceLossTests
{
    private static readonly string Fixtures = Path.Combine(AppContext.BaseDirectory, "fixtures");

    public static TheoryData<string> Losses() => new("dpo", "ipo", "orpo", "simpo", "dpo_rpo");

    // dpo_rpo: DPO plus the chosen tokens' NLL (RPO, TRL's rpo_alpha); the fixture's alpha, 1 where a test gives none
    private static PreferenceSettings Settings(string name, JsonNode k) => new(
        name switch { "dpo" or "dpo_rpo" => PreferenceLoss.Dpo, "ipo" => PreferenceLoss.Ipo, "orpo" => PreferenceLoss.Orpo, _ => PreferenceLoss.SimPo },
        k["beta"]!.GetValue<double>(), k["gamma"]?.GetValue<double>() ?? 0.5,
        name == "dpo_rpo" ? k["rpo_alpha"]?.GetValue<double>() ?? 1.0 : 0);

    private static int[] Flat(JsonNode j, string key) => [.. j[key]!.AsArray().SelectMany(row => row!.AsArray().Select(n => n!.GetValue<int>()))];

    private static double[] Doubles(JsonNode j) => [.. j.AsArray().Select(n => n!.GetValue<double>())];

    [Theory]
    [MemberData(nameof(Losses))]
    public void Loss_log_probs_and_adapter_gradients_equal_torch_with_the_adapter_off_as_reference(string name)
    {
        var j = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures, "preference", "step.json")))!;
        int t = j["T"]!.GetValue<int>();
        int[] tokens = Flat(j, "tokens"), targets = Flat(j, "targets"), lengths = [.. j["lengths"]!.AsArray().Select(n => n!.GetValue<int>())];
        using var open = ModelLoader.Load(Path.Combine(Fixtures, "crosscheck", "llama", "hf"));
        var lm = LanguageModel.FromWeights(open.Weights);
        var adapter = lm.LoadLora(Path.Combine(Fixtures, "lora", "llama", "adapter"));

        // reference: the adapter switched off is the base
        adapter.Enabled = false;
        float[] reference = SequenceLogProbOp.Forward(new Graph(recording: false), lm.Forward(new Graph(recording: false), tokens, 4, t), targets, 4).ToArray();
        adapter.Enabled = true;
        AssertClose(Doubles(j["reference_logps"]!), reference, 1e-4, "reference log-probs");

        lm.Parameters.EnableGrads();
        var g = new Graph();
        var logp = SequenceLogProbOp.Forward(g, lm.Forward(g, tokens, 4, t), targets, 4);
        AssertClose(Doubles(j["policy_logps"]!), logp.ToArray(), 1e-4, "policy log-probs");
        var k = j["losses"]![name]!;
        var loss = PreferenceLossOp.Forward(g, logp, reference, lengths, Settings(name, k), 2, lengths[0] + lengths[1], out var stats);
        double want = k["loss"]!.GetValue<double>();
        Assert.True(Math.Abs(loss.Item() - want) <= 1e-4 * (1 + Math.Abs(want)), $"{name}: loss {loss.Item()} vs torch {want}");
        double[] rc = Doubles(k["chosen_rewards"]!), rr = Doubles(k["rejected_rewards"]!);
        Assert.Equal(rc.Sum(), stats.ChosenReward, 1e-4);
        Assert.Equal(rr.Sum(), stats.RejectedReward, 1e-4);
        Assert.Equal(rc.Zip(rr).Count(p => p.First > p.Second), stats.Correct);
        g.Backward(loss);

        using var grads = SafeTensorsFile.Open(Path.Combine(Fixtures, "preference", $"grads_{name}.safetensors"));
        int covered = 0;
        foreach (var p in lm.Parameters.Where(p => p.Name.Contains(".lora_", StringComparison.Ordinal)))
        {
            float[] w = grads.ReadSingle(PeftAdapterFiles.Prefix + p.Name), got = p.Grad!.ToArray();
            double diff = 0, norm = 0;
            for (int i = 0; i < w.Length; i++)
            {
                diff += (double)(got[i] - w[i]) * (got[i] - w[i]);
                norm += (double)w[i] * w[i];
            }
            Assert.True(norm > 0, $"{name}: torch gradient of {p.Name} is zero; the fixture would prove nothing.");
            Assert.True(Math.Sqrt(diff / norm) < 2e-3, $"{name}: gradient of {p.Name} differs from torch by {Math.Sqrt(diff / norm):G3} of its norm");
            covered++;
        }
        Assert.Equal(grads.Names.Count(), covered);
        Assert.All(lm.Parameters.Where(p => !p.Name.Contains(".lora_", StringComparison.Ordinal)), p => Assert.Null(p.Grad));
    }

    [Theory]
    [MemberData(nameof(Losses))]
    public void The_loss_gradient_matches_finite_differences(string name)
    {
        var settings = Settings(name, new JsonObject { ["beta"] = name == "simpo" ? 2.0 : 0.1 });
        int[] lengths = [3, 5, 7, 2, 4, 6];
        float[] reference = [-9f, -14f, -20f, -5f, -13f, -15f];
        var logp = new Tensor(6) { RequiresGrad = true, Name = "logp" };
        float[] start = [-8f, -15f, -19.5f, -6f, -12f, -14f]; // negative, as log-probs are (ORPO needs them below 0)
        start.CopyTo(logp.Span);
        GradCheck.Check(g => PreferenceLossOp.Forward(g, logp, reference, lengths, settings, 3, 15, out _), [logp], eps: 1e-2f, rtol: 1e-3, atol: 1e-5);
    }

    [Fact]
    public void Sequence_log_probs_match_finite_differences_and_skip_masked_targets()
    {
        var rng = new Rng(7);
        var logits = GradCheck.Random(rng, 1.0, 2, 3, 5);
        logits.Name = "logits";
        int[] targets = [1, -1, 4, -1, 0, 2];
        GradCheck.Check(g => SequenceLogProbOp.Forward(g, logits, targets, 2), [logits], eps: 1e-2f, rtol: 1e-3, atol: 1e-4);
        // row 0 counts positions 0 and 2, row 1 positions 1 and 2
        var y = SequenceLogProbOp.Forward(new Graph(recording: false), logits, targets, 2).ToArray();
        double LogSoftmax(int pos, int id)
        {
            var row = logits.Span.Slice(pos * 5, 5).ToArray();
            double max = row.Max(), sum = row.Sum(v => Math.Exp(v - max));
            return row[id] - max - Math.Log(sum);
        }
        Assert.Equal(LogSoftmax(0, 1) + LogSoftmax(2, 4), y[0], 1e-5);
        Assert.Equal(LogSoftmax(4, 0) + LogSoftmax(5, 2), y[1], 1e-5);
    }

    [Theory]
    [MemberData(nameof(Losses))]
    public void Two_micro_batches_with_the_step_totals_add_up_to_one_batch(string name)
    {
        var settings = Settings(name, new JsonObject { ["beta"] = 0.5 });
        float[] all = [-8f, -15f, -12f, -19.5f, -6f, -14f, -10f, -16f]; // 4 pairs: chosen 0..3, rejected 4..7
        float[] reference = [-9f, -14f, -11f, -20f, -5f, -13f, -12f, -15f];
        int[] lengths = [3, 5, 4, 7, 2, 4, 6, 5];
        long chosen = 3 + 5 + 4 + 7;
        var whole = new Tensor(8) { RequiresGrad = true };
        all.CopyTo(whole.Span);
        var g = new Graph();
        var one = PreferenceLossOp.Forward(g, whole, reference, lengths, settings, 4, chosen, out var s1);
        g.Backward(one);
        float sum = 0;
        var parts = new float[8];
        var s2 = default(PreferenceStats);
        foreach (int[] pairs in new[] { new[] { 0, 1 }, new[] { 2, 3 } })
        {
            int[] rows = [pairs[0], pairs[1], 4 + pairs[0], 4 + pairs[1]];
            var x = new Tensor(4) { RequiresGrad = true };
            for (int i = 0; i < 4; i++) x.Span[i] = all[rows[i]];
            var h = new Graph();
            var part = PreferenceLossOp.Forward(h, x, [.. rows.Select(r => reference[r])], [.. rows.Select(r => lengths[r])], settings, 4, chosen, out var s);
            sum += part.Item();
            s2.Add(s);
            h.Backward(part);
            for (int i = 0; i < 4; i++) parts[rows[i]] = x.Grad!.Span[i];
        }
        Assert.Equal(one.Item(), sum, 1e-5);
        for (int i = 0; i < 8; i++) Assert.Equal(whole.Grad!.Span[i], parts[i], 1e-6);
        Assert.Equal(s1.Correct, s2.Correct);
        Assert.Equal(s1.Margin, s2.Margin, 1e-9);
    }

    [Fact]
    public void Dpo_starts_at_log_2_and_rewards_are_zero_when_policy_equals_reference()
    {
        float[] lp = [-4f, -7f, -5f, -6f];
        var x = new Tensor(4);
        lp.CopyTo(x.Span);
        var loss = PreferenceLossOp.Forward(new Graph(recording: false), x, lp, [2, 3, 2, 3], new PreferenceSettings(PreferenceLoss.Dpo, 0.1), 2, 5, out var s);
        Assert.Equal(Math.Log(2), loss.Item(), 1e-6);
        Assert.Equal(0, s.Correct);
        Assert.Equal(0, s.Margin, 1e-12);
        Assert.Throws<ArgumentException>(() => PreferenceLossOp.Forward(new Graph(), x, null, [2, 3, 2, 3], new PreferenceSettings(PreferenceLoss.Ipo, 0.1), 2, 5, out _));
    }

    [Fact]
    public void Orpo_stays_finite_when_a_reply_is_certain()
    {
        var x = new Tensor(4) { RequiresGrad = true };
        float[] lp = [0f, -3f, -2f, 0f]; // a float sum of log-probs can be exactly 0
        lp.CopyTo(x.Span);
        var g = new Graph();
        var loss = PreferenceLossOp.Forward(g, x, null, [2, 3, 2, 3], new PreferenceSettings(PreferenceLoss.Orpo, 0.1), 2, 5, out _);
        g.Backward(loss);
        Assert.True(float.IsFinite(loss.Item()));
        Assert.All(x.Grad!.ToArray(), v => Assert.True(float.IsFinite(v)));
    }

    private static void AssertClose(double[] want, float[] got, double tol, string what)
    {
        Assert.Equal(want.Length, got.Length);
        for (int i = 0; i < want.Length; i++)
            Assert.True(Math.Abs(want[i] - got[i]) <= tol * (1 + Math.Abs(want[i])), $"{what}[{i}]: {got[i]} vs torch {want[i]}");
    }
}
