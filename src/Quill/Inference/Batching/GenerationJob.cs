// One sequence in flight: the request, the channel its pieces of text flow out on, and the counts a caller reports
// (usage, finish reason). The scheduler's thread writes; the submitter reads. A job's cancellation token (for the
// server, the client's connection) is checked before every step, so a caller that leaves frees its slot at once.
// Does not handle: more than one reader of the events.
using System.Threading.Channels;

namespace Quill.Inference.Batching;

/// <summary>What a job emits: a piece of text (possibly empty) with its token's logprob, or the end.</summary>
/// <param name="Text">Text to append (already safe: whole characters, stop strings removed).</param>
/// <param name="Logprob">The generated token's logprob when the request asked for them.</param>
/// <param name="Finish">Set on the last event only.</param>
public readonly record struct GenerationEvent(string Text, TokenChoice? Logprob, FinishReason? Finish);

/// <summary>A submitted sequence and its output stream.</summary>
public sealed class GenerationJob
{
    private readonly Channel<GenerationEvent> channel = Channel.CreateUnbounded<GenerationEvent>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });

    internal GenerationJob(GenerationRequest request, CancellationToken cancel)
    {
        Request = request;
        Cancel = cancel;
        Submitted = DateTime.UtcNow;
    }

    public GenerationRequest Request { get; }

    public CancellationToken Cancel { get; }

    /// <summary>Events in order; the stream ends after the event that carries Finish, or faults on an error.</summary>
    public ChannelReader<GenerationEvent> Events => channel.Reader;

    public int PromptTokens => Request.Prompt.Length;

    /// <summary>Tokens generated so far (including a stop token).</summary>
    public int CompletionTokens { get; internal set; }

    public FinishReason? Finish { get; private set; }

    internal DateTime Submitted { get; }

    internal DateTime? FirstToken { get; set; }

    internal CancellationTokenRegistration Registration { get; set; }

    /// <summary>Reads every event and returns the whole text, logprobs and finish reason.</summary>
    public async Task<(string Text, List<TokenChoice> Logprobs, FinishReason Finish)> CollectAsync(CancellationToken cancel = default)
    {
        var text = new System.Text.StringBuilder();
        var lps = new List<TokenChoice>();
        FinishReason finish = FinishReason.Cancelled;
        await foreach (var e in Events.ReadAllAsync(cancel).ConfigureAwait(false))
        {
            text.Append(e.Text);
            if (e.Logprob != null) lps.Add(e.Logprob);
            if (e.Finish is { } f) finish = f;
        }
        return (text.ToString(), lps, finish);
    }

    internal void Emit(string text, TokenChoice? logprob) => channel.Writer.TryWrite(new GenerationEvent(text, logprob, null));

    internal void Complete(string text, FinishReason reason)
    {
        Finish = reason;
        channel.Writer.TryWrite(new GenerationEvent(text, null, reason));
        channel.Writer.TryComplete();
        Registration.Dispose();
    }

    internal void Fail(Exception error)
    {
        channel.Writer.TryComplete(error);
        Registration.Dispose();
    }
}
