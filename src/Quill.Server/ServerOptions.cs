// Settings of a running server: where it listens, the API key, body and choice limits, and the feedback file.
// Model settings (--max-batch, --max-queue) belong to each ServedModel's scheduler.
namespace Quill.Server;

/// <summary>How the HTTP server runs.</summary>
public sealed record ServerOptions
{
    /// <summary>Address to bind: an IP ("127.0.0.1", "0.0.0.0", "::") or "localhost". Loopback by default.</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>TCP port; 0 picks a free one (see QuillServer.Address).</summary>
    public int Port { get; init; } = 8080;

    /// <summary>When set, every /v1 route needs "Authorization: Bearer KEY".</summary>
    public string? ApiKey { get; init; }

    /// <summary>Largest request body accepted (413 beyond).</summary>
    public long MaxBodyBytes { get; init; } = 4 << 20;

    /// <summary>JSONL file that thumbs up / down from the web chat are appended to; null turns feedback off.</summary>
    public string? FeedbackPath { get; init; }

    /// <summary>Validates values a user typed (port range, key shape).</summary>
    public void Validate()
    {
        if (Port is < 0 or > 65535) throw new InvalidConfigException($"--port {Port} is outside 0..65535.");
        if (MaxBodyBytes < 1024) throw new InvalidConfigException($"--max-body {MaxBodyBytes} is too small; allow at least 1024 bytes.");
        if (ApiKey is { } k && (k.Length == 0 || k.Any(char.IsWhiteSpace)))
            throw new InvalidConfigException("--api-key must be non-empty and contain no spaces.");
    }
}
