// Downloads a catalogue dataset or any http(s) URL into a folder: streams to NAME.part with progress, resumes a
// partial download with an HTTP Range request (falling back to a full download when the server ignores it),
// checks the SHA-256 when one is known or given, then renames NAME.part to NAME and writes NAME.sha256 beside
// it. Zip archives are extracted into a folder named after the archive. A download that breaks off leaves the
// .part file and says to run again; a checksum mismatch removes the bad file and says so.
// Does not handle: parallel range downloads, authentication, FTP.
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;

namespace Quill.Data.Fetch;

/// <summary>Progress of a download.</summary>
/// <param name="FileName">The file being written.</param>
/// <param name="Bytes">Bytes of the file present so far (including a resumed part).</param>
/// <param name="TotalBytes">Full size when the server says it.</param>
/// <param name="Elapsed">Time since this download started.</param>
/// <param name="BytesThisRun">Bytes received in this run (for the rate).</param>
public sealed record FetchProgress(string FileName, long Bytes, long? TotalBytes, TimeSpan Elapsed, long BytesThisRun);

/// <summary>What a fetch produced.</summary>
/// <param name="Path">The downloaded file.</param>
/// <param name="Bytes">Its size.</param>
/// <param name="Sha256">Its SHA-256 (lower-case hex).</param>
/// <param name="Verified">Whether it matched an expected checksum.</param>
/// <param name="Resumed">Whether a partial download was continued.</param>
/// <param name="AlreadyPresent">Whether the file was there already and nothing was downloaded.</param>
/// <param name="ExtractedTo">Folder a zip was extracted to, or null.</param>
public sealed record FetchResult(string Path, long Bytes, string Sha256, bool Verified, bool Resumed, bool AlreadyPresent, string? ExtractedTo);

/// <summary>Resumable, checksummed downloads of datasets.</summary>
public sealed class DatasetFetcher(HttpClient? client = null)
{
    private readonly HttpClient http = client ?? new HttpClient { Timeout = Timeout.InfiniteTimeSpan };

    /// <summary>Fetches a catalogue name or an http(s) URL into <paramref name="outDir"/>.</summary>
    /// <param name="nameOrUrl">A DatasetCatalog name or an absolute http(s) URL.</param>
    /// <param name="outDir">Destination folder (created).</param>
    /// <param name="sha256">Expected SHA-256 in hex; overrides the catalogue's.</param>
    /// <param name="progress">Progress receiver.</param>
    /// <param name="ct">Cancellation (the .part file is kept for a later resume).</param>
    public async Task<FetchResult> FetchAsync(string nameOrUrl, string outDir, string? sha256 = null,
        IProgress<FetchProgress>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(nameOrUrl);
        ArgumentNullException.ThrowIfNull(outDir);
        (Uri url, string fileName, string? expected) = Resolve(nameOrUrl);
        if (sha256 != null)
        {
            expected = sha256.Trim().ToLowerInvariant();
            if (expected.Length != 64 || !expected.All(Uri.IsHexDigit)) throw new InvalidConfigException($"--sha256 must be 64 hex digits (got '{sha256}').");
        }
        Directory.CreateDirectory(outDir);
        string final = System.IO.Path.Combine(outDir, fileName);
        string part = final + ".part";

        if (File.Exists(final))
        {
            string have = await HashFileAsync(final, ct).ConfigureAwait(false);
            if (expected == null || have == expected)
            {
                return new FetchResult(final, new FileInfo(final).Length, have, expected != null, false, true, ExtractIfZip(final));
            }
            File.Delete(final); // wrong content: download again
        }

        bool resumed = await DownloadAsync(url, part, fileName, progress, ct).ConfigureAwait(false);
        string actual = await HashFileAsync(part, ct).ConfigureAwait(false);
        if (expected != null && actual != expected)
        {
            File.Delete(part);
            throw new InvalidFileException($"checksum mismatch for {fileName} from {url}: expected sha256 {expected}, got {actual}; the download was removed, run again to retry.");
        }
        File.Move(part, final, overwrite: true);
        await File.WriteAllTextAsync(final + ".sha256", $"{actual}  {fileName}\n", ct).ConfigureAwait(false);
        return new FetchResult(final, new FileInfo(final).Length, actual, expected != null, resumed, false, ExtractIfZip(final));
    }

