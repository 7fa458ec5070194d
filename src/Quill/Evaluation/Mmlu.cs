// MMLU-style multiple choice from any JSONL with question / choices / answer (answer: the index, or its letter),
// laid out as lm-evaluation-harness's mmlu tasks do (lm_eval/tasks/mmlu/default/_default_template_yaml): an optional
// description "The following are multiple choice questions (with answers) about {subject}.\n\n" (when the line has
// a "subject"), then "{question}\nA. {choice}\nB. ...\nAnswer:", and the choices scored are the letters " A", " B", ...
// by log-likelihood (MultipleChoice; acc is the figure MMLU reports, acc_norm is computed but means little for letters).
// Malformed lines raise a one-line error naming file and line.
// Does not handle: few-shot dev examples, the 57-subject averaging of the full benchmark (items are pooled).
using System.Text.Json;

namespace Quill.Evaluation;

/// <summary>Reads question / choices / answer JSONL into letter-scored items.</summary>
public static class Mmlu
{
    public static IReadOnlyList<ChoiceItem> Read(string path, int limit = 0)
    {
        ArgumentNullException.ThrowIfNull(path);
        return JsonlFile.Read(path, limit, (r, where) =>
        {
            string question = JsonlFile.Text(r, "question")
                ?? throw new InvalidFileException($"{where}: missing text field \"question\" (a line is {{\"question\": ..., \"choices\": [...], \"answer\": 0 or \"A\"}}).");
            if (!r.TryGetProperty("choices", out var c) || c.ValueKind != JsonValueKind.Array || c.GetArrayLength() < 2 || c.GetArrayLength() > 26
                || c.EnumerateArray().Any(x => x.ValueKind != JsonValueKind.String))
                throw new InvalidFileException($"{where}: \"choices\" must be an array of 2 to 26 strings.");
            string[] choices = [.. c.EnumerateArray().Select(x => x.GetString()!)];
            int gold = !r.TryGetProperty("answer", out var a) ? -1 : a.ValueKind switch
            {
                JsonValueKind.Number when a.TryGetInt32(out int n) => n,
                JsonValueKind.String when a.GetString() is { Length: 1 } s && char.IsAsciiLetterUpper(s[0]) => s[0] - 'A',
                _ => -1,
            };
            if (gold < 0 || gold >= choices.Length)
                throw new InvalidFileException($"{where}: \"answer\" must be the right choice's index (0 to {choices.Length - 1}) or letter (A to {(char)('A' + choices.Length - 1)}).");
            string? subject = JsonlFile.Text(r, "subject");
            string head = string.IsNullOrEmpty(subject) ? "" : $"The following are multiple choice questions (with answers) about {subject.Replace('_', ' ')}.\n\n";
            string prompt = head + question.Trim() + "\n" + string.Concat(choices.Select((x, i) => $"{(char)('A' + i)}. {x}\n")) + "Answer:";
            return new ChoiceItem(prompt, [.. choices.Select((_, i) => ((char)('A' + i)).ToString())], gold, where[(where.LastIndexOf(':') + 1)..]);
        });
    }
}
