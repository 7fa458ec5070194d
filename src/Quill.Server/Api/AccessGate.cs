// The checks every request passes before routing. Host: a server bound to loopback (or given --allowed-host)
// answers only to localhost, 127.0.0.1, [::1], its bound address and the allowed names, so a web page whose own
// name was re-pointed at 127.0.0.1 (DNS rebinding) cannot reach it. Origin: a browser request that names an Origin
// must come from the server's own pages or a --cors-origin, so another site cannot post to the API from a visitor's
// browser (a form post needs no CORS preflight). Both answer 403. Last, runs of slashes in the path are merged
// ("//v1//models" -> "/v1/models") so that routing, and with it the route's authorization, sees one spelling.
// Does not handle: authentication (ApiKeyAuthentication, on route metadata), CORS headers (the CORS middleware).
using Microsoft.AspNetCore.Http;

namespace Quill.Server.Api;

/// <summary>Host and Origin checks and path slash merging.</summary>
internal sealed class AccessGate
{
    private readonly HashSet<string>? hosts;
    private readonly HashSet<string> origins;
    private readonly bool anyOrigin;

    public AccessGate(ServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.IsLoopback || options.AllowedHosts.Count > 0)
        {
            hosts = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "localhost", "127.0.0.1", "[::1]", Bracketed(options.Host) };
            foreach (string h in options.AllowedHosts) hosts.Add(Bracketed(h));
        }
        anyOrigin = options.CorsOrigins.Contains("*");
        origins = new HashSet<string>(options.CorsOrigins.Where(o => o != "*"), StringComparer.OrdinalIgnoreCase);
    }

    private static string Bracketed(string host) => host.Contains(':', StringComparison.Ordinal) && !host.StartsWith('[') ? $"[{host}]" : host;

    /// <summary>Throws a 403 ApiException for a Host or Origin this server does not answer; merges slashes.</summary>
    public void Check(HttpContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        var request = ctx.Request;
        string host = request.Host.Host;
        if (hosts != null && !hosts.Contains(host))
        {
            throw new ApiException(403, $"Host '{Shown(request.Host.Value)}' is not allowed on this server; use http://localhost or http://127.0.0.1, or start it with --allowed-host NAME.",
                "permission_error", code: "host_not_allowed");
        }
        string origin = request.Headers.Origin.ToString();
        if (origin.Length > 0 && !anyOrigin && !origins.Contains(origin) && !SameOrigin(origin, request))
        {
            throw new ApiException(403, $"Origin '{Shown(origin)}' may not call this server; start it with --cors-origin {Shown(origin)} to allow that site.",
                "permission_error", code: "origin_not_allowed");
        }
        string path = request.Path.Value ?? "";
        if (path.Contains("//", StringComparison.Ordinal)) request.Path = new PathString(MergeSlashes(path));
    }

    /// <summary>True when origin is this server itself as the browser reached it (scheme and Host of the request).</summary>
    private static bool SameOrigin(string origin, HttpRequest request) =>
        Uri.TryCreate(origin, UriKind.Absolute, out var o) && o.Scheme == request.Scheme
        && string.Equals(o.IsDefaultPort ? o.Host : $"{o.Host}:{o.Port}", request.Host.Value, StringComparison.OrdinalIgnoreCase)
        && o.AbsolutePath == "/";

    private static string MergeSlashes(string path)
    {
        var sb = new System.Text.StringBuilder(path.Length);
        foreach (char c in path)
        {
            if (c != '/' || sb.Length == 0 || sb[^1] != '/') sb.Append(c);
        }
        return sb.ToString();
    }

    /// <summary>A header value for an error message: at most 100 printable ASCII characters.</summary>
    private static string Shown(string? value)
    {
        string v = new((value ?? "").Where(c => c is >= ' ' and <= '~').Take(100).ToArray());
        return v;
    }
}
