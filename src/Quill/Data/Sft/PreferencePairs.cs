// Preference pairs for DPO / IPO / ORPO / SimPO, in TRL's preference format (wave2-facts section 2, "Dataset"), one
// JSON object per line:
//   {"prompt": "text", "chosen": "text", "rejected": "text"}                       standard: raw text, no template
//   {"prompt" | "messages": [turns], "chosen": [turns] | "text", "rejected": ...}  conversational: the prompt's turns
//                                                                                  then the reply's (a string is one
//                                                                                  assistant turn)
//   {"chosen": [turns], "rejected": [turns]}                                       implicit prompt: the turns before
//                                                                                  the last, which must be the same
// Each side becomes an SftExample (prompt turns + reply) and is rendered by the SftRenderer, so a pair's prompt is laid
// out exactly as SFT and chat lay it out, and only the reply and its end token count (the completion log-prob).
// Counted skips, never errors: an empty prompt or reply, chosen equal to rejected, a pair whose longer side does not
// fit the context (no truncation: a cut reply would be compared with an uncut one), a side without a trained token.
// One-line InvalidFileException (file:line): invalid JSON, a missing chosen / rejected, turns out of order.
// Does not handle: unpaired (KTO) data, images, tool calls.
using System.Globalization;
using System.Text.Json;
using Quill.Tokenization.ChatTemplates;

namespace Quill.Data.Sft;

/// <summary>One pair as read: both sides as SFT examples sharing their prompt turns.</summary>
public sealed record PreferencePair(int Line, SftExample Chosen, SftExample Rejected);

/// <summary>A rendered pair.</summary>
public sealed record PreferenceTokens(int Line, SftTokens Chosen, SftTokens Rejected);

/// <summary>Counts of a preference file: pairs read, skipped and why, per split.</summary>
public sealed record PreferenceReport
{
    public required string File { get; init; }

    public required string Layout { get; init; }

    public int Read { get; init; }

    /// <summary>An empty prompt, chosen or rejected.</summary>
    public int SkippedEmpty { get; init; }

    /// <summary>Chosen equal to rejected.</summary>
    public int SkippedIdentical { get; init; }

    /// <summary>A side longer than the context (seq_len + 1 tokens).</summary>
    public int SkippedTooLong { get; init; }

    /// <summary>A side without a trained token.</summary>
    public int SkippedNoTarget { get; init; }

    public int Train { get; init; }

    public int Val { get; init; }

    /// <summary>One line for a console.</summary>
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"{File}: {Read} pairs; layout {Layout}; {Train} train / {Val} held out"
        + $"{(SkippedEmpty > 0 ? $"; {SkippedEmpty} skipped (empty field)" : "")}{(SkippedIdentical > 0 ? $"; {SkippedIdentical} skipped (chosen = rejected)" : "")}"
        + $"{(SkippedTooLong > 0 ? $"; {SkippedTooLong} skipped (longer than the context)" : "")}{(SkippedNoTarget > 0 ? $"; {SkippedNoTarget} skipped (nothing to score)" : "")}");
}

/// <summary>Reads, renders and splits preference pairs.</summary>
public sealed class PreferenceDataset
{
    private PreferenceDataset(IReadOnlyList<PreferenceTokens> train, IReadOnlyList<PreferenceTokens> val, PreferenceReport report)
    {
        Train = train;
        Val = val;
        Report = report;
    }

    public IReadOnlyList<PreferenceTokens> Train { get; }

    public IReadOnlyList<PreferenceTokens> Val { get; }

    public PreferenceReport Report { get; }

