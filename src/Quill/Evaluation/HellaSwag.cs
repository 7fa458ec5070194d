// HellaSwag items from the two files people have: llama.cpp's text format (6 lines per task: context, gold index
// 0-3, four endings; the context already "activity_label: ctx" and preprocessed by klosax's extractor, see
// ../shared/data/README.md section 7) and lm-evaluation-harness's JSONL (the Hugging Face rows: activity_label,
// ctx_a, ctx_b, endings, label), to which the harness's preprocessing is applied (lm_eval/tasks/hellaswag/utils.py,
// ../shared/research/wave2-facts.md 4.2): ctx = ctx_a + " " + ctx_b.capitalize(), query = preprocess(activity_label
// + ": " + ctx), choices = preprocess(ending), where preprocess strips, turns " [title]" into ". ", drops every
// "[...]" and collapses double spaces. The two differ: the text file keeps ctx_b as it is (lower case), so the same
// model scores slightly differently on the two files.
// Malformed input (a bad gold index, a missing field, a task cut short) raises a one-line error naming file and line.
// Does not handle: the train split, or shuffling tasks as llama.cpp's --hellaswag does (items stay in file order).
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Quill.Evaluation;

/// <summary>Reads HellaSwag tasks.</summary>
public static partial class HellaSwag
{
    /// <summary>Reads either format: JSONL when the first non-blank character is '{', else llama.cpp's 6-line text.</summary>
    public static IReadOnlyList<ChoiceItem> Read(string path, int limit = 0)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new InvalidFileException($"{path}: file not found.");
        string text = File.ReadAllText(path);
        return text.TrimStart().StartsWith('{') ? ParseJsonl(text, path, limit) : ParseText(text, path, limit);
    }

    /// <summary>llama.cpp's format: 6 lines per task (context, gold 0-3, four endings).</summary>
    public static IReadOnlyList<ChoiceItem> ParseText(string text, string source, int limit = 0)
    {
        ArgumentNullException.ThrowIfNull(text);
        var lines = text.Split('\n');
        int count = lines.Length;
        if (count > 0 && lines[^1].Length == 0) count--; // the newline ending the last line
        if (count % 6 != 0)
            throw new InvalidFileException($"{source}:{count}: {count} lines is not a whole number of 6-line tasks (context, gold 0-3, four endings); the last task starts at line {count - count % 6 + 1}.");
        var items = new List<ChoiceItem>(count / 6);
        for (int t = 0; t < count / 6 && (limit <= 0 || items.Count < limit); t++)
        {
            int at = t * 6;
            string Line(int i) => lines[at + i].TrimEnd('\r');
            if (!int.TryParse(Line(1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int gold) || gold > 3)
                throw new InvalidFileException($"{source}:{at + 2}: the gold ending must be 0, 1, 2 or 3 (got '{Line(1)}'); each task is 6 lines: context, gold, four endings.");
            items.Add(new ChoiceItem(Line(0), [Line(2), Line(3), Line(4), Line(5)], gold, (t + 1).ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }
        return items;
    }

    /// <summary>lm-evaluation-harness's rows, preprocessed as the harness does.</summary>
    public static IReadOnlyList<ChoiceItem> ParseJsonl(string text, string source, int limit = 0)
    {
        ArgumentNullException.ThrowIfNull(text);
        int count = 0;
        return JsonlFile.Parse(text.Split('\n'), source, limit, (r, where) =>
        {
            string Field(string name) => JsonlFile.Text(r, name)
                ?? throw new InvalidFileException($"{where}: missing text field \"{name}\" (a HellaSwag row has activity_label, ctx_a, ctx_b, endings, label).");
            if (!r.TryGetProperty("endings", out var e) || e.ValueKind != JsonValueKind.Array || e.GetArrayLength() < 2 || e.EnumerateArray().Any(x => x.ValueKind != JsonValueKind.String))
                throw new InvalidFileException($"{where}: \"endings\" must be an array of at least two strings.");
            string[] endings = [.. e.EnumerateArray().Select(x => Preprocess(x.GetString()!))];
            int gold = r.TryGetProperty("label", out var l) ? l.ValueKind switch
            {
                JsonValueKind.Number when l.TryGetInt32(out int n) => n,
                JsonValueKind.String when int.TryParse(l.GetString(), out int n) => n,
                _ => -1,
            } : -1;
            if (gold < 0 || gold >= endings.Length)
                throw new InvalidFileException($"{where}: \"label\" must be the index of the right ending, 0 to {endings.Length - 1}.");
            string ctx = Field("ctx_a") + " " + Capitalize(Field("ctx_b"));
            count++;
            string id = r.TryGetProperty("ind", out var ind) ? ind.ToString() : count.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return new ChoiceItem(Preprocess(Field("activity_label") + ": " + ctx), endings, gold, id);
        });
    }

    /// <summary>The harness's preprocess: strip, " [title]" to ". ", drop "[...]", collapse double spaces.</summary>
    public static string Preprocess(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        text = text.Trim();
        text = text.Replace(" [title]", ". ", StringComparison.Ordinal);
        text = Brackets().Replace(text, "");
        return text.Replace("  ", " ", StringComparison.Ordinal);
    }

    /// <summary>Python's str.capitalize: the first character upper case, the rest lower case.</summary>
    public static string Capitalize(string s)
    {
        ArgumentNullException.ThrowIfNull(s);
        return s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();
    }

    [GeneratedRegex(@"\[.*?\]")]
    private static partial Regex Brackets();
}
