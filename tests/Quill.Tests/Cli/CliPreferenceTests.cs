// `quill feedback export` and `quill finetune --method dpo|orpo` as a user meets them: web-chat feedback lines become
// a pairs file, the pairs tune stories260K (a LoRA DPO run and a full ORPO run) with the pairs report, the reference
// pass, reward figures and a checkpoint; flags that do not belong and bad pairs are one line.
using Quill.Tests.Support;

namespace Quill.Tests.Cli;

public class CliPreferenceTests
{
    private const string Feedback = """
        {"time":"2026-12-06T10:00:00Z","model":"stories260K","rating":"down","conversation":"c1","prompt":[{"role":"user","content":"Tell me a story about a cat."}],"reply":"Anna was sad."}
        {"time":"2026-12-06T10:00:09Z","model":"stories260K","rating":"up","conversation":"c1","prompt":[{"role":"user","content":"Tell me a story about a cat."}],"reply":"Once upon a time, there was a cat named Tom."}
        {"time":"2026-12-06T10:01:00Z","model":"stories260K","rating":"up","conversation":"c2","prompt":[{"role":"user","content":"Hi"}],"reply":"Hello."}
        """;

    private static string[] Stories => ["--base", TestData.PathOf("llama2c/stories260K.bin"), "--tokenizer", TestData.PathOf("llama2c/tok512.bin")];

    [TestDataFact("llama2c/stories260K.bin", "llama2c/tok512.bin")]
    public void Feedback_exports_to_pairs_that_dpo_and_orpo_train_on()
    {
        string dir = Directory.CreateTempSubdirectory("quill-cli-pref").FullName;
        string feedback = Path.Combine(dir, "feedback.jsonl"), pairs = Path.Combine(dir, "pairs.jsonl"), kto = Path.Combine(dir, "kto.jsonl");
        File.WriteAllText(feedback, Feedback);
        var ex = CliProcess.Run("feedback", "export", "--in", feedback, "--out", pairs, "--unpaired", kto, "--layout", "plain");
        Assert.True(ex.Exit == 0, ex.Err);
        Assert.Contains("feedback: 3 lines, 3 rated replies in 2 prompts; 1 pairs, 1 replies unpaired", ex.Err);
        Assert.Contains($"pairs: {pairs} (1)", ex.Out);
        Assert.Contains("\"chosen\":\" Once upon a time, there was a cat named Tom.\"", File.ReadAllText(pairs));
        Assert.Contains("\"label\":true", File.ReadAllText(kto));

        var dpo = CliProcess.Run(["finetune", .. Stories, "--data", pairs, "--out", Path.Combine(dir, "dpo"), "--method", "dpo", "--lora", "--max-steps", "3", "--val-fraction", "0"]);
        Assert.True(dpo.Exit == 0, dpo.Err);
        Assert.Contains("dpo (beta 0.1, reference: the base), lora (weights widened to f32, frozen)", dpo.Err);
        Assert.Contains("1 pairs; layout raw text (prompt/completion); 1 train / 0 held out", dpo.Err);
        Assert.Contains("reference log-probs: 1/1 pairs", dpo.Err);
        Assert.Matches(@"step 3/3 \| loss \d\.\d{4} \| reward acc \d\.\d\d margin -?\d\.\d{3}", dpo.Err);
        Assert.Matches(@"rewards \(last step's pairs\): accuracy \d\.\d{3}, chosen", dpo.Err);
        Assert.Contains("adapter: ", dpo.Out);

        var rpo = CliProcess.Run(["finetune", .. Stories, "--data", pairs, "--out", Path.Combine(dir, "rpo"), "--method", "dpo", "--rpo-alpha", "1", "--max-steps", "1", "--val-fraction", "0"]);
        Assert.True(rpo.Exit == 0, rpo.Err);
        Assert.Contains("dpo (beta 0.1, reference: the base, + 1 x chosen NLL (RPO)), full", rpo.Err);

        var orpo = CliProcess.Run(["finetune", .. Stories, "--data", pairs, "--out", Path.Combine(dir, "orpo"), "--method", "orpo", "--max-steps", "2", "--val-fraction", "0"]);
        Assert.True(orpo.Exit == 0, orpo.Err);
        Assert.Contains("orpo (lambda 0.1, no reference), full", orpo.Err);
        Assert.DoesNotContain("reference log-probs", orpo.Err);
        Assert.True(File.Exists(Path.Combine(dir, "orpo", "checkpoint", "model.safetensors")));
    }

    [TestDataTheory("llama2c/stories260K.bin", "llama2c/tok512.bin")]
    [InlineData("--method dpo --loss hinge", "--loss hinge is not a DPO loss; use sigmoid or ipo.")]
    [InlineData("--method simpo --loss ipo", "--loss goes with --method dpo (sigmoid or ipo).")]
    [InlineData("--method lora --beta 0.2", "--beta / --gamma / --rpo-alpha / --lora / --qlora go with a preference method")]
    [InlineData("--method orpo --rpo-alpha 1", "--rpo-alpha adds an NLL term to DPO, IPO or SimPO; ORPO has its own")]
    [InlineData("--method dpo --rpo-alpha -0.5", "--rpo-alpha must be a finite number at least 0 (got -0.5)")]
    [InlineData("--method dpo --beta -1", "--beta must be a positive number (got -1)")]
    [InlineData("--method orpo --gamma 1", "--gamma is SimPO's target margin")]
    [InlineData("--method dpo --train-on-prompt", "--train-on-prompt does not apply to preference pairs")]
    public void Bad_preference_flags_are_one_line(string extra, string expected)
    {
        string dir = Directory.CreateTempSubdirectory("quill-cli-pref-bad").FullName;
        string pairs = Path.Combine(dir, "pairs.jsonl");
        File.WriteAllText(pairs, """{"prompt": "Hi", "chosen": "Hello", "rejected": "Go"}""" + "\n");
        var r = CliProcess.Run(["finetune", .. Stories, "--data", pairs, "--out", Path.Combine(dir, "run"), .. extra.Split(' ')]);
        Assert.Equal(1, r.Exit);
        Assert.Contains(expected, Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("error:", StringComparison.Ordinal)));
        Assert.DoesNotContain("   at ", r.Err);
        Assert.False(Directory.Exists(Path.Combine(dir, "run", "checkpoint")));
    }
}
