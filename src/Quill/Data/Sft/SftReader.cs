// Reads a JSONL file of supervised fine-tuning examples, detecting each line's shape by its fields (one file may
// mix shapes), after wave2-facts 1.3 (torchtune data/_messages.py, TRL docs/source/dataset_formats.md):
//   Alpaca            {"instruction", "input" (optional), "output"}
//   chat              {"messages": [{"role": "system|user|assistant", "content"}, ...]}
//   ShareGPT          {"conversations": [{"from": "system|human|gpt", "value"}, ...]}  (human -> user, gpt -> assistant)
//   prompt/completion {"prompt", "completion"}: two strings (raw text), or two message lists (conversational form,
//                     read as one chat)
// Turns must alternate user / assistant after an optional leading system message and end with an assistant turn.
// Blank lines are ignored. An example whose reply (output, completion or any assistant turn) is empty or only
// whitespace is skipped and counted (SftFile.SkippedEmpty), not an error: large public sets hold a few. Everything
// else that is wrong (invalid JSON, an unknown shape, a field of the wrong type, an unknown role, turns out of
// order) raises InvalidFileException naming the file and line.
// Does not handle: JSON arrays of examples (.json), Parquet, tool calls, extra columns (they are ignored).
using System.Text.Json;
using Quill.Tokenization.ChatTemplates;

namespace Quill.Data.Sft;

/// <summary>The examples of a file and the lines skipped for an empty reply.</summary>
public sealed record SftFile(string Path, IReadOnlyList<SftExample> Examples, IReadOnlyList<int> SkippedEmptyLines)
{
    public int SkippedEmpty => SkippedEmptyLines.Count;
}

/// <summary>Reads SFT examples from JSONL.</summary>
public static class SftReader
{
    private const string Shapes = "Alpaca (instruction, output), chat (messages), ShareGPT (conversations) or prompt/completion";

