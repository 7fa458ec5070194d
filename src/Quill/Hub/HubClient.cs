// Pulls models from the Hugging Face hub into its cache (HubCache). The file list and the commit come from
// GET {endpoint}api/models/{repo}/revision/{revision}?blobs=true (siblings with sizes, git blob ids and, for LFS files,
// their sha256). A repo with GGUF files gets one: --file if given, else the file whose name carries the asked tag
// (Q4_K_M by default, then Q4_0, then the first GGUF, as Ollama and llama.cpp choose); a repo without GGUF gets the
// files a Hugging Face folder needs (config, tokenizer files, safetensors shards and their index). Each file comes
// from {endpoint}{repo}/resolve/{commit}/{path} (redirects followed by hand, so the token is never sent to the
// storage host), resumed with Range from blobs/<etag>.incomplete, verified (LFS: sha256, as X-Linked-Etag also says;
// others: the git blob id), then renamed into blobs/ and linked from the snapshot.
// The bytes go through ProgressCopy, as DatasetFetcher's do.
// Does not handle: paginated listings of huge repos, split GGUF files (*-00001-of-0000N.gguf: the first part only),
// parallel downloads, Xet storage.
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Quill.Hub;

/// <summary>A file of a hub repository.</summary>
/// <param name="Path">Path in the repo.</param>
/// <param name="Size">Bytes.</param>
/// <param name="GitOid">Git blob id (sha1 hex).</param>
/// <param name="Sha256">Content sha256 for LFS files, else null.</param>
public sealed record HubFile(string Path, long Size, string? GitOid, string? Sha256)
{
    /// <summary>The cache's blob name: the sha256 for LFS files, the git blob id otherwise.</summary>
    public string Etag => Sha256 ?? GitOid ?? throw new InvalidOperationException($"{Path} has neither a git id nor a sha256");
}

/// <summary>Progress of one file's download.</summary>
public sealed record HubProgress(string File, long Bytes, long Total, TimeSpan Elapsed, long BytesThisRun);

/// <summary>What a pull produced.</summary>
/// <param name="Snapshot">The snapshot folder.</param>
/// <param name="ModelPath">What to pass as --model: the GGUF file, or the snapshot folder.</param>
/// <param name="Commit">The commit the files come from.</param>
/// <param name="Files">The files, in download order.</param>
/// <param name="Downloaded">Bytes downloaded in this run (0: everything was cached).</param>
public sealed record HubPullResult(string Snapshot, string ModelPath, string Commit, IReadOnlyList<HubFile> Files, long Downloaded);

/// <summary>Lists and downloads hub files.</summary>
public sealed class HubClient
{
    /// <summary>Quantization tags tried in order when none is given.</summary>
    public static readonly IReadOnlyList<string> DefaultQuants = ["Q4_K_M", "Q4_0"];

    private static readonly string[] FolderFiles = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json", "vocab.json", "merges.txt", "model.safetensors.index.json"];

    private readonly HttpClient http;

    public HubClient(HubSettings settings, HttpMessageHandler? handler = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        Settings = settings;
        Cache = new HubCache(settings.CacheDir);
        http = new HttpClient(handler ?? new SocketsHttpHandler { AllowAutoRedirect = false }, disposeHandler: handler == null) { Timeout = Timeout.InfiniteTimeSpan };
        http.DefaultRequestHeaders.UserAgent.ParseAdd("quill/1.0");
    }

    public HubSettings Settings { get; }

    public HubCache Cache { get; }

