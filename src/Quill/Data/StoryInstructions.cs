// Instruction data for the storyteller, made from StoryCorpus's own templates so a model pretrained on the stories
// can learn to follow requests with a short fine-tuning:
//   - requests: "Tell me a story about a fox named Ben who finds a shell." -> a story whose animal, name and object
//     are exactly the requested ones (plots 0, 2 and 4, each with its own phrasings);
//   - questions about a given story, on one line as a chat user would type them: "{story} Who found the shell?" ->
//     "Ben.".
// Every (animal, name, object) combination is a cast; a seeded shuffle of all of them sets aside the held-out casts,
// and no training example (request or question) uses one, so the held-out requests ask for combinations the model
// never saw requested and the held-out questions are about stories it never saw (StoryCorpus.Stories can leave the
// casts out of pretraining too).
// Examples are written as prompt/completion JSONL whose prompt is the plain chat transcript ("User: ...\n\nAssistant:",
// Tokenization.ChatTemplates.PlainTranscript) and whose completion is the reply after a space: that is exactly what
// `quill chat` and `quill serve` send a Quill checkpoint (which carries no chat template), so a model fine-tuned on
// it answers there; the SFT renderer trains the completion and appends the tokenizer's EOS. Extra fields (animal,
// name, object, kind) describe the example and are ignored by the SFT reader.
// Does not handle: multi-turn conversations, questions about plots 1 and 3.
using System.Text;
using System.Text.Json;
using Quill.Tensors;
using Quill.Tokenization.ChatTemplates;

namespace Quill.Data;

/// <summary>One instruction and its reply, with the cast it is about.</summary>
/// <param name="Instruction">What the user writes (a request, or a story followed by a question).</param>
/// <param name="Reply">The answer: a story, or a short answer.</param>
/// <param name="Cast">The animal, name and object of the requested (or questioned) story.</param>
/// <param name="IsQuestion">True for a question about a given story, false for a story request.</param>
public sealed record StoryInstruction(string Instruction, string Reply, StoryCast Cast, bool IsQuestion)
{
    /// <summary>The prompt a chat with a Quill checkpoint sends: the plain transcript ending with the reply cue.</summary>
    public string Prompt => StoryInstructions.Prompt(Instruction);
}

/// <summary>Training examples, and held-out requests and questions whose casts never appear in training.</summary>
/// <param name="Train">Requests and questions to fine-tune on.</param>
/// <param name="HeldOut">Story requests for evaluation, one per held-out cast.</param>
/// <param name="HeldOutQuestions">Questions about stories of the held-out casts, one per cast.</param>
/// <param name="HeldOutCasts">The casts no training example uses.</param>
public sealed record StoryInstructionSet(IReadOnlyList<StoryInstruction> Train, IReadOnlyList<StoryInstruction> HeldOut,
    IReadOnlyList<StoryInstruction> HeldOutQuestions, IReadOnlySet<StoryCast> HeldOutCasts);

/// <summary>Generates story requests and questions from StoryCorpus's templates.</summary>
public static class StoryInstructions
{
    /// <summary>The number of held-out requests the evaluation uses.</summary>
    public const int DefaultHeldOut = 200;

    /// <summary>Plots a request can ask for (those whose animal, name and object are the story's subject).</summary>
    private static readonly int[] RequestPlots = [0, 2, 4];

    /// <summary>Request phrasings per plot: {a} is the animal with its article, {n} the name, {t} the object.</summary>
    private static readonly Dictionary<int, string[]> Requests = new()
    {
        [0] =
        [
            "Tell me a story about {a} named {n} who finds a {t}.",
            "Write a story about a little {animal} called {n} who finds a {t}.",
            "Can you tell me a story about {n} the {animal}? {n} should find a {t}.",
        ],
        [2] =
        [
            "Tell me a story about a child named {n} and a tiny {animal} that jumps out of a {t}.",
            "Write a story where a tiny {animal} jumps out of {n}'s {t}.",
        ],
        [4] =
        [
            "Tell me a story about {a} named {n} who runs away and is found next to a {t}.",
            "Write a story about {n}, {a} who gets lost and is found sitting next to a {t}.",
        ],
    };

