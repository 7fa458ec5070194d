// Reads the inputs of a cleaning run as raw documents, streaming: .txt (one document per file, or split by
// paragraph, line or a separator), .jsonl / .ndjson (one JSON object per line; optionally .gz), .html / .htm, and
// folders of them (recursively, in ordinal path order, hidden entries ignored). A file's encoding is sniffed from
// its first bytes: UTF-16/32 are transcoded to UTF-8 here; UTF-8 versus Windows-1252 is decided per document later.
// Problems never throw: an unreadable or binary file, a too-large document or line becomes a SkipRecord.
// Does not handle: JSON parsing of lines (the workers do it), archives other than gzip.
using System.IO.Compression;
using System.Text;

namespace Quill.Data.Cleaning;

internal enum RawKind { Text, JsonLine, Html }

internal enum InputFormat { Text, Jsonl, Html }

internal readonly record struct RawDocument(string Source, byte[] Bytes, RawKind Kind);

/// <summary>An input, or a part of one, that was not read, and why.</summary>
/// <param name="Source">File (and line) at fault.</param>
/// <param name="Reason">A short key: unreadable, binary_file, invalid_json, missing_text_field, text_field_not_string, document_too_large.</param>
/// <param name="Detail">One line of detail.</param>
public sealed record SkipRecord(string Source, string Reason, string Detail);

internal sealed record InputFile(string Path, long Length, InputFormat Format, bool Gzip);

internal sealed class InputReader
{
    private const int SniffBytes = 8192;
    private readonly InputConfig cfg;

    public InputReader(InputConfig config) => cfg = config;

    /// <summary>Expands files and folders into the ordered list of input files. A path that does not exist throws.</summary>
    public static List<InputFile> Expand(IReadOnlyList<string> inputs, string? excludeDir)
    {
        var files = new List<InputFile>();
        string? exclude = excludeDir == null ? null : System.IO.Path.GetFullPath(excludeDir).TrimEnd('/', '\\') + System.IO.Path.DirectorySeparatorChar;
        foreach (string input in inputs)
        {
            if (File.Exists(input))
            {
                files.Add(Describe(input));
            }
            else if (Directory.Exists(input))
            {
                var found = new List<string>();
                Walk(input, exclude, found);
                found.Sort(StringComparer.Ordinal);
                foreach (string f in found) files.Add(Describe(f));
            }
            else
            {
                throw new InvalidFileException($"input {input} does not exist; pass files or folders of .txt, .jsonl(.gz) or .html.");
            }
        }
        return files;
    }

    private static void Walk(string dir, string? exclude, List<string> found)
    {
        string full = System.IO.Path.GetFullPath(dir) + System.IO.Path.DirectorySeparatorChar;
        if (exclude != null && full.StartsWith(exclude, StringComparison.Ordinal)) return;
        IEnumerable<string> entries;
        try
        {
            entries = Directory.EnumerateFileSystemEntries(dir).ToList();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return;
        }
        foreach (string entry in entries)
        {
            if (System.IO.Path.GetFileName(entry).StartsWith('.')) continue;
            if (Directory.Exists(entry)) Walk(entry, exclude, found);
            else found.Add(entry);
        }
    }

    private static InputFile Describe(string path)
    {
        string name = System.IO.Path.GetFileName(path).ToLowerInvariant();
        bool gz = name.EndsWith(".gz", StringComparison.Ordinal);
        if (gz) name = name[..^3];
        InputFormat format = name.EndsWith(".jsonl", StringComparison.Ordinal) || name.EndsWith(".ndjson", StringComparison.Ordinal) ? InputFormat.Jsonl
            : name.EndsWith(".html", StringComparison.Ordinal) || name.EndsWith(".htm", StringComparison.Ordinal) ? InputFormat.Html
            : InputFormat.Text;
        long length = 0;
        try
        {
            length = new FileInfo(path).Length;
        }
        catch (IOException)
        {
        }
        return new InputFile(path, length, format, gz);
    }

