using System.IO.Compression;
using System.Net;
using System.Security.Cryptography;
using Quill.Data.Fetch;
using Quill.Tests.Data.Cleaning;
using Quill.Tests.Support;

namespace Quill.Tests.Data.Fetch;

public sealed class DatasetFetcherTests
{
    /// <summary>A loopback HTTP server with Range support that can break off a response part-way.</summary>
    private sealed class LocalServer : IDisposable
    {
        private readonly LoopbackHttp http;

        public LocalServer(Dictionary<string, byte[]> files)
        {
            Files = files;
            http = new LoopbackHttp(Handle);
        }

        public Dictionary<string, byte[]> Files { get; }
        public string BaseUrl => http.BaseUrl;
        public List<string?> RangeHeaders { get; } = [];
        public long BreakAfter { get; set; } = -1;   // the next full response stops after this many bytes
        public bool IgnoreRange { get; set; }

        private void Handle(HttpListenerContext ctx)
        {
            string name = ctx.Request.Url!.AbsolutePath.TrimStart('/');
            string? range = ctx.Request.Headers["Range"];
            lock (RangeHeaders) RangeHeaders.Add(range);
            if (!Files.TryGetValue(name, out byte[]? body))
            {
                ctx.Response.StatusCode = 404;
                ctx.Response.Close();
                return;
            }
            long from = 0;
            if (range != null && !IgnoreRange)
            {
                from = long.Parse(range["bytes=".Length..].TrimEnd('-'), System.Globalization.CultureInfo.InvariantCulture);
                if (from >= body.Length)
                {
                    ctx.Response.StatusCode = 416;
                    ctx.Response.Headers["Content-Range"] = $"bytes */{body.Length}";
                    ctx.Response.Close();
                    return;
                }
                ctx.Response.StatusCode = 206;
                ctx.Response.Headers["Content-Range"] = $"bytes {from}-{body.Length - 1}/{body.Length}";
            }
            ctx.Response.ContentLength64 = body.Length - from;
            long send = body.Length - from;
            bool breakOff = BreakAfter >= 0 && BreakAfter < send;
            if (breakOff)
            {
                send = BreakAfter;
                BreakAfter = -1;
            }
            ctx.Response.OutputStream.Write(body, (int)from, (int)send);
            ctx.Response.OutputStream.Flush();
            if (breakOff) ctx.Response.Abort();
            else ctx.Response.Close();
        }

        public void Dispose() => http.Dispose();
    }

    private static byte[] Payload(int size, int seed)
    {
        var b = new byte[size];
        new Random(seed).NextBytes(b);
        return b;
    }

    private static string Sha(byte[] b) => Convert.ToHexStringLower(SHA256.HashData(b));

    [Fact]
    public async Task Downloads_and_verifies_the_checksum()
    {
        byte[] data = Payload(300_000, 1);
        using var server = new LocalServer(new() { ["corpus.txt"] = data });
        using var dir = new TempDir();
        var seen = new List<FetchProgress>();
        FetchResult r = await new DatasetFetcher().FetchAsync(server.BaseUrl + "corpus.txt", dir.Path, Sha(data), new SyncProgress<FetchProgress>(seen.Add));
        Assert.True(r.Verified);
        Assert.False(r.Resumed);
        Assert.Equal(data, File.ReadAllBytes(dir["corpus.txt"]));
        Assert.Equal(Sha(data), File.ReadAllText(dir["corpus.txt.sha256"]).Split(' ')[0]);
        Assert.Equal(data.Length, seen[^1].Bytes);
        Assert.Equal(data.Length, seen[^1].TotalBytes);

        FetchResult again = await new DatasetFetcher().FetchAsync(server.BaseUrl + "corpus.txt", dir.Path, Sha(data));
        Assert.True(again.AlreadyPresent);
        Assert.Single(server.RangeHeaders);
    }

    [Fact]
    public async Task A_broken_download_resumes_with_a_range_request()
    {
        byte[] data = Payload(1_000_000, 2);
        using var server = new LocalServer(new() { ["big.bin"] = data }) { BreakAfter = 400_000 };
        using var dir = new TempDir();
        var ex = await Assert.ThrowsAsync<QuillException>(() => new DatasetFetcher().FetchAsync(server.BaseUrl + "big.bin", dir.Path, Sha(data)));
        Assert.Contains("run the same command again to resume", ex.Message, StringComparison.Ordinal);
        long partial = new FileInfo(dir["big.bin.part"]).Length;
        Assert.InRange(partial, 1, data.Length - 1);
        Assert.False(File.Exists(dir["big.bin"]));

        FetchResult r = await new DatasetFetcher().FetchAsync(server.BaseUrl + "big.bin", dir.Path, Sha(data));
        Assert.True(r.Resumed);
        Assert.True(r.Verified);
        Assert.Equal($"bytes={partial}-", server.RangeHeaders[^1]);
        Assert.Equal(data, File.ReadAllBytes(dir["big.bin"]));
        Assert.False(File.Exists(dir["big.bin.part"]));
    }

