// The error a sampler raises when a model hands it logits it cannot draw from: a NaN or +Infinity (from NaN / Inf
// weights in a corrupt file, or activations that overflowed), or a row where every token is -Infinity. It ends
// only the sequence whose logits they were: the batch scheduler fails that one job, the CLI prints one line.
// Does not handle: finding which weight is at fault (the model loaders' checks do that where they can).
namespace Quill.Inference;

/// <summary>A row of logits held NaN or +Infinity, or only -Infinity; the sequence cannot go on.</summary>
public sealed class NonFiniteLogitsException : QuillException
{
    public NonFiniteLogitsException() { }

    public NonFiniteLogitsException(string message) : base(message) { }

    public NonFiniteLogitsException(string message, Exception innerException) : base(message, innerException) { }
}
