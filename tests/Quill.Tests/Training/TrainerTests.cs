// End-to-end training on a small prepared corpus: learning happens, metrics and plot are written, the guard skips
// bad updates, resume continues bit for bit, and a failed save never damages the previous checkpoint.
using Quill.Data;
using Quill.Models;
using Quill.Training;

namespace Quill.Tests.Training;

[Collection("checkpoint-hook")]
public class TrainerTests
{
    internal static string PrepareStories(int chars = 60_000)
    {
        string dir = Directory.CreateTempSubdirectory("quill-train").FullName;
        string input = Path.Combine(dir, "stories.txt");
        File.WriteAllText(input, StoryCorpus.Generate(chars, 3));
        DatasetPreparer.Prepare(new PrepareOptions([input], "char", Path.Combine(dir, "data")));
        return dir;
    }

    internal static RunConfig TinyRun(int steps) => new()
    {
        Model = new ModelConfig { Arch = "gpt2", VocabSize = 64, NLayer = 2, NHead = 2, NEmbd = 32, BlockSize = 32 },
        Train = new TrainConfig { BatchSize = 4, MaxSteps = steps, LearningRate = 3e-3f, WarmupSteps = 5, EvalEvery = 10, EvalBatches = 2, CheckpointEvery = 5, TokensPerStep = 256 },
    };

    [Fact]
    public void Training_lowers_the_loss_and_writes_checkpoint_metrics_and_plot()
    {
        string dir = PrepareStories();
        string run = Path.Combine(dir, "run");
        using var trainer = new Trainer(TinyRun(40), new TrainOptions(Path.Combine(dir, "data"), run));
        Assert.Equal(2, trainer.MicroBatchesPerStep);
        var reports = new List<TrainProgress>();
        var result = trainer.Run(new Progress(reports.Add));
        Assert.Equal(40, result.Steps);
        Assert.True(reports[^1].Loss < reports[0].Loss - 1.0, $"loss {reports[0].Loss} -> {reports[^1].Loss}");
        Assert.NotNull(result.ValLoss);
        Assert.Equal(40, File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Length);
        Assert.Contains("<polyline", File.ReadAllText(Path.Combine(run, "loss.svg")));
        var model = Checkpoint.LoadModel(run, out var cfg);
        Assert.Equal(40, cfg.Train.MaxSteps);
        Assert.Equal(trainer.Model.Parameters[3].Span.ToArray(), model.Parameters[3].Span.ToArray());
        // a second run into the same folder must not silently overwrite it
        using var again = new Trainer(TinyRun(40), new TrainOptions(Path.Combine(dir, "data"), run));
        Assert.Throws<QuillException>(() => again.Run());
    }

