// The preference loop through the API (issue 12): a Quill checkpoint is served, its greedy reply to a request is
// rated down through POST /v1/feedback and a regenerated reply rated up in the same conversation; `quill feedback
// export`'s pairing (FeedbackPairs, the plain transcript the checkpoint is served with) turns the two ratings into a
// pair, 20 DPO steps (PreferenceTuner) train on it, and the trained checkpoint, served again, answers the same
// request differently: the rated-down reply is no longer its greedy answer.
using System.Text.Json;
using Quill.Autograd.Ops;
using Quill.Data.Sft;
using Quill.Inference;
using Quill.Inference.Batching;
using Quill.Models;
using Quill.Server.Tests.Support;
using Quill.Training;

namespace Quill.Server.Tests;

public sealed class PreferenceLoopTests : IDisposable
{
    private const string Request = "Tell me a story.";
    private const string Liked = "The end.";
    private readonly string dir = Directory.CreateTempSubdirectory("quill-pref-loop-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static async Task<string> Greedy(TestServer server, string model)
    {
        string body = JsonSerializer.Serialize(new { model, messages = new[] { new { role = "user", content = Request } }, temperature = 0, max_tokens = 24 });
        var (status, json, _) = await Http.PostAsync(server.Http, "v1/chat/completions", body);
        Assert.Equal(200, status);
        return json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
    }

    private static async Task Rate(TestServer server, string model, string rating, string reply)
    {
        string body = JsonSerializer.Serialize(new { model, rating, conversation = "conv-1", prompt = new[] { new { role = "user", content = Request } }, reply });
        var (status, _, _) = await Http.PostAsync(server.Http, "v1/feedback", body);
        Assert.Equal(200, status);
    }

    [Fact]
    public async Task Feedback_posted_exported_and_20_dpo_steps_change_the_served_model()
    {
        string baseRun = Path.Combine(dir, "base"), tuned = Path.Combine(dir, "tuned");
        string feedback = Path.Combine(dir, "feedback.jsonl"), pairs = Path.Combine(dir, "pairs.jsonl");
        TinyModels.SaveCheckpoint(baseRun);

        string before;
        await using (var server = await TestServer.StartAsync(new ServerOptions { FeedbackPath = feedback }, ServedModel.Load(baseRun, null, new SchedulerOptions(4, 16))))
        {
            before = await Greedy(server, "base");
            Assert.NotEqual(Liked, before);
            await Rate(server, "base", "down", before);
            await Rate(server, "base", "up", Liked); // the regeneration the user preferred
        }

        var report = FeedbackPairs.Export([feedback], pairs, null, FeedbackLayout.Plain);
        Assert.Equal(1, report.Pairs);

        using (var open = ModelLoader.Load(baseRun))
        {
            var start = new FinetuneBase(LanguageModel.FromWeights(open.Weights), open.Tokenizer!, null, open.AddBos, open.ExtraStopIds);
            var cfg = new RunConfig { Train = new TrainConfig { BatchSize = 1, SeqLen = 96, MaxSteps = 20, LearningRate = 3e-3f, WarmupSteps = 0, EvalEvery = 0, CheckpointEvery = 0 } };
            using var tuner = new PreferenceTuner(start, cfg, new FinetuneOptions(pairs, tuned) { ValFraction = 0 }, new PreferenceSettings(PreferenceLoss.Dpo, 0.1));
            Assert.Equal(SftDataset.RawLayout, tuner.Data.Report.Layout);
            var result = tuner.Run();
            Assert.Equal(20, result.Steps);
            Assert.Equal(1, tuner.Trainer.LastStats.Correct);
            Assert.True(result.LastLoss < 0.3f, $"DPO loss after 20 steps: {result.LastLoss}");
        }

        await using (var server = await TestServer.StartAsync(new ServerOptions(), ServedModel.Load(tuned, null, new SchedulerOptions(4, 16))))
        {
            string after = await Greedy(server, "tuned");
            Assert.NotEqual(before, after);
            Assert.False(after.StartsWith(before, StringComparison.Ordinal), $"the rated-down reply '{before}' is still the greedy answer ('{after}')");
        }
    }
}
