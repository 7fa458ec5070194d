// Pulls the text (and optional id) out of one input JSONL line, turning every problem into a SkipRecord:
// invalid JSON (including invalid UTF-8), a line that is not an object, a missing text field, a text field that
// is not a string. An id may be a string or a number; other id types are ignored.
// Does not handle: nested field paths (the text field must be a top-level key).
using System.Text.Json;

namespace Quill.Data.Cleaning;

internal static class JsonlFields
{
    /// <summary>Returns null and sets text/id on success, or the reason the line is skipped.</summary>
    public static SkipRecord? Extract(RawDocument raw, InputConfig cfg, out string text, out string? id)
    {
        text = "";
        id = null;
        string? found = null;
        bool sawText = false;
        JsonTokenType textKind = JsonTokenType.None;
        try
        {
            var reader = new Utf8JsonReader(raw.Bytes);
            if (!reader.Read()) return new SkipRecord(raw.Source, "invalid_json", "empty line");
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                return new SkipRecord(raw.Source, "invalid_json", $"line is a JSON {Kind(reader.TokenType)}, not an object");
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                bool isText = reader.ValueTextEquals(cfg.TextField);
                bool isId = !isText && !string.IsNullOrEmpty(cfg.IdField) && reader.ValueTextEquals(cfg.IdField);
                reader.Read();
                if (isText && !sawText)
                {
                    sawText = true;
                    textKind = reader.TokenType;
                    if (reader.TokenType == JsonTokenType.String) found = reader.GetString();
                }
                else if (isId && id == null)
                {
                    id = reader.TokenType switch
                    {
                        JsonTokenType.String => reader.GetString(),
                        JsonTokenType.Number => System.Text.Encoding.UTF8.GetString(reader.ValueSpan),
                        _ => null,
                    };
                }
                if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray) reader.Skip();
            }
            while (reader.Read())
            {
                // Reading to the end validates the rest of the line (trailing garbage throws).
            }
        }
        catch (JsonException ex)
        {
            id = null;
            string msg = ex.Message.ReplaceLineEndings(" ");
            return new SkipRecord(raw.Source, "invalid_json", msg.Length > 160 ? msg[..160] : msg);
        }
        if (!sawText) return new SkipRecord(raw.Source, "missing_text_field", $"no \"{cfg.TextField}\" field (set input.text_field)");
        if (found == null) return new SkipRecord(raw.Source, "text_field_not_string", $"\"{cfg.TextField}\" is a {Kind(textKind)}");
        text = found;
        return null;
    }

    private static string Kind(JsonTokenType t) => t switch
    {
        JsonTokenType.StartArray => "array",
        JsonTokenType.StartObject => "object",
        JsonTokenType.Number => "number",
        JsonTokenType.True or JsonTokenType.False => "boolean",
        JsonTokenType.Null => "null",
        JsonTokenType.String => "string",
        _ => t.ToString().ToLowerInvariant(),
    };
}