    [Fact]
    public void Resume_continues_bit_for_bit()
    {
        string dir = PrepareStories();
        string data = Path.Combine(dir, "data");
        using (var full = new Trainer(TinyRun(12), new TrainOptions(data, Path.Combine(dir, "full")))) full.Run();
        using (var first = new Trainer(TinyRun(12), new TrainOptions(data, Path.Combine(dir, "split"), StopAfterSteps: 7))) first.Run();
        using (var second = new Trainer(TinyRun(12), new TrainOptions(data, Path.Combine(dir, "split"), Resume: true))) second.Run();
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "full", "checkpoint", "model.safetensors")),
            File.ReadAllBytes(Path.Combine(dir, "split", "checkpoint", "model.safetensors")));
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "full", "checkpoint", "optimizer.safetensors")),
            File.ReadAllBytes(Path.Combine(dir, "split", "checkpoint", "optimizer.safetensors")));
        Assert.Equal(12, File.ReadAllLines(Path.Combine(dir, "split", "metrics.jsonl")).Length);
    }

    [Fact]
    public void A_stop_saves_the_completed_steps_says_where_and_resumes_bit_for_bit()
    {
        string dir = PrepareStories(20_000);
        string data = Path.Combine(dir, "data"), run = Path.Combine(dir, "stopped");
        using (var full = new Trainer(TinyRun(12), new TrainOptions(data, Path.Combine(dir, "full")))) full.Run();
        using var cts = new CancellationTokenSource();
        TrainingStoppedException stop;
        using (var first = new Trainer(TinyRun(12), new TrainOptions(data, run)))
            stop = Assert.Throws<TrainingStoppedException>(() => first.Run(new Progress(p => { if (p.Step == 7) cts.Cancel(); }), cts.Token));
        Assert.Equal(7, stop.Step);
        Assert.Equal(12, stop.MaxSteps);
        Assert.Equal(Path.Combine(run, "checkpoint"), stop.CheckpointDir);
        Assert.Equal($"stopped at step 7 of 12; the completed steps are saved in {Path.Combine(run, "checkpoint")}", stop.Message);
        Assert.Equal(7, Checkpoint.LoadState(Path.Combine(run, "checkpoint")).Step);
        var noted = stop.WithNote("resume it");
        Assert.Equal(stop.Message + "; resume it", noted.Message);
        Assert.Equal((7, 12, stop.CheckpointDir), (noted.Step, noted.MaxSteps, noted.CheckpointDir));
        // the step the stop saved (not the periodic one at 5) is where the resumed run starts
        using (var second = new Trainer(TinyRun(12), new TrainOptions(data, run, Resume: true))) second.Run();
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "full", "checkpoint", "model.safetensors")),
            File.ReadAllBytes(Path.Combine(run, "checkpoint", "model.safetensors")));
        Assert.Equal(12, File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Length);
    }

    [Fact]
    public void A_stop_before_any_step_saves_nothing_and_says_so()
    {
        string dir = PrepareStories(20_000);
        string run = Path.Combine(dir, "run");
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        using var trainer = new Trainer(TinyRun(12), new TrainOptions(Path.Combine(dir, "data"), run));
        var stop = Assert.Throws<TrainingStoppedException>(() => trainer.Run(null, cts.Token));
        Assert.Equal(0, stop.Step);
        Assert.Null(stop.CheckpointDir);
        Assert.Contains("nothing new was saved", stop.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(run, "checkpoint")));
    }

    [Fact]
    public void Non_finite_updates_are_skipped_and_reported()
    {
        string dir = PrepareStories(20_000);
        using var trainer = new Trainer(TinyRun(3), new TrainOptions(Path.Combine(dir, "data"), Path.Combine(dir, "run")));
        trainer.Model.Parameters[0].Span[5] = float.NaN;
        var before = trainer.Model.Parameters[2].Span.ToArray();
        var reports = new List<TrainProgress>();
        var result = trainer.Run(new Progress(reports.Add));
        Assert.Equal(3, result.SkippedUpdates);
        Assert.All(reports, r => Assert.Contains("skipped update", r.Message));
        Assert.Equal(before, trainer.Model.Parameters[2].Span.ToArray());
    }

    [Fact]
    public void A_failed_save_leaves_the_previous_checkpoint_intact()
    {
        string dir = PrepareStories(20_000);
        string run = Path.Combine(dir, "run");
        using (var t = new Trainer(TinyRun(5), new TrainOptions(Path.Combine(dir, "data"), run))) t.Run();
        string model = Path.Combine(run, "checkpoint", "model.safetensors");
        byte[] good = File.ReadAllBytes(model);
        try
        {
            Checkpoint.BeforeWrite = name => { if (name == Checkpoint.OptimizerFile) throw new IOException("No space left on device"); };
            using var t2 = new Trainer(TinyRun(10), new TrainOptions(Path.Combine(dir, "data"), run, Resume: true));
            var e = Assert.Throws<QuillException>(() => t2.Run());
            Assert.Contains("No space left on device", e.Message);
            Assert.Contains("previous checkpoint is intact", e.Message);
        }
        finally
        {
            Checkpoint.BeforeWrite = null;
        }
        Assert.Equal(good, File.ReadAllBytes(model));
        Assert.False(Directory.Exists(Path.Combine(run, "checkpoint.tmp")));
        Assert.Equal(5, Checkpoint.LoadState(Path.Combine(run, "checkpoint")).Step);
    }

    [Fact]
    public void Mismatched_or_broken_checkpoints_are_refused_with_the_file_named()
    {
        string dir = PrepareStories(20_000);
        string run = Path.Combine(dir, "run");
        using (var t = new Trainer(TinyRun(2), new TrainOptions(Path.Combine(dir, "data"), run))) t.Run();
        var other = TinyRun(2);
        other.Model.NEmbd = 64;
        using (var t = new Trainer(other, new TrainOptions(Path.Combine(dir, "data"), run, Resume: true)))
            Assert.Throws<InvalidConfigException>(() => t.Run());
        string model = Path.Combine(run, "checkpoint", "model.safetensors");
        File.WriteAllBytes(model, [1, 2, 3]);
        var e = Assert.ThrowsAny<QuillException>(() => Checkpoint.LoadModel(run, out _));
        Assert.Contains("model.safetensors", e.Message);
        Assert.Throws<InvalidFileException>(() => Checkpoint.LoadModel(Path.Combine(dir, "nothing-here"), out _));
    }

    internal sealed class Progress(Action<TrainProgress> f) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => f(value);
    }
}

[CollectionDefinition("checkpoint-hook", DisableParallelization = true)]
public sealed class CheckpointHookCollection;
