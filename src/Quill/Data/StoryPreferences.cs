// A synthetic preference set for the storyteller (issue 12), made like Data.StoryInstructions: for a story request
// about a training cast (never one of the held-out casts), the chosen reply is the requested story ending happily
// with "The end."; the rejected reply is, in turn, the same story without that ending (what the fine-tuned
// storyteller writes), the story with the requested name swapped for another and the ending kept, or the story
// rambling on (its last sentence told twice more, no ending). The property a preference-tuned model should learn is
// what Evaluation.StoryPreferenceWinRate counts: the requested animal and name, "The end." last, then the stop.
// Pairs are TRL's standard prompt / chosen / rejected JSONL in the plain transcript, as the instructions are.
// Does not handle: preferences about questions, multi-turn conversations.
using System.Text.Json;
using System.Text.RegularExpressions;
using Quill.Tensors;

namespace Quill.Data;

/// <summary>Which flaw a rejected reply has.</summary>
public enum StoryFlaw
{
    /// <summary>The requested story without its happy ending.</summary>
    NoEnding,

    /// <summary>The story with another name in place of the requested one, ending kept.</summary>
    WrongName,

    /// <summary>The story rambling on: its last sentence repeated twice, no ending.</summary>
    Rambles,
}

/// <summary>One preference pair for a story request.</summary>
public sealed record StoryPreference(StoryInstruction Request, string Chosen, string Rejected, StoryFlaw Flaw);

/// <summary>Generates story preference pairs.</summary>
public static partial class StoryPreferences
{
    /// <summary>The ending a chosen story has.</summary>
    public const string Ending = "The end.";

    /// <summary>
    /// count pairs for requests about casts other than the held-out ones of StoryInstructions.Generate with the same
    /// seed and heldOutCount; flaws cycle NoEnding, WrongName, NoEnding, Rambles (half the pairs differ only in the ending).
    /// </summary>
    public static IReadOnlyList<StoryPreference> Generate(int count, ulong seed = 42, int heldOutCount = StoryInstructions.DefaultHeldOut)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var held = new HashSet<StoryCast>(StoryInstructions.HeldOutCasts(heldOutCount, seed));
        var allowed = StoryInstructions.AllCasts().Where(c => !held.Contains(c)).ToArray();
        var rng = new Rng(Rng.Mix(seed, 12));
        var pairs = new StoryPreference[count];
        StoryFlaw[] cycle = [StoryFlaw.NoEnding, StoryFlaw.WrongName, StoryFlaw.NoEnding, StoryFlaw.Rambles];
        for (int i = 0; i < count; i++)
        {
            var cast = allowed[rng.NextInt64(allowed.Length)];
            var request = StoryInstructions.Request(rng, cast);
            string story = request.Reply, chosen = story + " " + Ending;
            var flaw = cycle[i % cycle.Length];
            string rejected = flaw switch
            {
                StoryFlaw.NoEnding => story,
                StoryFlaw.WrongName => SwapName(story, cast.Name, OtherName(rng, cast.Name)) + " " + Ending,
                _ => Ramble(story),
            };
            pairs[i] = new StoryPreference(request, chosen, rejected, flaw);
        }
        return pairs;
    }

    /// <summary>Writes pairs as prompt / chosen / rejected JSONL (replies after a space, as completions are), with the flaw.</summary>
    public static void WriteJsonl(string path, IEnumerable<StoryPreference> pairs)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(pairs);
        using var ms = new MemoryStream();
        foreach (var p in pairs)
        {
            using (var w = new Utf8JsonWriter(ms))
            {
                w.WriteStartObject();
                w.WriteString("prompt", p.Request.Prompt);
                w.WriteString("chosen", " " + p.Chosen);
                w.WriteString("rejected", " " + p.Rejected);
                w.WriteString("flaw", p.Flaw switch { StoryFlaw.NoEnding => "no_ending", StoryFlaw.WrongName => "wrong_name", _ => "rambles" });
                w.WriteEndObject();
            }
            ms.WriteByte((byte)'\n');
        }
        AtomicFile.WriteAllBytes(path, ms.ToArray());
    }

    private static string OtherName(Rng rng, string name)
    {
        var names = StoryCorpus.NameWords;
        string other = names[(int)rng.NextInt64(names.Count)];
        return other != name ? other : names[(names.ToList().IndexOf(name) + 1) % names.Count];
    }

    private static string SwapName(string story, string name, string other) =>
        Regex.Replace(story, @"(?<![\p{L}\p{Nd}])" + Regex.Escape(name) + @"(?![\p{L}\p{Nd}])", other);

    private static string Ramble(string story)
    {
        var sentences = Sentence().Matches(story).Select(m => m.Value.Trim()).Where(s => s.Length > 0).ToList();
        string last = sentences.Count > 0 ? sentences[^1] : story;
        return story + " " + last + " " + last;
    }

    [GeneratedRegex(@"[^.!?]+[.!?]+[""”]?")]
    private static partial Regex Sentence();
}
