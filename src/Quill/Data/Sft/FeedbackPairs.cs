// Turns the web chat's feedback (Quill.Server.FeedbackLog's JSONL: time, model, rating "up" | "down", conversation,
// prompt messages, reply) into preference pairs for `quill finetune --method dpo` (TRL's prompt / chosen / rejected).
// Ratings are grouped by conversation id and prompt (the exact messages before the reply), so replies to the same
// turn of the same conversation, the first answer and its regenerations, meet; lines written before the web chat sent
// a conversation id group by prompt alone. A reply rated more than once keeps its last rating. In a group every
// thumbs-up reply pairs with every thumbs-down reply; a group with ratings of one kind only is unpaired (counted, and
// written with --unpaired as TRL's unpaired / KTO rows: prompt, completion, label). Lines that cannot be read (a torn
// last line, another file) are counted, never silently dropped.
// Layouts: messages (TRL conversational: prompt as messages, replies as one assistant message; fine-tuning renders it
// with the model's chat template) or plain (the plain transcript a Quill checkpoint is served with: prompt
// "User: ...\n\nAssistant:", replies after a space, as Data.StoryInstructions writes them).
// Does not handle: pairing across conversations, ratings of edited messages, weighting repeated pairs.
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Quill.Tokenization.ChatTemplates;

namespace Quill.Data.Sft;

/// <summary>How exported prompts and replies are written.</summary>
public enum FeedbackLayout
{
    /// <summary>Prompt as chat messages, each reply as one assistant message (TRL conversational).</summary>
    Messages,

    /// <summary>Prompt as the plain transcript text ending with "Assistant:", replies as text after a space.</summary>
    Plain,
}

/// <summary>What an export read and wrote.</summary>
public sealed record FeedbackExportReport(int Lines, int Unreadable, int Ratings, int Superseded, int Groups, int Pairs, int Unpaired)
{
    /// <summary>One line for a console.</summary>
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"{Lines} lines, {Ratings} rated replies in {Groups} prompts{(Superseded > 0 ? $" ({Superseded} earlier ratings replaced by a later one)" : "")}{(Unreadable > 0 ? $", {Unreadable} unreadable lines skipped" : "")}; {Pairs} pairs, {Unpaired} replies unpaired");
}

/// <summary>Exports web-chat feedback as preference pairs.</summary>
public static class FeedbackPairs
{
    private sealed record Rating(string Key, List<ChatMessage> Prompt, string Reply, bool Up);

    /// <summary>
    /// Reads the feedback files in order, writes pairs to outPath (and unpaired ratings to unpairedPath when given),
    /// both atomically. InvalidFileException for a missing input or one without a single rating.
    /// </summary>
    public static FeedbackExportReport Export(IReadOnlyList<string> inputs, string outPath, string? unpairedPath = null, FeedbackLayout layout = FeedbackLayout.Messages)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(outPath);
        if (inputs.Count == 0) throw new InvalidConfigException("give at least one feedback file (--in FILE).");
        int lines = 0, unreadable = 0, superseded = 0;
        var latest = new Dictionary<(string Key, string Reply), Rating>();
        var order = new List<(string Key, string Reply)>();
        foreach (string path in inputs)
        {
            if (!File.Exists(path)) throw new InvalidFileException($"{path}: file not found; pass the JSONL file `quill serve --feedback FILE` writes.");
            foreach (string text in File.ReadLines(path))
            {
                if (string.IsNullOrWhiteSpace(text)) continue;
                lines++;
                var r = Parse(text);
                if (r == null)
                {
                    unreadable++;
                    continue;
                }
                var id = (r.Key, r.Reply);
                if (latest.ContainsKey(id)) superseded++;
                else order.Add(id);
                latest[id] = r;
            }
        }
        if (latest.Count == 0)
            throw new InvalidFileException($"{string.Join(", ", inputs)}: no ratings ({lines} lines, {unreadable} unreadable); rate replies in the web chat of `quill serve --feedback FILE` first.");
        var groups = order.Select(id => latest[id]).GroupBy(r => r.Key).ToList();
        var pairs = new StringBuilder();
        var unpaired = new StringBuilder();
        int nPairs = 0, nUnpaired = 0;
        foreach (var g in groups)
        {
            var ups = g.Where(r => r.Up).ToList();
            var downs = g.Where(r => !r.Up).ToList();
            if (ups.Count == 0 || downs.Count == 0)
            {
                foreach (var r in g)
                {
                    unpaired.Append(Line(layout, r.Prompt, ("completion", r.Reply), null, r.Up)).Append('\n');
                    nUnpaired++;
                }
                continue;
            }
            foreach (var up in ups)
            {
                foreach (var down in downs)
                {
                    pairs.Append(Line(layout, up.Prompt, ("chosen", up.Reply), ("rejected", down.Reply), null)).Append('\n');
                    nPairs++;
                }
            }
        }
        AtomicFile.WriteAllText(outPath, pairs.ToString());
        if (unpairedPath != null) AtomicFile.WriteAllText(unpairedPath, unpaired.ToString());
        return new FeedbackExportReport(lines, unreadable, latest.Count, superseded, groups.Count, nPairs, nUnpaired);
    }

    /// <summary>One feedback line as a rating, or null when it is not one.</summary>
    private static Rating? Parse(string text)
    {
        try
        {
            using var doc = JsonDocument.Parse(text);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) return null;
            string? rating = Str(root, "rating"), reply = Str(root, "reply");
            if (rating is not ("up" or "down") || reply == null || !root.TryGetProperty("prompt", out var prompt) || prompt.ValueKind != JsonValueKind.Array) return null;
            var messages = new List<ChatMessage>();
            foreach (var m in prompt.EnumerateArray())
            {
                if (m.ValueKind != JsonValueKind.Object) return null;
                string? role = Str(m, "role"), content = Str(m, "content");
                if (role is not ("system" or "user" or "assistant") || content == null) return null;
                messages.Add(new ChatMessage(role, content));
            }
            if (messages.Count == 0 || messages[^1].Role != "user") return null; // a reply answers a user turn
            string key = (Str(root, "conversation") ?? "") + "\u0001" + string.Join("\u0002", messages.Select(m => m.Role + "\u0003" + m.Content));
            return new Rating(key, messages, reply, rating == "up");
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string? Str(JsonElement o, string key) => o.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    /// <summary>A pair line (second given) or an unpaired line (label given) in the layout.</summary>
    private static string Line(FeedbackLayout layout, List<ChatMessage> prompt, (string Field, string Reply) first, (string Field, string Reply)? second, bool? label)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            if (layout == FeedbackLayout.Plain) w.WriteString("prompt", PlainTranscript.Render(prompt, addGenerationPrompt: true));
            else
            {
                w.WritePropertyName("prompt");
                WriteMessages(w, prompt);
            }
            foreach (var (field, reply) in second is { } s ? new[] { first, s } : [first])
            {
                if (layout == FeedbackLayout.Plain) w.WriteString(field, " " + reply.Trim());
                else
                {
                    w.WritePropertyName(field);
                    WriteMessages(w, [new ChatMessage("assistant", reply)]);
                }
            }
            if (label is bool l) w.WriteBoolean("label", l);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    private static void WriteMessages(Utf8JsonWriter w, IEnumerable<ChatMessage> messages)
    {
        w.WriteStartArray();
        foreach (var m in messages)
        {
            w.WriteStartObject();
            w.WriteString("role", m.Role);
            w.WriteString("content", m.Content);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }
}
