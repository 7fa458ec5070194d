// What every request handler needs: the models by name, the options, the metrics and the feedback log.
namespace Quill.Server;

/// <summary>Shared state of one running server.</summary>
internal sealed class ServerContext(IReadOnlyDictionary<string, ServedModel> models, ServerOptions options, ServerMetrics metrics, FeedbackLog? feedback)
{
    public IReadOnlyDictionary<string, ServedModel> Models { get; } = models;

    public ServerOptions Options { get; } = options;

    public ServerMetrics Metrics { get; } = metrics;

    public FeedbackLog? Feedback { get; } = feedback;

    private volatile bool warmingUp;

    /// <summary>True while QuillServer.WarmUpAsync runs: /health answers 503 so a load balancer waits.</summary>
    public bool WarmingUp { get => warmingUp; set => warmingUp = value; }
}
