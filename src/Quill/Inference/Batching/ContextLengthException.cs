// Raised when a prompt leaves no room for a reply in the model's context (BatchScheduler.Submit, the server's
// request building). Field names what is too long (messages or prompt), which the server reports as OpenAI's
// "context_length_exceeded". Does not handle: trimming the prompt to fit.
namespace Quill.Inference.Batching;

/// <summary>The prompt is as long as the context or longer.</summary>
public sealed class ContextLengthException : QuillException
{
    public ContextLengthException(string message, string field) : base(message) => Field = field;

    public ContextLengthException()
    {
    }

    public ContextLengthException(string message) : base(message)
    {
    }

    public ContextLengthException(string message, Exception inner) : base(message, inner)
    {
    }

    /// <summary>The request field that is too long.</summary>
    public string Field { get; } = "messages";
}