    /// <summary>Reads every example of a JSONL file; InvalidFileException names the file and line of a bad one.</summary>
    public static SftFile Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new InvalidFileException($"{path}: file not found; pass a JSONL file with one example per line.");
        var examples = new List<SftExample>();
        var skipped = new List<int>();
        int line = 0;
        foreach (string text in File.ReadLines(path))
        {
            line++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            var example = Parse(text, path, line);
            if (example == null) skipped.Add(line);
            else examples.Add(example);
        }
        if (examples.Count == 0 && skipped.Count == 0) throw new InvalidFileException($"{path}: no examples; write one JSON object per line.");
        return new SftFile(path, examples, skipped);
    }

    /// <summary>One line's example, or null when its reply is empty; source and line name it in errors.</summary>
    public static SftExample? Parse(string json, string source, int line)
    {
        ArgumentNullException.ThrowIfNull(json);
        string at = $"{source}:{line}";
        using (var doc = ParseObject(json, at, "example object"))
        {
            var root = doc.RootElement;
            if (root.TryGetProperty("messages", out var messages)) return Chat(at, line, SftFormat.Chat, ReadTurns(at, "messages", messages, "role", "content", RoleOf));
            if (root.TryGetProperty("conversations", out var conv)) return Chat(at, line, SftFormat.ShareGpt, ReadTurns(at, "conversations", conv, "from", "value", ShareGptRole));
            if (root.TryGetProperty("instruction", out _) && root.TryGetProperty("output", out _))
            {
                string instruction = Text(at, root, "instruction")!, output = Text(at, root, "output")!;
                string? input = root.TryGetProperty("input", out var i) && i.ValueKind != JsonValueKind.Null ? Text(at, root, "input") : null;
                if (string.IsNullOrWhiteSpace(output)) return null;
                return new SftExample(line, SftFormat.Alpaca, [new ChatMessage("user", instruction), new ChatMessage("assistant", output)], input);
            }
            if (root.TryGetProperty("prompt", out var prompt) && root.TryGetProperty("completion", out var completion))
            {
                if (prompt.ValueKind == JsonValueKind.Array || completion.ValueKind == JsonValueKind.Array)
                {
                    var turns = ReadTurns(at, "prompt", prompt, "role", "content", RoleOf);
                    turns.AddRange(ReadTurns(at, "completion", completion, "role", "content", RoleOf));
                    return Chat(at, line, SftFormat.Chat, turns);
                }
                string p = Text(at, root, "prompt")!, c = Text(at, root, "completion")!;
                if (string.IsNullOrWhiteSpace(c)) return null;
                return new SftExample(line, SftFormat.PromptCompletion, [new ChatMessage("user", p), new ChatMessage("assistant", c)]);
            }
            string fields = string.Join(", ", root.EnumerateObject().Select(p => p.Name).Take(6));
            throw new InvalidFileException($"{at}: unknown example shape (fields: {(fields.Length > 0 ? fields : "none")}); use {Shapes}.");
        }
    }

    /// <summary>A line's JSON object; InvalidFileException naming `at` for invalid JSON or another kind of value.</summary>
    internal static JsonDocument ParseObject(string json, string at, string what)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new InvalidFileException($"{at}: invalid JSON (at column {(e.BytePositionInLine ?? 0) + 1}); write one JSON object per line.");
        }
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
        {
            string found = Kind(doc.RootElement);
            doc.Dispose();
            throw new InvalidFileException($"{at}: expected a JSON object, found {found}; write one {what} per line.");
        }
        return doc;
    }

    /// <summary>Checks the order of turns; null when an assistant turn is empty.</summary>
    internal static SftExample? Chat(string at, int line, SftFormat format, List<ChatMessage> turns)
    {
        int start = turns.Count > 0 && turns[0].Role == "system" ? 1 : 0;
        if (turns.Count - start < 2) throw new InvalidFileException($"{at}: needs at least one user turn followed by an assistant turn.");
        for (int i = start; i < turns.Count; i++)
        {
            string want = (i - start) % 2 == 0 ? "user" : "assistant";
            if (turns[i].Role != want)
                throw new InvalidFileException($"{at}: turn {i} is {turns[i].Role} where {want} belongs; turns alternate user, assistant after an optional first system message.");
        }
        if (turns[^1].Role != "assistant") throw new InvalidFileException($"{at}: the last turn is a user turn; end each conversation with the assistant's reply.");
        if (turns.Any(t => t.Role == "assistant" && string.IsNullOrWhiteSpace(t.Content))) return null;
        return new SftExample(line, format, turns);
    }

    internal static List<ChatMessage> ReadTurns(string at, string field, JsonElement list, string roleKey, string textKey, Func<string, string?> mapRole)
    {
        if (list.ValueKind != JsonValueKind.Array) throw new InvalidFileException($"{at}: \"{field}\" must be a list of turns, found {Kind(list)}.");
        var turns = new List<ChatMessage>();
        int i = 0;
        foreach (var turn in list.EnumerateArray())
        {
            string name = $"{field}[{i}]";
            if (turn.ValueKind != JsonValueKind.Object) throw new InvalidFileException($"{at}: {name} must be an object with \"{roleKey}\" and \"{textKey}\", found {Kind(turn)}.");
            string raw = Text(at, turn, roleKey, name)!;
            string role = mapRole(raw) ?? throw new InvalidFileException($"{at}: {name}.{roleKey} \"{raw}\" is not supported; use {(roleKey == "from" ? "system, human or gpt" : "system, user or assistant")}.");
            turns.Add(new ChatMessage(role, Text(at, turn, textKey, name)!));
            i++;
        }
        return turns;
    }

    internal static string? RoleOf(string role) => role is "system" or "user" or "assistant" ? role : null;

    private static string? ShareGptRole(string from) => from switch
    {
        "system" => "system",
        "human" => "user",
        "gpt" => "assistant",
        _ => null,
    };

    /// <summary>A required string field.</summary>
    internal static string? Text(string at, JsonElement obj, string key, string? owner = null)
    {
        string name = owner == null ? $"\"{key}\"" : $"{owner}.{key}";
        if (!obj.TryGetProperty(key, out var v)) throw new InvalidFileException($"{at}: {name} is missing.");
        if (v.ValueKind != JsonValueKind.String) throw new InvalidFileException($"{at}: {name} must be a string, found {Kind(v)}.");
        return v.GetString();
    }

    internal static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "a list",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };
}
