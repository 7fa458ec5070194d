// Raised by BatchScheduler.Submit when the waiting queue already holds MaxQueue (--max-queue) requests; the server
// answers 429 with a Retry-After header. Does not handle: waiting for room (the caller retries).
namespace Quill.Inference.Batching;

/// <summary>The scheduler's queue is full; try again later.</summary>
public sealed class QueueFullException : QuillException
{
    public QueueFullException(string message, int retryAfterSeconds) : base(message) => RetryAfterSeconds = retryAfterSeconds;

    public QueueFullException()
    {
    }

    public QueueFullException(string message) : base(message)
    {
    }

    public QueueFullException(string message, Exception inner) : base(message, inner)
    {
    }

    /// <summary>Seconds a client should wait before retrying.</summary>
    public int RetryAfterSeconds { get; } = 1;
}
