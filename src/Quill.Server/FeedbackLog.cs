// Thumbs up / down from the web chat, appended to a JSONL file one line per rating: time, model, rating,
// the prompt (the conversation up to the reply) and the reply. The fine-tuning work turns these lines into
// preference data. Lines are written whole under a lock and flushed, so concurrent ratings never interleave.
// Does not handle: rotation, deduplication of repeated ratings.
using System.Text.Json;
using Quill.Inference;

namespace Quill.Server;

/// <summary>An append-only JSONL feedback file.</summary>
public sealed class FeedbackLog
{
    private readonly object gate = new();

    public FeedbackLog(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        Path = System.IO.Path.GetFullPath(path);
        string? dir = System.IO.Path.GetDirectoryName(Path);
        if (dir != null && !Directory.Exists(dir)) throw new InvalidConfigException($"--feedback {path}: folder {dir} does not exist; create it or pick another path.");
    }

    public string Path { get; }

    /// <summary>Appends one rating.</summary>
    /// <param name="model">Model that wrote the reply.</param>
    /// <param name="rating">"up" or "down".</param>
    /// <param name="prompt">The conversation the reply answers.</param>
    /// <param name="reply">The rated reply.</param>
    public void Append(string model, string rating, IReadOnlyList<ChatTurn> prompt, string reply)
    {
        var line = new
        {
            time = DateTimeOffset.UtcNow.ToString("o", System.Globalization.CultureInfo.InvariantCulture),
            model,
            rating,
            prompt = prompt.Select(m => new { role = m.Role, content = m.Content }).ToArray(),
            reply,
        };
        byte[] bytes = JsonSerializer.SerializeToUtf8Bytes(line, Api.ApiJson.Options);
        lock (gate)
        {
            using var f = new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.Read);
            f.Write(bytes);
            f.WriteByte((byte)'\n');
            f.Flush(flushToDisk: true);
        }
    }
}
