// Reads the JSONL task files of the evaluation (GSM8K, MMLU-style, prompt tests, prompt / reference pairs, the
// harness's HellaSwag rows): one JSON value a line, blank lines skipped, at most `limit` items (0: all). A missing
// file, a line that is not JSON, or a line the task's parser rejects raises a one-line error naming file and line.
using System.Text.Json;

namespace Quill.Evaluation;

internal static class JsonlFile
{
    /// <summary>Parses each non-blank line with parse(value, "path:line") (which throws InvalidFileException for a bad item).</summary>
    public static List<T> Read<T>(string path, int limit, Func<JsonElement, string, T> parse) =>
        Parse(File.Exists(path) ? File.ReadLines(path) : throw new InvalidFileException($"{path}: file not found."), path, limit, parse);

    /// <summary>Parses lines of text that came from <paramref name="source"/>.</summary>
    public static List<T> Parse<T>(IEnumerable<string> lines, string source, int limit, Func<JsonElement, string, T> parse)
    {
        ArgumentNullException.ThrowIfNull(lines);
        ArgumentNullException.ThrowIfNull(parse);
        var items = new List<T>();
        int number = 0;
        foreach (string raw in lines)
        {
            number++;
            if (raw.Trim().Length == 0) continue;
            if (limit > 0 && items.Count >= limit) break;
            string where = $"{source}:{number}";
            try
            {
                using var doc = JsonDocument.Parse(raw);
                items.Add(parse(doc.RootElement, where));
            }
            catch (JsonException ex)
            {
                throw new InvalidFileException($"{where}: not a JSON object ({ex.Message.Split('.')[0]}).");
            }
        }
        return items;
    }

    /// <summary>A string property's value, or null when the value is not an object or has no such string.</summary>
    public static string? Text(JsonElement r, string name) =>
        r.ValueKind == JsonValueKind.Object && r.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}