    private static (Uri Url, string FileName, string? Sha256) Resolve(string nameOrUrl)
    {
        if (DatasetCatalog.Find(nameOrUrl) is { } entry) return (entry.Url, entry.FileName, entry.Sha256);
        if (Uri.TryCreate(nameOrUrl, UriKind.Absolute, out Uri? url) && (url.Scheme == Uri.UriSchemeHttp || url.Scheme == Uri.UriSchemeHttps))
        {
            string name = System.IO.Path.GetFileName(Uri.UnescapeDataString(url.AbsolutePath));
            if (string.IsNullOrWhiteSpace(name) || name.IndexOfAny(System.IO.Path.GetInvalidFileNameChars()) >= 0) name = "download";
            return (url, name, null);
        }
        throw new InvalidConfigException($"unknown dataset '{nameOrUrl}'; known: {string.Join(", ", DatasetCatalog.Entries.Select(e => e.Name))}, or pass an http(s) URL.");
    }

    // Returns whether an existing .part was continued.
    private async Task<bool> DownloadAsync(Uri url, string part, string fileName, IProgress<FetchProgress>? progress, CancellationToken ct)
    {
        long have = File.Exists(part) ? new FileInfo(part).Length : 0;
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (have > 0) request.Headers.Range = new RangeHeaderValue(have, null);
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException ex)
        {
            throw new QuillException($"cannot reach {url}: {ex.Message}", ex);
        }
        using (response)
        {
            if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && have > 0)
            {
                long? size = response.Content.Headers.ContentRange?.Length;
                if (size == have) return true; // the part file is already complete
                File.Delete(part);
                return await DownloadAsync(url, part, fileName, progress, ct).ConfigureAwait(false);
            }
            if (!response.IsSuccessStatusCode)
            {
                throw new QuillException($"download of {url} failed: HTTP {(int)response.StatusCode} {response.ReasonPhrase}.");
            }
            bool resumed = have > 0 && response.StatusCode == HttpStatusCode.PartialContent
                && response.Content.Headers.ContentRange?.From == have;
            if (!resumed) have = 0; // the server sent the whole file
            long? total = response.Content.Headers.ContentRange?.Length
                ?? (response.Content.Headers.ContentLength is long len ? have + len : null);

            var copy = new ProgressCopy();
            using (var file = new FileStream(part, resumed ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
            {
                try
                {
                    using Stream body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
                    await copy.RunAsync(body, file, progress == null ? null : b => progress.Report(new FetchProgress(fileName, have + b, total, copy.Elapsed, b)), ct).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is IOException or HttpRequestException)
                {
                    await file.FlushAsync(CancellationToken.None).ConfigureAwait(false);
                    throw new QuillException($"download of {fileName} broke off after {have + copy.Bytes:N0} bytes ({ex.Message}); run the same command again to resume.", ex);
                }
            }
            long thisRun = copy.Bytes;
            progress?.Report(new FetchProgress(fileName, have + thisRun, total, copy.Elapsed, thisRun));
            if (total is long t && have + thisRun != t)
            {
                throw new QuillException($"download of {fileName} ended after {have + thisRun:N0} of {t:N0} bytes; run the same command again to resume.");
            }
            return resumed;
        }
    }

    /// <summary>Lower-case hex SHA-256 of a file.</summary>
    public static async Task<string> HashFileAsync(string path, CancellationToken ct = default)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        byte[] hash = await SHA256.HashDataAsync(fs, ct).ConfigureAwait(false);
        return Convert.ToHexStringLower(hash);
    }

    private static string? ExtractIfZip(string path)
    {
        if (!path.EndsWith(".zip", StringComparison.OrdinalIgnoreCase)) return null;
        string dir = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(path) ?? ".", System.IO.Path.GetFileNameWithoutExtension(path));
        if (Directory.Exists(dir)) return dir;
        string tmp = dir + ".extracting";
        if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
        try
        {
            ZipFile.ExtractToDirectory(path, tmp);
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidFileException($"{path} is not a valid zip archive ({ex.Message}); delete it and fetch again.", ex);
        }
        Directory.Move(tmp, dir);
        return dir;
    }
}
