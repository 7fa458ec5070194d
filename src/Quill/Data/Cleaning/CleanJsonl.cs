// Reads and writes the lines of DIR/clean.jsonl: one {"id", "source", "text"} object per line, UTF-8, '\n'
// separated. Reading streams (one line in memory at a time), so `quill prepare` and other consumers can walk a
// cleaned corpus of any size. Non-ASCII characters are written as-is, not \u-escaped.
// Does not handle: other JSONL layouts (the cleaner's input side reads arbitrary JSONL).
using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Quill.Data.Cleaning;

/// <summary>One kept document of a cleaned corpus.</summary>
public sealed record CleanDocument(string Id, string Source, string Text);

/// <summary>Streaming reader (and line writer) for clean.jsonl.</summary>
public static class CleanJsonl
{
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = true };

    /// <summary>The texts of a clean.jsonl, in file order.</summary>
    public static IEnumerable<string> ReadTexts(string path)
    {
        foreach (CleanDocument doc in ReadDocuments(path)) yield return doc.Text;
    }

    /// <summary>The documents of a clean.jsonl, in file order. A malformed line throws InvalidFileException naming it.</summary>
    public static IEnumerable<CleanDocument> ReadDocuments(string path, long maxBytes = long.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new InvalidFileException($"{path} not found; run `quill data clean --out DIR` first and pass DIR/clean.jsonl.");
        return ReadCore(path, maxBytes);
    }

    private static IEnumerable<CleanDocument> ReadCore(string path, long maxBytes)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        Stream s = maxBytes == long.MaxValue ? fs : new BoundedReadStream(fs, maxBytes);
        var lines = new ByteLineReader(s, int.MaxValue);
        long lineNo = 0;
        while (lines.Next(out ReadOnlySpan<byte> line, out _))
        {
            lineNo++;
            if (line.IsEmpty) continue;
            yield return Parse(line, path, lineNo);
        }
    }

    private static CleanDocument Parse(ReadOnlySpan<byte> line, string path, long lineNo)
    {
        string? id = null, source = null, text = null;
        try
        {
            var reader = new Utf8JsonReader(line);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) throw new JsonException("not an object");
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                string name = reader.GetString()!;
                reader.Read();
                string? value = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray) reader.Skip();
                switch (name)
                {
                    case "id": id = value; break;
                    case "source": source = value; break;
                    case "text": text = value; break;
                }
            }
        }
        catch (JsonException ex)
        {
            throw new InvalidFileException($"{path} line {lineNo} is not valid JSON ({ex.Message}); clean.jsonl holds one {{\"id\",\"source\",\"text\"}} object per line.", ex);
        }
        if (text == null) throw new InvalidFileException($"{path} line {lineNo} has no string \"text\" field.");
        return new CleanDocument(id ?? "", source ?? "", text);
    }

    /// <summary>Appends one document as a JSON line (with the trailing '\n') to <paramref name="output"/>.</summary>
    public static void WriteLine(IBufferWriter<byte> output, string id, string source, string text)
    {
        using (var w = new Utf8JsonWriter(output, WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("id", id);
            w.WriteString("source", source);
            w.WriteString("text", text);
            w.WriteEndObject();
        }
        output.Write("\n"u8);
    }

    // Reads at most a given number of bytes of the inner stream (a checkpointed prefix of a partial file).
    private sealed class BoundedReadStream(Stream inner, long limit) : Stream
    {
        private long left = limit;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (left <= 0) return 0;
            int n = inner.Read(buffer, offset, (int)Math.Min(count, left));
            left -= n;
            return n;
        }

        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