    /// <summary>Streams one file's documents and skips. <paramref name="position"/> receives on-disk bytes consumed.</summary>
    public void Read(InputFile file, Action<RawDocument> onDocument, Action<SkipRecord> onSkip, Action<long> position, CancellationToken ct)
    {
        try
        {
            ReadCore(file, onDocument, onSkip, position, ct);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            onSkip(new SkipRecord(file.Path, "unreadable", OneLine(ex.Message)));
        }
    }

    private void ReadCore(InputFile file, Action<RawDocument> onDocument, Action<SkipRecord> onSkip, Action<long> position, CancellationToken ct)
    {
        byte[] prefix;
        using (Stream s = Open(file, out _))
        {
            prefix = new byte[SniffBytes];
            prefix = prefix[..s.ReadAtLeast(prefix, SniffBytes, throwOnEndOfStream: false)];
        }
        SniffedEncoding sniffed = TextDecoding.Sniff(prefix);
        if (sniffed == SniffedEncoding.Binary)
        {
            onSkip(new SkipRecord(file.Path, "binary_file", "holds NUL or control bytes; not text"));
            position(file.Length);
            return;
        }
        using Stream raw = Open(file, out CountingStream counter);
        Encoding? encoding = TextDecoding.EncodingFor(sniffed);
        using Stream utf8 = encoding == null ? raw : Encoding.CreateTranscodingStream(raw, encoding, new UTF8Encoding(false), leaveOpen: true);

        if (file.Format == InputFormat.Jsonl || cfg.TxtSplit is "line" or "paragraph" or "separator" && file.Format == InputFormat.Text)
        {
            ReadLines(file, utf8, counter, onDocument, onSkip, position, ct);
            return;
        }
        byte[]? whole = ReadAll(utf8, cfg.MaxDocumentBytes);
        position(counter.Count);
        if (whole == null)
        {
            onSkip(new SkipRecord(file.Path, "document_too_large", $"over input.max_document_bytes ({cfg.MaxDocumentBytes}); set input.txt_split to paragraph, line or separator"));
            return;
        }
        onDocument(new RawDocument(file.Path, whole, file.Format == InputFormat.Html ? RawKind.Html : RawKind.Text));
    }

    private void ReadLines(InputFile file, Stream stream, CountingStream counter, Action<RawDocument> onDocument, Action<SkipRecord> onSkip, Action<long> position, CancellationToken ct)
    {
        var lines = new ByteLineReader(stream, cfg.MaxDocumentBytes);
        bool jsonl = file.Format == InputFormat.Jsonl;
        var doc = new MemoryStream();
        int docIndex = 0;
        long docStartLine = 1;
        byte[] separator = Encoding.UTF8.GetBytes(cfg.Separator);
        long lineNo = 0;

        void Emit()
        {
            if (doc.Length == 0) return;
            if (doc.Length > cfg.MaxDocumentBytes)
            {
                onSkip(new SkipRecord($"{file.Path}#{docIndex}", "document_too_large", $"over input.max_document_bytes ({cfg.MaxDocumentBytes})"));
            }
            else if (!IsBlank(doc.GetBuffer().AsSpan(0, (int)doc.Length)))
            {
                string source = cfg.TxtSplit == "line" ? $"{file.Path}:{docStartLine}" : $"{file.Path}#{docIndex}";
                onDocument(new RawDocument(source, doc.ToArray(), RawKind.Text));
            }
            docIndex++;
            doc.SetLength(0);
        }

        while (lines.Next(out ReadOnlySpan<byte> line, out bool tooLong))
        {
            lineNo++;
            if ((lineNo & 1023) == 0)
            {
                ct.ThrowIfCancellationRequested();
                position(counter.Count);
            }
            if (jsonl)
            {
                if (tooLong) onSkip(new SkipRecord($"{file.Path}:{lineNo}", "document_too_large", $"line over input.max_document_bytes ({cfg.MaxDocumentBytes})"));
                else if (!IsBlank(line)) onDocument(new RawDocument($"{file.Path}:{lineNo}", line.ToArray(), RawKind.JsonLine));
                continue;
            }
            if (tooLong)
            {
                onSkip(new SkipRecord($"{file.Path}:{lineNo}", "document_too_large", $"line over input.max_document_bytes ({cfg.MaxDocumentBytes})"));
                continue;
            }
            switch (cfg.TxtSplit)
            {
                case "line":
                    docStartLine = lineNo;
                    doc.Write(line);
                    Emit();
                    break;
                case "paragraph":
                    if (IsBlank(line))
                    {
                        Emit();
                    }
                    else
                    {
                        doc.Write(line);
                        doc.WriteByte((byte)'\n');
                    }
                    break;
                default:
                    // separator: may sit anywhere in a line, several times.
                    ReadOnlySpan<byte> rest = line;
                    int at;
                    while ((at = rest.IndexOf(separator)) >= 0)
                    {
                        doc.Write(rest[..at]);
                        Emit();
                        rest = rest[(at + separator.Length)..];
                    }
                    doc.Write(rest);
                    doc.WriteByte((byte)'\n');
                    break;
            }
            if (doc.Length > cfg.MaxDocumentBytes)
            {
                onSkip(new SkipRecord($"{file.Path}#{docIndex}", "document_too_large", $"over input.max_document_bytes ({cfg.MaxDocumentBytes})"));
                doc.SetLength(0);
                docIndex++;
            }
        }
        Emit();
        position(counter.Count);
    }

