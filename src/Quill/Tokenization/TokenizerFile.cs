// Quill's own tokenizer file: one JSON object {"quill_tokenizer": 1, "family": "...", ...}. This file holds the
// shared helpers (atomic write, header check, typed field access with one-line errors); each family writes and
// reads its own fields. It does not parse foreign formats (tiktoken, tokenizer.json, .model, GGUF): see
// TokenizerLoader for those.
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Quill.Tokenization;

/// <summary>Reads and writes Quill's JSON tokenizer files.</summary>
public static class TokenizerFile
{
    /// <summary>The format version written in the "quill_tokenizer" field.</summary>
    public const int Version = 1;

    private static readonly JsonSerializerOptions WriteOptions = new() { WriteIndented = false };

    /// <summary>A new JSON object with the header fields set.</summary>
    public static JsonObject NewObject(string family) => new() { ["quill_tokenizer"] = Version, ["family"] = family };

    /// <summary>Writes the object to path through a temporary file, so a crash never leaves half a file.</summary>
    public static void WriteAtomic(string path, JsonObject obj)
    {
        ArgumentNullException.ThrowIfNull(obj);
        WriteAtomic(path, Encoding.UTF8.GetBytes(obj.ToJsonString(WriteOptions)));
    }

    /// <summary>Writes bytes to path through a temporary file in the same folder, flushed, then renamed (AtomicFile).</summary>
    public static void WriteAtomic(string path, ReadOnlySpan<byte> bytes) => AtomicFile.WriteAllBytes(path, bytes);

    /// <summary>Parses a Quill tokenizer file's text; throws InvalidFileException when it is not one.</summary>
    public static JsonObject Parse(string path, string text)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(text);
        }
        catch (JsonException ex)
        {
            throw new InvalidFileException($"{path}: not valid JSON ({ex.Message.Split('\n')[0]}); re-create the tokenizer file.", ex);
        }
        if (node is not JsonObject obj || obj["quill_tokenizer"] is null)
            throw new InvalidFileException($"{path}: not a Quill tokenizer file (no \"quill_tokenizer\" field).");
        int version = GetInt(path, obj, "quill_tokenizer");
        if (version != Version)
            throw new InvalidFileException($"{path}: Quill tokenizer format version {version} is not supported (expected {Version}); re-save it with this Quill.");
        return obj;
    }

    /// <summary>A required string field.</summary>
    public static string GetString(string path, JsonObject obj, string field)
    {
        ArgumentNullException.ThrowIfNull(obj);
        if (obj[field] is JsonValue v && v.TryGetValue(out string? s)) return s;
        throw new InvalidFileException($"{path}: field \"{field}\" is missing or not a string.");
    }

    /// <summary>An optional string field.</summary>
    public static string? GetOptionalString(string path, JsonObject obj, string field)
    {
        ArgumentNullException.ThrowIfNull(obj);
        if (obj[field] is null) return null;
        return GetString(path, obj, field);
    }

    /// <summary>A required integer field.</summary>
    public static int GetInt(string path, JsonObject obj, string field)
    {
        ArgumentNullException.ThrowIfNull(obj);
        if (obj[field] is JsonValue v && v.TryGetValue(out int i)) return i;
        if (obj[field] is JsonValue d && d.TryGetValue(out double x) && x == Math.Floor(x) && Math.Abs(x) < int.MaxValue) return (int)x;
        throw new InvalidFileException($"{path}: field \"{field}\" is missing or not an integer.");
    }

    /// <summary>An optional integer field (fallback when absent or null).</summary>
    public static int GetOptionalInt(string path, JsonObject obj, string field, int fallback)
    {
        ArgumentNullException.ThrowIfNull(obj);
        return obj[field] is null ? fallback : GetInt(path, obj, field);
    }

    /// <summary>A required array field.</summary>
    public static JsonArray GetArray(string path, JsonObject obj, string field)
    {
        ArgumentNullException.ThrowIfNull(obj);
        return obj[field] as JsonArray ?? throw new InvalidFileException($"{path}: field \"{field}\" is missing or not an array.");
    }

    /// <summary>The "special_tokens" object {text: id} (empty when absent).</summary>
    public static Dictionary<string, int> GetSpecials(string path, JsonObject obj)
    {
        ArgumentNullException.ThrowIfNull(obj);
        var result = new Dictionary<string, int>(StringComparer.Ordinal);
        if (obj["special_tokens"] is null) return result;
        if (obj["special_tokens"] is not JsonObject sp) throw new InvalidFileException($"{path}: field \"special_tokens\" must be an object {{text: id}}.");
        foreach (var (k, v) in sp)
        {
            if (v is JsonValue jv && jv.TryGetValue(out int id)) result[k] = id;
            else throw new InvalidFileException($"{path}: special token \"{k}\" has no integer id.");
        }
        return result;
    }

    /// <summary>The {text: id} map as a JSON object.</summary>
    public static JsonObject SpecialsToJson(IReadOnlyDictionary<string, int> specials)
    {
        ArgumentNullException.ThrowIfNull(specials);
        var o = new JsonObject();
        foreach (var (k, v) in specials.OrderBy(p => p.Value)) o[k] = v;
        return o;
    }
}
