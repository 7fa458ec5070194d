// Settings of a running server: where it listens, the API key and who else may reach it (Host names, browser
// origins, CORS, public metrics), body and choice limits, and the feedback file with its size cap.
// Model settings (--max-batch, --max-queue) belong to each ServedModel's scheduler.
using System.Net;

namespace Quill.Server;

/// <summary>How the HTTP server runs.</summary>
public sealed record ServerOptions
{
    /// <summary>Address to bind: an IP ("127.0.0.1", "0.0.0.0", "::") or "localhost". Loopback by default.</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>TCP port; 0 picks a free one (see QuillServer.Address).</summary>
    public int Port { get; init; } = 8080;

    /// <summary>When set, every /v1 route (and /metrics unless MetricsPublic) needs "Authorization: Bearer KEY".</summary>
    public string? ApiKey { get; init; }

    /// <summary>Serve /metrics without the key even when ApiKey is set (for a scraper on a trusted network).</summary>
    public bool MetricsPublic { get; init; }

    /// <summary>
    /// Host header names accepted besides localhost, 127.0.0.1, [::1] and the bound address. The Host check runs when
    /// the server is bound to loopback (it stops DNS rebinding) or when this list is not empty.
    /// </summary>
    public IReadOnlyList<string> AllowedHosts { get; init; } = [];

    /// <summary>
    /// Browser origins ("https://app.example.com", or "*" for any) allowed to call the API cross-site: they get CORS
    /// headers and pass the Origin check. Empty: CORS off, and only the server's own pages may send an Origin.
    /// </summary>
    public IReadOnlyList<string> CorsOrigins { get; init; } = [];

    /// <summary>Largest request body accepted (413 beyond).</summary>
    public long MaxBodyBytes { get; init; } = 4 << 20;

    /// <summary>JSONL file that thumbs up / down from the web chat are appended to; null turns feedback off.</summary>
    public string? FeedbackPath { get; init; }

    /// <summary>Size at which the feedback file is rotated to FILE.1 (replacing an older FILE.1).</summary>
    public long FeedbackMaxFileBytes { get; init; } = 10L << 20;

    /// <summary>True when Host names a loopback address ("localhost", 127.x.x.x, ::1).</summary>
    public bool IsLoopback => Host == "localhost" || (IPAddress.TryParse(Host, out var ip) && IPAddress.IsLoopback(ip));

    /// <summary>Validates values a user typed (port range, key shape, origins and host names).</summary>
    public void Validate()
    {
        if (Port is < 0 or > 65535) throw new InvalidConfigException($"--port {Port} is outside 0..65535.");
        if (MaxBodyBytes < 1024) throw new InvalidConfigException($"--max-body {MaxBodyBytes} is too small; allow at least 1024 bytes.");
        if (ApiKey is { } k && (k.Length == 0 || k.Any(c => char.IsWhiteSpace(c) || c < 0x21 || c > 0x7E)))
            throw new InvalidConfigException("--api-key must be non-empty printable ASCII without spaces.");
        if (FeedbackMaxFileBytes < 4096) throw new InvalidConfigException($"the feedback file cap {FeedbackMaxFileBytes} is too small; allow at least 4096 bytes.");
        foreach (string o in CorsOrigins)
        {
            if (o != "*" && !(Uri.TryCreate(o, UriKind.Absolute, out var u) && (u.Scheme == "http" || u.Scheme == "https") && u.PathAndQuery == "/" && !o.EndsWith('/')))
                throw new InvalidConfigException($"--cors-origin {o} is not an origin; write it as scheme://host[:port] (e.g. https://app.example.com) or *.");
        }
        foreach (string h in AllowedHosts)
        {
            if (h.Length == 0 || Uri.CheckHostName(h.Trim('[', ']')) == UriHostNameType.Unknown)
                throw new InvalidConfigException($"--allowed-host '{h}' is not a host name; write it without scheme or port (e.g. my-box.lan).");
        }
    }
}
