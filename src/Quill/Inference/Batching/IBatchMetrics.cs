// What a BatchScheduler reports while it runs: prompt and completion tokens, batched decode steps, time to first
// token and requests refused because the queue was full. The server's /metrics implements it; a library user may
// pass their own or none. Called from the scheduler's thread and from Submit's callers, so implementations must be
// thread-safe.
// Does not handle: storing or exposing the figures (that is the implementation's business).
namespace Quill.Inference.Batching;

/// <summary>Receives a scheduler's counters.</summary>
public interface IBatchMetrics
{
    /// <summary>n prompt tokens were prefilled.</summary>
    void AddPromptTokens(int n);

    /// <summary>n tokens were generated.</summary>
    void AddCompletionTokens(int n);

    /// <summary>A submission was refused because the queue was full.</summary>
    void CountRejected();

    /// <summary>One batched decode step advanced rows sequences.</summary>
    void CountDecodeStep(int rows);

    /// <summary>A job produced its first token t after it was submitted.</summary>
    void ObserveTimeToFirstToken(TimeSpan t);
}
