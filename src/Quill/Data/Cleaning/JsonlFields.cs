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
        try
        {
            using JsonDocument doc = JsonDocument.Parse(raw.Bytes);
            JsonElement root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) return new SkipRecord(raw.Source, "invalid_json", $"line is a JSON {root.ValueKind.ToString().ToLowerInvariant()}, not an object");
            if (!root.TryGetProperty(cfg.TextField, out JsonElement t))
            {
                return new SkipRecord(raw.Source, "missing_text_field", $"no \"{cfg.TextField}\" field (set input.text_field)");
            }
            if (t.ValueKind != JsonValueKind.String) return new SkipRecord(raw.Source, "text_field_not_string", $"\"{cfg.TextField}\" is a {t.ValueKind.ToString().ToLowerInvariant()}");
            text = t.GetString()!;
            if (!string.IsNullOrEmpty(cfg.IdField) && root.TryGetProperty(cfg.IdField, out JsonElement i))
            {
                id = i.ValueKind switch
                {
                    JsonValueKind.String => i.GetString(),
                    JsonValueKind.Number => i.GetRawText(),
                    _ => null,
                };
            }
            return null;
        }
        catch (JsonException ex)
        {
            string msg = ex.Message.ReplaceLineEndings(" ");
            return new SkipRecord(raw.Source, "invalid_json", msg.Length > 160 ? msg[..160] : msg);
        }
        catch (InvalidOperationException ex)
        {
            return new SkipRecord(raw.Source, "invalid_json", ex.Message.ReplaceLineEndings(" "));
        }
    }
}
