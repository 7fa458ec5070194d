// Request following: does a model asked "Tell me a story about a fox named Ben who finds a shell." tell a story with
// that animal and that name, and then stop? For each request (Data.StoryInstructions' held-out set) the model
// answers greedily in the layout `quill chat` uses for it (GreedyAnswers). A reply follows the request when it names
// the requested animal and the requested name as whole words (case-sensitive: "Ben", "fox"; "foxes" or "Benny" do
// not count) and ended with end-of-sequence before the limit. The object is checked and reported too but not
// required. The scorer (Score) is separate from the generation, so it is tested on scripted replies, and Evaluate
// also takes any answering function.
// Does not handle: judging whether the story is good.
using Quill.Data;
using Quill.Inference;

namespace Quill.Evaluation;

/// <summary>One reply and how it was judged.</summary>
/// <param name="Request">The request answered.</param>
/// <param name="Reply">The reply's text (without the end-of-sequence token, leading whitespace dropped).</param>
/// <param name="Stopped">Whether the reply ended with an end-of-sequence token within the limit.</param>
/// <param name="UsesAnimal">Whether the requested animal appears as a word.</param>
/// <param name="UsesName">Whether the requested name appears as a word.</param>
/// <param name="UsesThing">Whether the requested object appears as a word (reported, not required).</param>
public sealed record JudgedReply(StoryInstruction Request, string Reply, bool Stopped, bool UsesAnimal, bool UsesName, bool UsesThing)
{
    /// <summary>The reply used the requested animal and name and then stopped.</summary>
    public bool Followed => UsesAnimal && UsesName && Stopped;
}

/// <summary>The judged replies of an evaluation and their rates.</summary>
public sealed record RequestFollowingReport(IReadOnlyList<JudgedReply> Replies)
{
    /// <summary>Fraction of replies that followed their request (0 when there are none).</summary>
    public double Score => Rate(r => r.Followed);

    /// <summary>Number of replies that followed their request.</summary>
    public int FollowedCount => Replies.Count(r => r.Followed);

    /// <summary>Fraction of replies that stopped.</summary>
    public double StopRate => Rate(r => r.Stopped);

    /// <summary>Fraction of replies naming the requested animal.</summary>
    public double AnimalRate => Rate(r => r.UsesAnimal);

    /// <summary>Fraction of replies using the requested name.</summary>
    public double NameRate => Rate(r => r.UsesName);

    /// <summary>Fraction of replies mentioning the requested object.</summary>
    public double ThingRate => Rate(r => r.UsesThing);

    /// <summary>One line: "followed 183/200 (91.5%): animal 95.0%, name 97.0%, object 93.5%, stopped 99.0%".</summary>
    public string Describe() => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"followed {FollowedCount}/{Replies.Count} ({Score * 100:F1}%): animal {AnimalRate * 100:F1}%, name {NameRate * 100:F1}%, object {ThingRate * 100:F1}%, stopped {StopRate * 100:F1}%");

    private double Rate(Func<JudgedReply, bool> f) => Replies.Count == 0 ? 0 : (double)Replies.Count(f) / Replies.Count;
}

/// <summary>Scores how often a model tells the requested story and stops.</summary>
public static class RequestFollowing
{
    /// <summary>Judges one reply: the requested animal, name and object as whole words, and whether it stopped.</summary>
    public static JudgedReply Score(StoryInstruction request, string reply, bool stopped)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(reply);
        var c = request.Cast;
        return new JudgedReply(request, reply, stopped, HasWord(reply, c.Animal), HasWord(reply, c.Name), HasWord(reply, c.Thing));
    }

    /// <summary>Judges the replies answer gives (its text and whether it stopped) to each request.</summary>
    public static RequestFollowingReport Evaluate(IReadOnlyList<StoryInstruction> requests, Func<StoryInstruction, (string Reply, bool Stopped)> answer)
    {
        ArgumentNullException.ThrowIfNull(requests);
        ArgumentNullException.ThrowIfNull(answer);
        return new RequestFollowingReport([.. requests.Select(r =>
        {
            var (reply, stopped) = answer(r);
            return Score(r, reply, stopped);
        })]);
    }

    /// <summary>
    /// Answers every request with the model (greedy, batched, in its chat layout) and judges the replies.
    /// progress gets the number of requests answered so far.
    /// </summary>
    public static RequestFollowingReport Evaluate(InferenceModel model, IReadOnlyList<StoryInstruction> requests, AnswerOptions? options = null,
        IProgress<int>? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(requests);
        var answers = GreedyAnswers.Answer(model, [.. requests.Select(r => r.Instruction)], options, progress, cancel);
        return new RequestFollowingReport([.. requests.Select((r, i) => Score(r, answers[i].Text, answers[i].Stopped))]);
    }

    /// <summary>Whether word occurs in text with no letter or digit right before or after it.</summary>
    internal static bool HasWord(string text, string word)
    {
        for (int at = text.IndexOf(word, StringComparison.Ordinal); at >= 0; at = text.IndexOf(word, at + 1, StringComparison.Ordinal))
        {
            bool before = at == 0 || !char.IsLetterOrDigit(text[at - 1]);
            int end = at + word.Length;
            bool after = end == text.Length || !char.IsLetterOrDigit(text[end]);
            if (before && after) return true;
        }
        return false;
    }
}