    /// <summary>The files of a repo at a revision, and the commit that revision is.</summary>
    public async Task<(string Commit, IReadOnlyList<HubFile> Files)> ListAsync(string repo, string revision, CancellationToken ct = default)
    {
        var url = new Uri(Settings.Endpoint, $"api/models/{repo}/revision/{Uri.EscapeDataString(revision)}?blobs=true");
        using var response = await SendAsync(url, HttpMethod.Get, null, repo, ct).ConfigureAwait(false);
        string json = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
        try
        {
            using var doc = JsonDocument.Parse(json);
            var root = doc.RootElement;
            string commit = root.TryGetProperty("sha", out var sha) && sha.ValueKind == JsonValueKind.String ? sha.GetString()! : revision;
            var files = new List<HubFile>();
            if (root.TryGetProperty("siblings", out var siblings) && siblings.ValueKind == JsonValueKind.Array)
            {
                foreach (var s in siblings.EnumerateArray())
                {
                    string path = s.GetProperty("rfilename").GetString()!;
                    long size = s.TryGetProperty("size", out var sz) && sz.TryGetInt64(out long n) ? n : -1;
                    string? oid = s.TryGetProperty("blobId", out var b) ? b.GetString() : null;
                    string? sha256 = s.TryGetProperty("lfs", out var lfs) && lfs.ValueKind == JsonValueKind.Object && lfs.TryGetProperty("sha256", out var h) ? h.GetString() : null;
                    if (sha256 != null && lfs.TryGetProperty("size", out var ls) && ls.TryGetInt64(out long lsize)) size = lsize;
                    CheckPath(repo, path);
                    files.Add(new HubFile(path, size, oid, sha256?.ToLowerInvariant()));
                }
            }
            return (commit, files);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new QuillException($"hf.co/{repo}: the hub's file list could not be read ({e.Message}); check HF_ENDPOINT.", e);
        }
    }

    private static void CheckPath(string repo, string path)
    {
        if (path.Length == 0 || Path.IsPathRooted(path) || path.Split('/').Any(p => p is "" or "." or ".."))
            throw new QuillException($"hf.co/{repo}: the hub lists a file named '{path}', which would land outside the cache; refusing it.");
    }

