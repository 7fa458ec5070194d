// The exception a training run ends with when its cancellation token fires (Ctrl+C, a termination signal, a
// caller's token): which step it reached and where the completed steps were saved, so a front end can say so in one
// line and point at how to go on. It is an OperationCanceledException, so code that treats cancellation generically
// still does. Does not handle: resuming (Trainer with TrainOptions.Resume does).
namespace Quill.Training;

/// <summary>A training run stopped on request; <see cref="CheckpointDir"/> holds its completed steps when not null.</summary>
public sealed class TrainingStoppedException : OperationCanceledException
{
    public TrainingStoppedException()
        : this(0, 0, null, CancellationToken.None)
    {
    }

    public TrainingStoppedException(string message)
        : base(message)
    {
    }

    public TrainingStoppedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Stopped after `step` of `maxSteps` steps; checkpointDir is where they were saved (null: nothing new saved).</summary>
    public TrainingStoppedException(int step, int maxSteps, string? checkpointDir, CancellationToken token)
        : this(Describe(step, maxSteps, checkpointDir), step, maxSteps, checkpointDir, token)
    {
    }

    /// <summary>The steps completed when the run stopped (counting those of the run it resumed).</summary>
    public int Step { get; }

    /// <summary>The run's planned steps.</summary>
    public int MaxSteps { get; }

    /// <summary>The checkpoint the stop wrote, or null when no step of this invocation had completed (or several ranks ran).</summary>
    public string? CheckpointDir { get; }

    /// <summary>The same stop with `note` added to its message (e.g. how a front end resumes), its figures kept.</summary>
    public TrainingStoppedException WithNote(string note) =>
        new($"{Message}; {note}", Step, MaxSteps, CheckpointDir, CancellationToken);

    private TrainingStoppedException(string message, int step, int maxSteps, string? checkpointDir, CancellationToken token)
        : base(message, token)
    {
        Step = step;
        MaxSteps = maxSteps;
        CheckpointDir = checkpointDir;
    }

    private static string Describe(int step, int maxSteps, string? dir) => dir != null
        ? $"stopped at step {step} of {maxSteps}; the completed steps are saved in {dir}"
        : $"stopped at step {step} of {maxSteps}; nothing new was saved (the last checkpoint, if any, is as it was)";
}
