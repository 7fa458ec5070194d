// A loopback server speaking the part of the Hugging Face hub's HTTP layout `quill pull` uses: the model-info API
// (/api/models/ORG/REPO/revision/REV?blobs=true: commit sha and siblings with size, git blob id and LFS sha256),
// /ORG/REPO/resolve/COMMIT/PATH (small files inline with an ETag; LFS files by a 302 to a storage host path with
// X-Linked-Etag, as the real hub does; the storage host is the same server under the name localhost), Range requests, gated repos (401 without the right Bearer token), and
// faults for the tests: a response that breaks off after N bytes, corrupted content.
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Quill.Tests.Support;

namespace Quill.Tests.Hub;

internal sealed class FakeHub : IDisposable
{
    private readonly LoopbackHttp http;

    public sealed record Repo(string Commit, Dictionary<string, byte[]> Files, bool Gated = false);

    public FakeHub() => http = new LoopbackHttp(Handle, alsoLocalhost: true);

    public string BaseUrl => http.BaseUrl;

    /// <summary>The storage host a download is redirected to: the same server under the name localhost.</summary>
    public string StorageUrl => http.LocalhostUrl;

    public Dictionary<string, Repo> Repos { get; } = new(StringComparer.Ordinal);

    public string? Token { get; set; }

    /// <summary>The next file response stops after this many bytes (then the setting resets).</summary>
    public long BreakAfter { get; set; } = -1;

    /// <summary>Serve every file body with its first byte flipped.</summary>
    public bool Corrupt { get; set; }

    public List<(string Path, string? Range, string? Authorization)> Requests { get; } = [];

    public static bool IsLfs(string path) => path.EndsWith(".gguf", StringComparison.Ordinal) || path.EndsWith(".safetensors", StringComparison.Ordinal);

    public static string Sha256(byte[] b) => Convert.ToHexStringLower(SHA256.HashData(b));

    public static string GitOid(byte[] b) => Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {b.Length}\0"), .. b]));

    private void Handle(HttpListenerContext ctx)
    {
        var req = ctx.Request;
        string path = Uri.UnescapeDataString(req.Url!.AbsolutePath);
        string? auth = req.Headers["Authorization"];
        lock (Requests) Requests.Add((path, req.Headers["Range"], auth));
        var res = ctx.Response;
        if (path.StartsWith("/api/models/", StringComparison.Ordinal))
        {
            // /api/models/ORG/REPO/revision/REV
            var parts = path["/api/models/".Length..].Split('/');
            if (parts.Length != 4 || !Repos.TryGetValue(parts[0] + "/" + parts[1], out var repo)) { End(res, 404); return; }
            if (!Allowed(repo, auth)) { End(res, 401); return; }
            var siblings = repo.Files.Select(f => IsLfs(f.Key)
                ? (object)new { rfilename = f.Key, size = f.Value.Length, blobId = GitOid(Encoding.ASCII.GetBytes("pointer " + f.Key)), lfs = new { sha256 = Sha256(f.Value), size = f.Value.Length, pointerSize = 134 } }
                : new { rfilename = f.Key, size = f.Value.Length, blobId = GitOid(f.Value) });
            Send(res, 200, Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { id = parts[0] + "/" + parts[1], sha = repo.Commit, siblings })), null);
            return;
        }
        if (path.StartsWith("/cdn/", StringComparison.Ordinal))
        {
            // storage host: /cdn/ORG/REPO/PATH, no auth needed
            var parts = path["/cdn/".Length..].Split('/', 3);
            if (parts.Length != 3 || !Repos.TryGetValue(parts[0] + "/" + parts[1], out var repo) || !repo.Files.TryGetValue(parts[2], out var body)) { End(res, 404); return; }
            SendFile(ctx, body);
            return;
        }
        {
            // /ORG/REPO/resolve/COMMIT/PATH
            var parts = path.TrimStart('/').Split('/', 5);
            if (parts.Length != 5 || parts[2] != "resolve" || !Repos.TryGetValue(parts[0] + "/" + parts[1], out var repo) || !repo.Files.TryGetValue(parts[4], out var body)) { End(res, 404); return; }
            if (!Allowed(repo, auth)) { End(res, 401); return; }
            res.Headers["X-Repo-Commit"] = repo.Commit;
            if (IsLfs(parts[4]))
            {
                res.Headers["X-Linked-Etag"] = "\"" + Sha256(body) + "\"";
                res.Headers["Location"] = $"{StorageUrl}cdn/{parts[0]}/{parts[1]}/{parts[4]}";
                End(res, 302);
                return;
            }
            res.Headers["ETag"] = "\"" + GitOid(body) + "\"";
            SendFile(ctx, body);
        }
    }

    private bool Allowed(Repo repo, string? auth) => !repo.Gated || (Token != null && auth == "Bearer " + Token);

    private void SendFile(HttpListenerContext ctx, byte[] body)
    {
        if (Corrupt)
        {
            body = (byte[])body.Clone();
            body[0] ^= 0xFF;
        }
        long from = 0;
        string? range = ctx.Request.Headers["Range"];
        if (range != null && range.StartsWith("bytes=", StringComparison.Ordinal) && long.TryParse(range[6..].TrimEnd('-'), out long f) && f < body.Length)
        {
            from = f;
            ctx.Response.StatusCode = 206;
            ctx.Response.Headers["Content-Range"] = $"bytes {from}-{body.Length - 1}/{body.Length}";
        }
        long count = body.Length - from;
        long cut = BreakAfter;
        BreakAfter = -1;
        Send(ctx.Response, ctx.Response.StatusCode == 206 ? 206 : 200, body.AsSpan((int)from, (int)count).ToArray(), cut);
    }

    private static void Send(HttpListenerResponse res, int status, byte[] body, long? breakAfter)
    {
        res.StatusCode = status;
        res.ContentLength64 = body.Length;
        if (breakAfter is long n && n >= 0 && n < body.Length)
        {
            res.OutputStream.Write(body, 0, (int)n);
            res.OutputStream.Flush();
            res.Abort(); // the connection drops mid-body
            return;
        }
        res.OutputStream.Write(body);
        res.Close();
    }

    private static void End(HttpListenerResponse res, int status)
    {
        res.StatusCode = status;
        res.ContentLength64 = 0;
        res.Close();
    }

    public void Dispose() => http.Dispose();
}
