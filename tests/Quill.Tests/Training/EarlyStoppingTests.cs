// Early stopping (train.early_stopping_patience / _threshold): the run stops exactly where the rule applied to its own
// logged validation losses says, keeps the weights of the best evaluation in OUT/best (byte for byte a plain run's
// checkpoint at that step), resumes counting where it left off (split == straight), and refuses settings it cannot
// follow in one line.
using System.Text.Json;
using Quill.Training;

namespace Quill.Tests.Training;

[Collection("checkpoint-hook")]
public class EarlyStoppingTests
{
    private static RunConfig Run(int steps, int patience, float threshold)
    {
        var cfg = TrainerTests.TinyRun(steps);
        cfg.Train.EvalEvery = 2;
        cfg.Train.CheckpointEvery = 0;
        cfg.Train.EarlyStoppingPatience = patience;
        cfg.Train.EarlyStoppingThreshold = threshold;
        return cfg;
    }

    /// <summary>(step, val loss) of every evaluation in a run's metrics.jsonl.</summary>
    private static List<(int Step, double Val)> Evaluations(string run) =>
    [
        .. File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.TryGetProperty("val_loss", out var v) && v.ValueKind == JsonValueKind.Number)
            .Select(e => (e.GetProperty("step").GetInt32(), e.GetProperty("val_loss").GetDouble())),
    ];

    [Fact]
    public void A_run_with_no_improvement_stops_after_patience_evaluations_and_keeps_the_best_weights()
    {
        string dir = TrainerTests.PrepareStories();
        string data = Path.Combine(dir, "data"), run = Path.Combine(dir, "run");
        // a threshold no fall of the loss can pass: the first evaluation (step 2) stays the best, and the third after it stops the run
        var reports = new List<TrainProgress>();
        TrainResult result;
        using (var trainer = new Trainer(Run(40, 3, 1e6f), new TrainOptions(data, run)))
        {
            result = trainer.Run(new TrainerTests.Progress(reports.Add));
            Assert.True(trainer.StoppedEarly);
        }
        Assert.Equal(8, result.Steps);
        Assert.Contains(reports, r => r.Message != null && r.Message.Contains("early stop: the validation loss has not improved for 3 evaluation(s); best", StringComparison.Ordinal)
            && r.Message.Contains("at step 2,", StringComparison.Ordinal));
        Assert.Equal(8, File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Length);
        Assert.NotNull(Checkpoint.Locate(run)); // the last weights too, so nothing is lost
        // OUT/best holds the step-2 weights: byte for byte what a 2-step run of the same plan saves
        using (var two = new Trainer(Run(40, 0, 0), new TrainOptions(data, Path.Combine(dir, "two"), StopAfterSteps: 2))) two.Run();
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "two", "checkpoint", "model.safetensors")),
            File.ReadAllBytes(Path.Combine(run, Trainer.BestFolder, "checkpoint", "model.safetensors")));
        Assert.False(File.Exists(Path.Combine(run, Trainer.BestFolder, "checkpoint", "optimizer.safetensors")));
        var best = Checkpoint.LoadModel(Path.Combine(run, Trainer.BestFolder), out _);
        Assert.Equal(2, JsonDocument.Parse(File.ReadAllText(Path.Combine(run, Trainer.BestFolder, "checkpoint", "state.json"))).RootElement.GetProperty("best_step").GetInt32());
        Assert.NotNull(best);
    }

    [Fact]
    public void The_stop_agrees_with_the_rule_replayed_on_the_logged_validation_losses()
    {
        string dir = TrainerTests.PrepareStories();
        string run = Path.Combine(dir, "run");
        const int patience = 2;
        const float threshold = 0.02f;
        TrainResult result;
        using (var trainer = new Trainer(Run(60, patience, threshold), new TrainOptions(Path.Combine(dir, "data"), run))) result = trainer.Run();
        // replay: the first evaluation is the best; a later one improves when it is below best - threshold
        double bestVal = double.PositiveInfinity;
        int since = 0, expectedStop = 60, bestStep = 0;
        foreach (var (step, val) in Evaluations(run))
        {
            if (val < bestVal - threshold) (bestVal, since, bestStep) = ((float)val, 0, step);
            else if (++since >= patience) { expectedStop = step; break; }
        }
        Assert.Equal(expectedStop, result.Steps);
        Assert.True(expectedStop < 60, "this seed's run plateaus before its last step, so the stop is exercised");
        Assert.True(bestStep > 0);
        Assert.Equal(bestStep, JsonDocument.Parse(File.ReadAllText(Path.Combine(run, Trainer.BestFolder, "checkpoint", "state.json"))).RootElement.GetProperty("best_step").GetInt32());
    }

    [Fact]
    public void A_resumed_run_counts_on_and_stops_where_a_straight_run_does()
    {
        string dir = TrainerTests.PrepareStories();
        string data = Path.Combine(dir, "data");
        TrainResult straight, split;
        using (var t = new Trainer(Run(40, 3, 1e6f), new TrainOptions(data, Path.Combine(dir, "straight")))) straight = t.Run();
        using (var t = new Trainer(Run(40, 3, 1e6f), new TrainOptions(data, Path.Combine(dir, "split"), StopAfterSteps: 5))) t.Run();
        using (var t = new Trainer(Run(40, 3, 1e6f), new TrainOptions(data, Path.Combine(dir, "split"), Resume: true))) split = t.Run();
        Assert.Equal(8, straight.Steps);
        Assert.Equal(straight.Steps, split.Steps);
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "straight", "checkpoint", "model.safetensors")),
            File.ReadAllBytes(Path.Combine(dir, "split", "checkpoint", "model.safetensors")));
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "straight", "best", "checkpoint", "model.safetensors")),
            File.ReadAllBytes(Path.Combine(dir, "split", "best", "checkpoint", "model.safetensors")));
    }

    [Fact]
    public void Settings_it_cannot_follow_are_one_line_errors()
    {
        var bad = Run(10, -1, 0);
        Assert.Contains("early_stopping_patience must not be negative", Assert.Throws<InvalidConfigException>(() => bad.Train.Validate(32)).Message);
        bad = Run(10, 2, float.NaN);
        Assert.Contains("early_stopping_threshold must be a finite number", Assert.Throws<InvalidConfigException>(() => bad.Train.Validate(32)).Message);
        // no validation split to watch
        string dir = Directory.CreateTempSubdirectory("quill-es").FullName;
        string input = Path.Combine(dir, "stories.txt");
        File.WriteAllText(input, Quill.Data.StoryCorpus.Generate(20_000, 3));
        Quill.Data.DatasetPreparer.Prepare(new Quill.Data.PrepareOptions([input], "char", Path.Combine(dir, "data"), 0));
        Assert.Contains("early stopping watches the validation loss",
            Assert.Throws<InvalidConfigException>(() => new Trainer(Run(10, 2, 0), new TrainOptions(Path.Combine(dir, "data"), Path.Combine(dir, "run")))).Message);
    }
}
