// IChatClient (Microsoft.Extensions.AI) over a served model, for .NET apps that want Quill without HTTP: the same
// scheduler, chat layout, sampler and stop handling as the server, so a seed gives the same reply in-process as
// over /v1/chat/completions. Maps ChatOptions (Temperature, TopP, TopK, MaxOutputTokens, Frequency/Presence
// penalties, Seed, StopSequences) onto a generation request; usage and finish reason come back as M.E.AI reports them.
// Does not handle: tools / function calls, images or other non-text content (text parts are joined).
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Microsoft.Extensions.AI;
using Quill.Inference;
using Quill.Inference.Batching;

namespace Quill.Server;

/// <summary>An in-process chat client over a Quill model.</summary>
public sealed class QuillChatClient : IChatClient
{
    private readonly ServedModel model;
    private readonly bool ownsModel;

    /// <param name="model">The model (may be one a QuillServer also serves: they share its batching).</param>
    /// <param name="ownsModel">Dispose the model with the client.</param>
    public QuillChatClient(ServedModel model, bool ownsModel = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        this.model = model;
        this.ownsModel = ownsModel;
    }

    /// <summary>Loads a model file or folder (as `quill serve --model`) into a client that owns it.</summary>
    public static QuillChatClient Load(string path, string? tokenizerPath = null, int contextLength = 0) =>
        new(ServedModel.Load(path, tokenizerPath, new SchedulerOptions(), contextLength), ownsModel: true);

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<Microsoft.Extensions.AI.ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var job = Submit(messages, options, cancellationToken);
        var (text, _, finish) = await job.CollectAsync(cancellationToken).ConfigureAwait(false);
        return new ChatResponse(new Microsoft.Extensions.AI.ChatMessage(ChatRole.Assistant, text))
        {
            ResponseId = NewId(),
            ModelId = model.Name,
            CreatedAt = DateTimeOffset.UtcNow,
            FinishReason = Finish(finish),
            Usage = Usage(job),
        };
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<Microsoft.Extensions.AI.ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var job = Submit(messages, options, cancellationToken);
        string id = NewId();
        await foreach (var e in job.Events.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            if (e.Text.Length > 0) yield return new ChatResponseUpdate(ChatRole.Assistant, e.Text) { ResponseId = id, ModelId = model.Name };
            if (e.Finish is { } f)
            {
                yield return new ChatResponseUpdate(ChatRole.Assistant, [new UsageContent(Usage(job))])
                {
                    ResponseId = id, ModelId = model.Name, FinishReason = Finish(f),
                };
            }
        }
    }

    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey != null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return new ChatClientMetadata("quill", null, model.Name);
        return serviceType.IsInstanceOfType(this) ? this : serviceType.IsInstanceOfType(model) ? model : null;
    }

    public void Dispose()
    {
        if (ownsModel) model.Dispose();
    }

    private GenerationJob Submit(IEnumerable<Microsoft.Extensions.AI.ChatMessage> messages, ChatOptions? options, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var turns = messages.Select(m => new ChatTurn(Role(m.Role), m.Text)).ToArray();
        var o = options ?? new ChatOptions();
        if (o.Tools is { Count: > 0 }) throw new QuillException("tools are not supported by Quill's chat client; leave ChatOptions.Tools empty.");
        var sampling = new SamplingOptions
        {
            Temperature = o.Temperature ?? 1f,
            TopP = o.TopP is float p ? Math.Max(p, float.Epsilon) : 1f,
            TopK = o.TopK ?? 0,
            FrequencyPenalty = o.FrequencyPenalty ?? 0,
            PresencePenalty = o.PresencePenalty ?? 0,
            Seed = o.Seed is long s ? unchecked((ulong)s) : BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8)),
            PenaltyWindow = 0,
        };
        sampling.Validate();
        var template = new GenerationRequest
        {
            Prompt = [],
            Sampling = sampling,
            MaxTokens = o.MaxOutputTokens ?? int.MaxValue,
            StopStrings = o.StopSequences?.ToArray() ?? [],
        };
        if (template.MaxTokens < 1) throw new InvalidConfigException($"MaxOutputTokens must be at least 1 (got {template.MaxTokens}).");
        return model.Scheduler.Submit([model.ForChat(turns, template)], cancel)[0];
    }

    private static string Role(ChatRole role) =>
        role == ChatRole.System ? "system" : role == ChatRole.Assistant ? "assistant" : role == ChatRole.User ? "user"
        : throw new QuillException($"chat role '{role}' is not supported; use system, user or assistant.");

    private static ChatFinishReason Finish(FinishReason f) => f == FinishReason.Length ? ChatFinishReason.Length : ChatFinishReason.Stop;

    private static UsageDetails Usage(GenerationJob job) => new()
    {
        InputTokenCount = job.PromptTokens,
        OutputTokenCount = job.CompletionTokens,
        TotalTokenCount = job.PromptTokens + job.CompletionTokens,
    };

    private static string NewId() => "chatcmpl-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
}
