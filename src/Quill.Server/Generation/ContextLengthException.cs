// Raised when a prompt leaves no room for a reply in the model's context: the API answers 400 with OpenAI's code
// "context_length_exceeded" and names the field (messages or prompt).
namespace Quill.Server.Generation;

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