    [Fact]
    public async Task A_server_that_ignores_ranges_gets_a_full_download()
    {
        byte[] data = Payload(200_000, 3);
        using var server = new LocalServer(new() { ["f.bin"] = data }) { IgnoreRange = true };
        using var dir = new TempDir();
        File.WriteAllBytes(dir["f.bin.part"], data[..5000]);
        FetchResult r = await new DatasetFetcher().FetchAsync(server.BaseUrl + "f.bin", dir.Path, Sha(data));
        Assert.False(r.Resumed);
        Assert.Equal(data, File.ReadAllBytes(dir["f.bin"]));
    }

    [Fact]
    public async Task A_wrong_checksum_fails_and_keeps_nothing()
    {
        byte[] data = Payload(50_000, 4);
        using var server = new LocalServer(new() { ["f.bin"] = data });
        using var dir = new TempDir();
        var ex = await Assert.ThrowsAsync<InvalidFileException>(() => new DatasetFetcher().FetchAsync(server.BaseUrl + "f.bin", dir.Path, new string('0', 64)));
        Assert.Contains("checksum mismatch", ex.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(dir["f.bin"]));
        Assert.False(File.Exists(dir["f.bin.part"]));
    }

    [Fact]
    public async Task Missing_files_unknown_names_and_bad_checksums_are_user_errors()
    {
        using var server = new LocalServer([]);
        using var dir = new TempDir();
        var notFound = await Assert.ThrowsAsync<QuillException>(() => new DatasetFetcher().FetchAsync(server.BaseUrl + "nope.txt", dir.Path));
        Assert.Contains("404", notFound.Message, StringComparison.Ordinal);
        var unknown = await Assert.ThrowsAsync<InvalidConfigException>(() => new DatasetFetcher().FetchAsync("no-such-dataset", dir.Path));
        Assert.Contains("tinyshakespeare", unknown.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<InvalidConfigException>(() => new DatasetFetcher().FetchAsync(server.BaseUrl + "x", dir.Path, "abc"));
    }

    [Fact]
    public async Task Zip_archives_are_extracted()
    {
        using var zipStream = new MemoryStream();
        using (var zip = new ZipArchive(zipStream, ZipArchiveMode.Create, leaveOpen: true))
        {
            using var w = new StreamWriter(zip.CreateEntry("wiki/train.txt").Open());
            w.Write("hello wiki");
        }
        using var server = new LocalServer(new() { ["wiki.zip"] = zipStream.ToArray() });
        using var dir = new TempDir();
        FetchResult r = await new DatasetFetcher().FetchAsync(server.BaseUrl + "wiki.zip", dir.Path);
        Assert.Equal(dir["wiki"], r.ExtractedTo);
        Assert.Equal("hello wiki", File.ReadAllText(dir["wiki/wiki/train.txt"]));
    }

    [TestDataFact("corpora/tinyshakespeare.txt")]
    public async Task The_catalogue_checksum_for_tiny_shakespeare_matches_the_reference_copy()
    {
        DatasetEntry entry = DatasetCatalog.Find("tinyshakespeare")!;
        byte[] data = File.ReadAllBytes(TestData.PathOf("corpora/tinyshakespeare.txt"));
        using var server = new LocalServer(new() { ["input.txt"] = data });
        using var dir = new TempDir();
        FetchResult r = await new DatasetFetcher().FetchAsync(server.BaseUrl + "input.txt", dir.Path, entry.Sha256);
        Assert.True(r.Verified);
        Assert.Equal(entry.Sha256, r.Sha256);
    }

    [Fact]
    public void Catalogue_names_are_unique_and_https()
    {
        Assert.Equal(DatasetCatalog.Entries.Count, DatasetCatalog.Entries.Select(e => e.Name).Distinct().Count());
        Assert.All(DatasetCatalog.Entries, e => Assert.Equal("https", e.Url.Scheme));
        Assert.All(DatasetCatalog.Entries, e => Assert.True(e.Sha256 is null || e.Sha256.Length == 64));
        Assert.NotNull(DatasetCatalog.Find("TinyShakespeare"));
        Assert.NotNull(DatasetCatalog.Find("wikitext-103"));
        Assert.NotNull(DatasetCatalog.Find("tinystories"));
    }

    private sealed class SyncProgress<T>(Action<T> action) : IProgress<T>
    {
        public void Report(T value) => action(value);
    }
}