    /// <summary>
    /// The whole set: trainCount examples (a questionShare of them questions), and heldOutCount requests and as many
    /// questions, one of each per held-out cast.
    /// </summary>
    public static StoryInstructionSet Generate(int trainCount, ulong seed = 42, int heldOutCount = DefaultHeldOut, double questionShare = 0.25)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(trainCount);
        if (!(questionShare >= 0 && questionShare <= 1)) throw new InvalidConfigException($"the share of questions must be in [0, 1] (got {questionShare}).");
        var heldList = HeldOutCasts(heldOutCount, seed);
        var held = new HashSet<StoryCast>(heldList);
        var rng = new Rng(Rng.Mix(seed, 2));
        var heldOut = heldList.Select(c => Request(rng, c)).ToArray();
        var heldOutQuestions = heldList.Select(c => Question(rng, c)).ToArray();
        var allowed = AllCasts().Where(c => !held.Contains(c)).ToArray();
        var train = new StoryInstruction[trainCount];
        for (int i = 0; i < trainCount; i++)
        {
            var cast = allowed[rng.NextInt64(allowed.Length)];
            train[i] = rng.NextDouble() < questionShare ? Question(rng, cast) : Request(rng, cast);
        }
        return new StoryInstructionSet(train, heldOut, heldOutQuestions, held);
    }

    /// <summary>Every (animal, name, object) combination of StoryCorpus's word lists, in a fixed order.</summary>
    public static IReadOnlyList<StoryCast> AllCasts() =>
        [.. StoryCorpus.AnimalWords.SelectMany(a => StoryCorpus.NameWords.SelectMany(n => StoryCorpus.ThingWords.Select(t => new StoryCast(a, n, t))))];

    /// <summary>The first count casts of a seeded shuffle of all of them, in that order.</summary>
    public static IReadOnlyList<StoryCast> HeldOutCasts(int count, ulong seed = 42)
    {
        var all = AllCasts().ToArray();
        if (count < 0 || count >= all.Length) throw new InvalidConfigException($"the held-out set must have 0 to {all.Length - 1} requests (got {count}).");
        var rng = new Rng(Rng.Mix(seed, 1));
        for (int i = all.Length - 1; i > 0; i--)
        {
            int j = (int)rng.NextInt64(i + 1);
            (all[i], all[j]) = (all[j], all[i]);
        }
        return all[..count];
    }

    /// <summary>A story request for the cast: a plot and phrasing drawn from rng, the story told with exactly that cast.</summary>
    public static StoryInstruction Request(Rng rng, StoryCast cast)
    {
        ArgumentNullException.ThrowIfNull(rng);
        ArgumentNullException.ThrowIfNull(cast);
        int plot = RequestPlots[rng.NextInt64(RequestPlots.Length)];
        string[] phrasings = Requests[plot];
        string text = phrasings[rng.NextInt64(phrasings.Length)]
            .Replace("{a}", WithArticle(cast.Animal), StringComparison.Ordinal)
            .Replace("{animal}", cast.Animal, StringComparison.Ordinal)
            .Replace("{n}", cast.Name, StringComparison.Ordinal)
            .Replace("{t}", cast.Thing, StringComparison.Ordinal);
        var story = StoryCorpus.Compose(rng, cast, plot);
        return new StoryInstruction(text, story.Text.Trim(), cast, IsQuestion: false);
    }

    /// <summary>A story with the cast (plot 0, 2 or 4) followed on the same line by a question about it; the reply is the short answer.</summary>
    public static StoryInstruction Question(Rng rng, StoryCast cast)
    {
        ArgumentNullException.ThrowIfNull(rng);
        ArgumentNullException.ThrowIfNull(cast);
        int plot = RequestPlots[rng.NextInt64(RequestPlots.Length)];
        var s = StoryCorpus.Compose(rng, cast, plot);
        string a = WithArticle(cast.Animal), n = cast.Name, t = cast.Thing;
        (string Q, string A)[] questions = plot switch
        {
            0 =>
            [
                ($"Who found the {t}?", $"{n}."), ($"What did {n} find?", $"A {s.Color} {t}."), ($"What kind of animal is {n}?", Capitalize(a) + "."),
                ($"Who had lost a {t}?", $"{s.Friend}."), ($"Where did {n} find the {t}?", "Under a tree."),
            ],
            2 =>
            [
                ($"What jumped out of the {t}?", $"A tiny {cast.Animal}."), ($"Whose {t} began to glow?", $"{n}'s."),
                ($"Where did {n} and the {cast.Animal} go?", $"To a magic {s.Place}."), ($"What color was the {t}?", $"It was {s.Color}."),
            ],
            _ =>
            [
                ($"Who had {a} called {n}?", $"{s.Friend}."), ($"Where did {n} run away to?", $"To the {s.Place}."),
                ($"What was {n} sitting next to?", $"A {t}."), ($"What kind of animal is {n}?", Capitalize(a) + "."),
            ],
        };
        var (question, answer) = questions[rng.NextInt64(questions.Length)];
        return new StoryInstruction(s.Text.Trim() + " " + question, answer, cast, IsQuestion: true);
    }

    /// <summary>The plain-transcript prompt of one user message: "User: {instruction}\n\nAssistant:".</summary>
    public static string Prompt(string instruction)
    {
        ArgumentNullException.ThrowIfNull(instruction);
        return PlainTranscript.Render([new ChatMessage("user", instruction)], addGenerationPrompt: true);
    }

    /// <summary>Writes examples as prompt/completion JSONL (the completion is " " + reply), with animal, name, object and kind.</summary>
    public static void WriteJsonl(string path, IEnumerable<StoryInstruction> examples)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(examples);
        using var ms = new MemoryStream();
        foreach (var e in examples)
        {
            using (var w = new Utf8JsonWriter(ms))
            {
                w.WriteStartObject();
                w.WriteString("prompt", e.Prompt);
                w.WriteString("completion", " " + e.Reply);
                w.WriteString("animal", e.Cast.Animal);
                w.WriteString("name", e.Cast.Name);
                w.WriteString("object", e.Cast.Thing);
                w.WriteString("kind", e.IsQuestion ? "question" : "request");
                w.WriteEndObject();
            }
            ms.WriteByte((byte)'\n');
        }
        AtomicFile.WriteAllBytes(path, ms.ToArray());
    }

    private static string WithArticle(string noun) => ("aeiou".Contains(noun[0], StringComparison.Ordinal) ? "an " : "a ") + noun;

    private static string Capitalize(string s) => char.ToUpperInvariant(s[0]) + s[1..];
}