    /// <summary>
    /// Reads path, renders each side with renderer, skips (and counts) what cannot be compared, holds out
    /// valFraction by content hash. maxTokens: the most tokens a side may hold (seq_len + 1).
    /// </summary>
    public static PreferenceDataset Load(string path, SftRenderer renderer, int maxTokens, double valFraction)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(renderer);
        if (maxTokens < 2) throw new InvalidConfigException($"preference pairs need room for at least 2 tokens (got {maxTokens}); raise seq_len.");
        if (!(valFraction >= 0 && valFraction < 1)) throw new InvalidConfigException($"--val-fraction (the held-out share of pairs) must be in [0, 1) (got {valFraction}).");
        if (!System.IO.File.Exists(path)) throw new InvalidFileException($"{path}: file not found; pass a JSONL file with one preference pair per line.");
        var train = new List<PreferenceTokens>();
        var val = new List<PreferenceTokens>();
        int read = 0, empty = 0, identical = 0, tooLong = 0, noTarget = 0, line = 0;
        bool raw = true;
        foreach (string text in System.IO.File.ReadLines(path))
        {
            line++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            read++;
            var pair = Parse(text, path, line, out bool isIdentical);
            if (isIdentical)
            {
                identical++;
                continue;
            }
            if (pair == null)
            {
                empty++;
                continue;
            }
            raw &= pair.Chosen.Format == SftFormat.PromptCompletion;
            var c = renderer.Render(pair.Chosen);
            var r = renderer.Render(pair.Rejected);
            if (c.Ids.Length > maxTokens || r.Ids.Length > maxTokens)
            {
                tooLong++;
                continue;
            }
            if (c.TrainedTargets == 0 || r.TrainedTargets == 0)
            {
                noTarget++;
                continue;
            }
            var tokens = new PreferenceTokens(line, c, r);
            if (SftDataset.IsHeldOut(pair.Chosen, valFraction)) val.Add(tokens);
            else train.Add(tokens);
        }
        if (read == 0) throw new InvalidFileException($"{path}: no pairs; write one JSON object with prompt, chosen and rejected per line.");
        var report = new PreferenceReport
        {
            File = path, Layout = raw ? SftDataset.RawLayout : renderer.Layout, Read = read, SkippedEmpty = empty, SkippedIdentical = identical,
            SkippedTooLong = tooLong, SkippedNoTarget = noTarget, Train = train.Count, Val = val.Count,
        };
        return new PreferenceDataset(train, val, report);
    }

    /// <summary>
    /// One line's pair; null when a field is empty (identical: chosen equals rejected). InvalidFileException names
    /// source:line for a line that is not a pair.
    /// </summary>
    public static PreferencePair? Parse(string json, string source, int line, out bool identical)
    {
        ArgumentNullException.ThrowIfNull(json);
        identical = false;
        string at = $"{source}:{line}";
        using (var doc = SftReader.ParseObject(json, at, "pair"))
        {
            var root = doc.RootElement;
            if (!root.TryGetProperty("chosen", out var chosen) || !root.TryGetProperty("rejected", out var rejected))
            {
                string fields = string.Join(", ", root.EnumerateObject().Select(p => p.Name).Take(6));
                throw new InvalidFileException($"{at}: not a preference pair (fields: {(fields.Length > 0 ? fields : "none")}); write prompt (or messages), chosen and rejected.");
            }
            bool hasPrompt = root.TryGetProperty("prompt", out var prompt);
            if (!hasPrompt && root.TryGetProperty("messages", out var messages))
            {
                prompt = messages;
                hasPrompt = true;
            }
            if (hasPrompt && prompt.ValueKind == JsonValueKind.String && chosen.ValueKind == JsonValueKind.String && rejected.ValueKind == JsonValueKind.String)
            {
                string p = prompt.GetString()!, c = chosen.GetString()!, r = rejected.GetString()!;
                if (c == r && c.Length > 0) identical = true;
                if (identical || string.IsNullOrWhiteSpace(p) || string.IsNullOrWhiteSpace(c) || string.IsNullOrWhiteSpace(r)) return null;
                return new PreferencePair(line,
                    new SftExample(line, SftFormat.PromptCompletion, [new ChatMessage("user", p), new ChatMessage("assistant", c)]),
                    new SftExample(line, SftFormat.PromptCompletion, [new ChatMessage("user", p), new ChatMessage("assistant", r)]));
            }
            List<ChatMessage> head;
            List<ChatMessage> chosenTurns = Reply(at, "chosen", chosen), rejectedTurns = Reply(at, "rejected", rejected);
            if (hasPrompt)
            {
                head = prompt.ValueKind == JsonValueKind.String ? [new ChatMessage("user", prompt.GetString()!)]
                    : SftReader.ReadTurns(at, "prompt", prompt, "role", "content", SftReader.RoleOf);
            }
            else
            {
                // implicit prompt: both sides are whole conversations that differ only in their last turn
                if (chosenTurns.Count < 2 || rejectedTurns.Count != chosenTurns.Count || !chosenTurns.Take(chosenTurns.Count - 1).SequenceEqual(rejectedTurns.Take(rejectedTurns.Count - 1)))
                    throw new InvalidFileException($"{at}: without \"prompt\", chosen and rejected must be conversations that differ only in their last (assistant) turn.");
                head = chosenTurns[..^1];
                chosenTurns = chosenTurns[^1..];
                rejectedTurns = rejectedTurns[^1..];
            }
            if (head.Count == 0 || head.Any(m => string.IsNullOrWhiteSpace(m.Content))) return null;
            if (chosenTurns.SequenceEqual(rejectedTurns))
            {
                identical = true;
                return null;
            }
            var c2 = SftReader.Chat(at, line, SftFormat.Chat, [.. head, .. chosenTurns]);
            var r2 = SftReader.Chat(at, line, SftFormat.Chat, [.. head, .. rejectedTurns]);
            return c2 == null || r2 == null ? null : new PreferencePair(line, c2, r2);
        }
    }

    /// <summary>A reply: a string (one assistant turn) or a list of turns.</summary>
    private static List<ChatMessage> Reply(string at, string field, JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => [new ChatMessage("assistant", e.GetString()!)],
        JsonValueKind.Array => SftReader.ReadTurns(at, field, e, "role", "content", SftReader.RoleOf),
        _ => throw new InvalidFileException($"{at}: \"{field}\" must be a string or a list of turns, found {SftReader.Kind(e)}."),
    };
}