    private static Stream Open(InputFile file, out CountingStream counter)
    {
        var fs = new FileStream(file.Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        counter = new CountingStream(fs);
        return file.Gzip ? new GZipStream(counter, CompressionMode.Decompress) : counter;
    }

    // All bytes of the stream, or null when there are more than max.
    private static byte[]? ReadAll(Stream s, long max)
    {
        var ms = new MemoryStream();
        byte[] buf = new byte[1 << 16];
        int n;
        while ((n = s.Read(buf, 0, buf.Length)) > 0)
        {
            ms.Write(buf, 0, n);
            if (ms.Length > max) return null;
        }
        return ms.ToArray();
    }

    private static bool IsBlank(ReadOnlySpan<byte> line)
    {
        foreach (byte b in line)
        {
            if (b != (byte)' ' && b != (byte)'\t' && b != (byte)'\r') return false;
        }
        return true;
    }

    private static string OneLine(string s) => s.ReplaceLineEndings(" ");
}

/// <summary>Reads '\n'-terminated lines of bytes (without the '\n' or a trailing '\r'), capping their length.</summary>
internal sealed class ByteLineReader(Stream stream, long maxLine)
{
    private readonly byte[] buffer = new byte[1 << 16];
    private byte[] line = new byte[1 << 12];
    private int start, end;
    private bool eof;

    public bool Next(out ReadOnlySpan<byte> result, out bool tooLong)
    {
        int length = 0;
        tooLong = false;
        bool any = false;
        while (true)
        {
            if (start == end)
            {
                if (eof) break;
                start = 0;
                end = stream.Read(buffer, 0, buffer.Length);
                if (end == 0)
                {
                    eof = true;
                    break;
                }
            }
            any = true;
            int nl = Array.IndexOf(buffer, (byte)'\n', start, end - start);
            int stop = nl < 0 ? end : nl;
            int take = stop - start;
            if (!tooLong)
            {
                if ((long)length + take > maxLine)
                {
                    tooLong = true;
                }
                else
                {
                    if (length + take > line.Length) Array.Resize(ref line, Math.Max(length + take, line.Length * 2));
                    Buffer.BlockCopy(buffer, start, line, length, take);
                    length += take;
                }
            }
            start = stop;
            if (nl >= 0)
            {
                start = nl + 1;
                break;
            }
        }
        if (!any)
        {
            result = default;
            return false;
        }
        if (!tooLong && length > 0 && line[length - 1] == (byte)'\r') length--;
        result = tooLong ? default : line.AsSpan(0, length);
        return true;
    }
}

/// <summary>A read-only pass-through stream that counts the bytes read.</summary>
internal sealed class CountingStream(Stream inner) : Stream
{
    public long Count { get; private set; }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => inner.Length;
    public override long Position { get => Count; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count)
    {
        int n = inner.Read(buffer, offset, count);
        Count += n;
        return n;
    }

    public override int Read(Span<byte> buffer)
    {
        int n = inner.Read(buffer);
        Count += n;
        return n;
    }

    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}
