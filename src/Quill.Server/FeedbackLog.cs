// Thumbs up / down from the web chat, appended to a JSONL file one line per rating: time, model, rating, the
// conversation id (when the client sends one), the prompt (the conversation up to the reply) and the reply.
// `quill feedback export` (Data.Sft.FeedbackPairs) pairs ratings of replies to the same prompt of the same
// conversation (the first answer and its regenerations) into preference data. Lines are written whole under a lock and flushed, so concurrent ratings never interleave. When a
// line would take the file past its cap, the file is first renamed to FILE.1 (replacing an older FILE.1), so the
// feedback on disk never exceeds twice the cap however much is posted.
// Does not handle: more than one rotated file, deduplication of repeated ratings.
using System.Text.Json;
using Quill.Inference;

namespace Quill.Server;

/// <summary>An append-only JSONL feedback file.</summary>
public sealed class FeedbackLog
{
    private readonly object gate = new();

    /// <param name="path">The JSONL file (its folder must exist).</param>
    /// <param name="maxFileBytes">Size at which the file is rotated to path.1.</param>
    public FeedbackLog(string path, long maxFileBytes = 10L << 20)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxFileBytes, 1);
        MaxFileBytes = maxFileBytes;
        Path = System.IO.Path.GetFullPath(path);
        string? dir = System.IO.Path.GetDirectoryName(Path);
        if (dir != null && !Directory.Exists(dir)) throw new InvalidConfigException($"--feedback {path}: folder {dir} does not exist; create it or pick another path.");
    }

    public string Path { get; }

    /// <summary>Size at which the file is rotated to <see cref="Path"/>.1.</summary>
    public long MaxFileBytes { get; }

    /// <summary>Appends one rating.</summary>
    /// <param name="model">Model that wrote the reply.</param>
    /// <param name="rating">"up" or "down".</param>
    /// <param name="prompt">The conversation the reply answers.</param>
    /// <param name="reply">The rated reply.</param>
    /// <param name="conversation">The client's id of the conversation, or null (written as null).</param>
    public void Append(string model, string rating, IReadOnlyList<ChatTurn> prompt, string reply, string? conversation = null)
    {
        var line = new
        {
            time = DateTimeOffset.UtcNow.ToString("o", System.Globalization.CultureInfo.InvariantCulture),
            model,
            rating,
            conversation,
            prompt = prompt.Select(m => new { role = m.Role, content = m.Content }).ToArray(),
            reply,
        };
        byte[] bytes = JsonSerializer.SerializeToUtf8Bytes(line, Api.ApiJson.Options);
        lock (gate)
        {
            var info = new FileInfo(Path);
            if (info.Exists && info.Length > 0 && info.Length + bytes.Length + 1 > MaxFileBytes) File.Move(Path, Path + ".1", overwrite: true);
            using var f = new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.Read);
            f.Write(bytes);
            f.WriteByte((byte)'\n');
            f.Flush(flushToDisk: true);
        }
    }
}