    /// <summary>The files to fetch for a model: one GGUF (by name, tag or default), or a Hugging Face folder's files.</summary>
    public static IReadOnlyList<HubFile> Choose(string repo, IReadOnlyList<HubFile> files, string? quant, string? fileName)
    {
        ArgumentNullException.ThrowIfNull(files);
        if (fileName != null)
        {
            var f = files.FirstOrDefault(x => x.Path == fileName)
                ?? throw new InvalidConfigException($"hf.co/{repo} has no file '{fileName}'; it has: {Names(files)}.");
            return [f];
        }
        var ggufs = files.Where(f => f.Path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) && !f.Path.Contains("mmproj", StringComparison.OrdinalIgnoreCase)).ToList();
        if (ggufs.Count > 0)
        {
            foreach (string tag in quant != null ? [quant] : DefaultQuants)
            {
                var match = ggufs.FirstOrDefault(f => HasTag(f.Path, tag));
                if (match != null) return [match];
            }
            if (quant != null)
                throw new InvalidConfigException($"hf.co/{repo} has no GGUF file tagged {quant}; it has: {Names(ggufs)}.");
            return [ggufs[0]];
        }
        if (quant != null) throw new InvalidConfigException($"hf.co/{repo} holds no GGUF files, so there is no {quant} to pick; pull hf.co/{repo} for its safetensors.");
        var weights = files.Where(f => f.Path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) && !f.Path.Contains('/', StringComparison.Ordinal)).ToList();
        if (weights.Count == 0 || !files.Any(f => f.Path == "config.json"))
            throw new QuillException($"hf.co/{repo} holds neither GGUF files nor config.json with safetensors; it is not a model Quill can run ({Names(files)}).");
        return [.. files.Where(f => FolderFiles.Contains(f.Path)), .. weights];
    }

    /// <summary>True when a file name carries the tag as a separate word (Q4_K_M in "x-Q4_K_M.gguf", not in "x-Q4_K_M_L").</summary>
    private static bool HasTag(string path, string tag)
    {
        string name = Path.GetFileNameWithoutExtension(path);
        int at = name.IndexOf(tag, StringComparison.OrdinalIgnoreCase);
        while (at >= 0)
        {
            bool before = at == 0 || !char.IsAsciiLetterOrDigit(name[at - 1]) && name[at - 1] != '_';
            int end = at + tag.Length;
            bool after = end == name.Length || !char.IsAsciiLetterOrDigit(name[end]) && name[end] != '_';
            if (before && after) return true;
            at = name.IndexOf(tag, at + 1, StringComparison.OrdinalIgnoreCase);
        }
        return false;
    }

    private static string Names(IEnumerable<HubFile> files)
    {
        var names = files.Select(f => f.Path).ToList();
        return names.Count == 0 ? "no files" : string.Join(", ", names.Take(12)) + (names.Count > 12 ? $", ... ({names.Count} in all)" : "");
    }

    /// <summary>Pulls a model: lists the repo, chooses its files, downloads what the cache lacks.</summary>
    public async Task<HubPullResult> PullAsync(HubReference model, string revision = "main", string? fileName = null,
        IProgress<HubProgress>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        var (commit, all) = await ListAsync(model.Repo, revision, ct).ConfigureAwait(false);
        var chosen = Choose(model.Repo, all, model.Quant, fileName);
        long downloaded = 0;
        foreach (var f in chosen) downloaded += await FetchAsync(model.Repo, commit, f, progress, ct).ConfigureAwait(false);
        Cache.WriteRef(model.Repo, revision, commit);
        string snapshot = Cache.SnapshotFolder(model.Repo, commit);
        string modelPath = chosen.Count == 1 && chosen[0].Path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) ? Path.Combine(snapshot, chosen[0].Path) : snapshot;
        return new HubPullResult(snapshot, modelPath, commit, chosen, downloaded);
    }

    /// <summary>Downloads one file into the cache unless its blob is there; links it into the snapshot. Returns the bytes downloaded.</summary>
    private async Task<long> FetchAsync(string repo, string commit, HubFile file, IProgress<HubProgress>? progress, CancellationToken ct)
    {
        string blob = Cache.BlobPath(repo, file.Etag);
        long got = 0;
        if (!File.Exists(blob))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
            string part = blob + ".incomplete";
            got = await DownloadAsync(repo, commit, file, part, progress, ct).ConfigureAwait(false);
            string? problem = await VerifyAsync(file, part, ct).ConfigureAwait(false);
            if (problem != null)
            {
                File.Delete(part);
                throw new InvalidFileException($"hf.co/{repo}/{file.Path}: {problem}; the download was removed, run again to retry.");
            }
            File.Move(part, blob, overwrite: true);
        }
        Cache.Link(repo, commit, file.Path, file.Etag);
        return got;
    }

    private static async Task<string?> VerifyAsync(HubFile file, string path, CancellationToken ct)
    {
        long length = new FileInfo(path).Length;
        if (file.Size >= 0 && length != file.Size) return $"got {length:N0} bytes, the hub lists {file.Size:N0}";
        await using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        if (file.Sha256 != null)
        {
            string actual = Convert.ToHexStringLower(await SHA256.HashDataAsync(fs, ct).ConfigureAwait(false));
            return actual == file.Sha256 ? null : $"checksum mismatch: sha256 {actual}, the hub says {file.Sha256}";
        }
        if (file.GitOid != null)
        {
            // git's blob id: sha1 of "blob <size>\0" followed by the content
            using var sha1 = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
            sha1.AppendData(Encoding.ASCII.GetBytes($"blob {length}\0"));
            byte[] buffer = new byte[1 << 16];
            int n;
            while ((n = await fs.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0) sha1.AppendData(buffer, 0, n);
            string actual = Convert.ToHexStringLower(sha1.GetHashAndReset());
            return actual == file.GitOid ? null : $"checksum mismatch: git blob id {actual}, the hub says {file.GitOid}";
        }
        return null;
    }

    private async Task<long> DownloadAsync(string repo, string commit, HubFile file, string part, IProgress<HubProgress>? progress, CancellationToken ct)
    {
        long have = File.Exists(part) ? new FileInfo(part).Length : 0;
        if (file.Size >= 0 && have > file.Size) have = 0;
        var url = new Uri(Settings.Endpoint, $"{repo}/resolve/{commit}/{string.Join('/', file.Path.Split('/').Select(Uri.EscapeDataString))}");
        using var response = await SendAsync(url, HttpMethod.Get, have > 0 && have < file.Size ? new RangeHeaderValue(have, null) : null, repo, ct).ConfigureAwait(false);
        if (response.Headers.TryGetValues("X-Linked-Etag", out var linked) && file.Sha256 != null)
        {
            string etag = linked.First().Trim('"').ToLowerInvariant();
            if (etag != file.Sha256) throw new InvalidFileException($"hf.co/{repo}/{file.Path}: the hub's X-Linked-Etag {etag} differs from the listed sha256 {file.Sha256}; try again later.");
        }
        if (have > 0 && have == file.Size) return 0;
        bool resumed = have > 0 && response.StatusCode == HttpStatusCode.PartialContent && response.Content.Headers.ContentRange?.From == have;
        if (!resumed) have = 0;
        long total = file.Size >= 0 ? file.Size : (response.Content.Headers.ContentLength ?? -1) + have;
        var copy = new ProgressCopy();
        try
        {
            await using var output = new FileStream(part, resumed ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
            await using var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            await copy.RunAsync(body, output, progress == null ? null : b => progress.Report(new HubProgress(file.Path, have + b, total, copy.Elapsed, b)), ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            throw new QuillException($"download of hf.co/{repo}/{file.Path} stopped after {have + copy.Bytes:N0} bytes ({e.Message}); run the same command again to resume.", e);
        }
        progress?.Report(new HubProgress(file.Path, have + copy.Bytes, total, copy.Elapsed, copy.Bytes));
        return copy.Bytes;
    }

    /// <summary>Sends a request, following redirects by hand (the token goes to the hub only); turns failures into one line.</summary>
    private async Task<HttpResponseMessage> SendAsync(Uri url, HttpMethod method, RangeHeaderValue? range, string repo, CancellationToken ct, int hops = 0)
    {
        if (hops > 5) throw new QuillException($"hf.co/{repo}: too many redirects at {url}.");
        Uri current = url;
        {
            using var request = new HttpRequestMessage(method, current);
            if (range != null) request.Headers.Range = range;
            bool toHub = current.Host == Settings.Endpoint.Host && current.Port == Settings.Endpoint.Port;
            if (toHub && Settings.Token != null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Settings.Token);
            HttpResponseMessage response;
            try
            {
                response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
            }
            catch (HttpRequestException e)
            {
                throw new QuillException($"cannot reach {current.GetLeftPart(UriPartial.Authority)}: {e.Message}; check the network or HF_ENDPOINT.", e);
            }
            int code = (int)response.StatusCode;
            if (code is 301 or 302 or 303 or 307 or 308 && response.Headers.Location is { } location)
            {
                // keep the hub's headers (X-Linked-Etag) from the first hop: copy them onto the final response
                var next = location.IsAbsoluteUri ? location : new Uri(current, location);
                var linked = response.Headers.TryGetValues("X-Linked-Etag", out var l) ? l.First() : null;
                response.Dispose();
                var final = await SendAsync(next, method, range, repo, ct, hops + 1).ConfigureAwait(false);
                if (linked != null && !final.Headers.Contains("X-Linked-Etag")) final.Headers.TryAddWithoutValidation("X-Linked-Etag", linked);
                return final;
            }
            if (response.IsSuccessStatusCode) return response;
            response.Dispose();
            string page = new Uri(Settings.Endpoint, repo).ToString();
            throw code switch
            {
                401 or 403 when Settings.Token == null => new QuillException($"hf.co/{repo} is gated or private (HTTP {code}): accept its terms at {page} and set HF_TOKEN (or log in with huggingface-cli)."),
                401 or 403 => new QuillException($"hf.co/{repo}: the hub refused HF_TOKEN (HTTP {code}); check that the token is valid and that you accepted the terms at {page}."),
                404 => new QuillException($"hf.co/{repo}: not found (HTTP 404) at {current.GetLeftPart(UriPartial.Path)}; check the name and the revision."),
                416 => new QuillException($"hf.co/{repo}: the hub refused to resume a download (HTTP 416); delete the .incomplete file in {Cache.RepoFolder(repo)} and run again."),
                _ => new QuillException($"hf.co/{repo}: HTTP {code} {response.ReasonPhrase} from {current.GetLeftPart(UriPartial.Path)}; try again later."),
            };
        }
    }
}
