// `quill quickstart --chat` end to end with tiny step counts (seconds, not minutes): the data files, pretraining,
// the request-following figure before fine-tuning, LoRA fine-tuning (PEFT adapter in chat-lora/, merged into chat/), the figure after (and the story-question
// figures), with --prefer the DPO stage and both win-rate figures, samples and a chat model folder that `quill chat`
// opens; the figures are printed whatever they are. The plain quickstart's stop token is
// checked on its prepared data. Bad combinations are one line.
namespace Quill.Tests.Cli;

public class CliQuickstartTests
{
    [Fact]
    public void Quickstart_chat_runs_the_whole_flow_and_prints_both_request_following_figures()
    {
        string run = Path.Combine(Directory.CreateTempSubdirectory("quill-quickstart").FullName, "run");
        var r = CliProcess.Run("quickstart", "--chat", "--out", run, "--max-steps", "2", "--finetune-steps", "2", "--eval-tokens", "4",
            "--prefer", "--dpo-steps", "2", "--prefer-pairs", "12");
        Assert.True(r.Exit == 0, r.Err);
        Assert.Contains("200 held-out requests", r.Err);
        Assert.Contains("fine-tuning (LoRA r 32, alpha 64, all linear layers; lr 0.005): ", r.Err);
        Assert.Contains("merged the adapter (", r.Err);
        Assert.Contains("layout raw text (prompt/completion)", r.Err);
        Assert.Contains($"request following on 200 held-out requests", r.Out);
        Assert.Matches(@"before fine-tuning: followed \d+/200 \(\d+\.\d%\)", r.Out);
        Assert.Matches(@"after fine-tuning: +followed \d+/200 \(\d+\.\d%\)", r.Out);
        Assert.Matches(@"questions about 200 held-out stories: before answered \d+/200 \(\d+\.\d%\) exactly, after answered \d+/200", r.Out);
        Assert.Contains("--- request: ", r.Out);
        Assert.Contains("--- question: ", r.Out);
        Assert.Equal(200, File.ReadAllLines(Path.Combine(run, "heldout.jsonl")).Length);
        Assert.True(File.Exists(Path.Combine(run, "instructions.jsonl")));
        Assert.True(File.Exists(Path.Combine(run, "checkpoint", "model.safetensors")));
        Assert.Contains("wrote 12 story preference pairs", r.Err);
        Assert.Contains("DPO (full, beta 0.1, reference: the chat model, + 1 x chosen NLL (RPO); lr 0.0001)", r.Err);
        Assert.Matches(@"before DPO: \d+/200 \(\d+\.\d%\); request following followed \d+/200", r.Out);
        Assert.Matches(@"after DPO: +\d+/200 \(\d+\.\d%\); request following followed \d+/200", r.Out);
        Assert.Equal(12, File.ReadAllLines(Path.Combine(run, "preferences.jsonl")).Length);
        Assert.True(File.Exists(Path.Combine(run, "dpo", "rewards.svg")));
        Assert.Equal(200, File.ReadAllLines(Path.Combine(run, "dpo", "heldout-replies.jsonl")).Length);
        string chat = Path.Combine(run, "dpo");
        Assert.True(File.Exists(Path.Combine(run, "chat", "tokenizer.json"))); // the merged model: a whole model folder
        Assert.True(File.Exists(Path.Combine(run, "chat", "model.safetensors")));
        using (var config = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "chat-lora", "checkpoint", "adapter_config.json"))))
        {
            Assert.Equal(32, config.RootElement.GetProperty("r").GetInt32());
            Assert.Equal(64, config.RootElement.GetProperty("lora_alpha").GetDouble());
            var targets = config.RootElement.GetProperty("target_modules").EnumerateArray().Select(e => e.GetString()).ToList();
            Assert.Contains("c_attn", targets); // all linear layers of gpt2: attention and MLP
            Assert.Contains("c_fc", targets);
        }
        Assert.Contains($"--adapter {Path.Combine(run, "chat-lora")}", r.Out);
        Assert.True(File.Exists(Path.Combine(chat, "checkpoint", "tokenizer.json")));
        Assert.Contains($"./quill chat --model {chat}", r.Out);

        // the chat model answers a typed request in the plain transcript layout (untrained here: only that it runs)
        var psi = CliProcess.StartInfo("chat", "--model", chat, "--temperature", "0", "--max-tokens", "5");
        using var p = System.Diagnostics.Process.Start(psi)!;
        p.StandardInput.WriteLine("Tell me a story about a fox named Ben who finds a shell.");
        p.StandardInput.Close();
        string err = p.StandardError.ReadToEnd();
        p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(60_000));
        Assert.True(p.ExitCode == 0, err);
        Assert.Contains("chat template plain", err);

        // the run is not overwritten
        var again = CliProcess.Run("quickstart", "--chat", "--out", run, "--max-steps", "2");
        Assert.Equal(1, again.Exit);
        Assert.Contains("already holds a trained model", again.Err);
    }

    [Fact]
    public void Plain_quickstart_separates_its_stories_with_the_end_of_text_token()
    {
        string run = Path.Combine(Directory.CreateTempSubdirectory("quill-quickstart").FullName, "run");
        var r = CliProcess.Run("quickstart", "--out", run, "--max-steps", "2");
        Assert.True(r.Exit == 0, r.Err);
        Assert.Contains("--- sample: \"Once upon a time\"", r.Out);
        var tok = Quill.Tokenization.TokenizerLoader.Load(Path.Combine(run, "checkpoint", "tokenizer.json"));
        Assert.True(tok.EosId >= 0);
        int stories = File.ReadAllLines(Path.Combine(run, "stories.jsonl")).Length;
        var manifest = Quill.Data.TokenManifest.Load(Path.Combine(run, "data"));
        Assert.Equal(tok.VocabSize, manifest.VocabSize);
        Assert.Equal("uint16", manifest.Dtype);
        long ends = 0;
        foreach (string shard in Directory.GetFiles(Path.Combine(run, "data"), "*.bin"))
        {
            byte[] bytes = File.ReadAllBytes(shard);
            for (int i = 0; i < bytes.Length; i += 2) if (BitConverter.ToUInt16(bytes, i) == tok.EosId) ends++;
        }
        Assert.True(stories > 4000, $"{stories} stories");
        Assert.Equal(stories, ends); // one end-of-text after every story
    }

    [Fact]
    public void Chat_with_own_data_is_refused_in_one_line()
    {
        var r = CliProcess.Run("quickstart", "--chat", "--data", "stories.txt", "--out", Path.Combine(Path.GetTempPath(), $"quill-qs-{Guid.NewGuid():N}"));
        Assert.Equal(1, r.Exit);
        string line = Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("--chat trains on the built-in stories", line);
        r = CliProcess.Run("quickstart", "--prefer", "--out", Path.Combine(Path.GetTempPath(), $"quill-qs-{Guid.NewGuid():N}"));
        Assert.Equal(1, r.Exit);
        Assert.Contains("--prefer tunes the chat model; use it with --chat.", Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        r = CliProcess.Run("quickstart", "--chat", "--prefer", "--rpo-alpha", "-1", "--out", Path.Combine(Path.GetTempPath(), $"quill-qs-{Guid.NewGuid():N}"));
        Assert.Equal(1, r.Exit);
        Assert.Contains("--rpo-alpha must be a finite number at least 0 (got -1).", Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
    }
}
