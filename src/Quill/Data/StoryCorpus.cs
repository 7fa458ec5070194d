// Quill's own small corpus: simple children's stories assembled from hand-written templates and word lists, so
// `quill quickstart` can train a model on a machine with no network and no data. The stories are written for
// Quill; they are deterministic for a seed. They are varied enough for a small model to learn spelling, simple
// grammar and the shape of a story, and repetitive enough that a few minutes of training shows it. Compose tells a
// story with a given cast (animal, name, object) and plot, for StoryInstructions' requests; Stories can leave casts
// out, so held-out requests never meet their cast in pretraining.
// Does not handle: other languages, stories longer than five short paragraphs.
using System.Text;
using Quill.Tensors;

namespace Quill.Data;

/// <summary>Generates short children's stories.</summary>
public static class StoryCorpus
{
    private static readonly string[] Names = ["Lily", "Tom", "Mia", "Ben", "Sara", "Max", "Anna", "Leo", "Zoe", "Sam", "Ella", "Jack", "Nora", "Finn", "Ruby", "Omar", "Ivy", "Theo"];
    private static readonly string[] Animals = ["cat", "dog", "bunny", "bird", "frog", "duck", "fox", "bear", "mouse", "turtle", "puppy", "kitten", "owl", "pony"];
    private static readonly string[] Places = ["park", "garden", "forest", "beach", "farm", "pond", "hill", "meadow", "kitchen", "yard", "river", "library"];
    private static readonly string[] Things = ["ball", "kite", "box", "hat", "boat", "book", "cake", "drum", "shell", "leaf", "stone", "cup", "bell", "key", "map"];
    private static readonly string[] Colors = ["red", "blue", "green", "yellow", "big", "little", "shiny", "soft", "old", "new", "pink", "purple"];
    private static readonly string[] Feelings = ["happy", "sad", "scared", "excited", "tired", "proud", "curious", "surprised", "brave", "sleepy"];
    private static readonly string[] Weather = ["sunny", "rainy", "windy", "cold", "warm", "snowy", "cloudy", "bright"];
    private static readonly string[] Relatives = ["mom", "dad", "grandma", "grandpa", "sister", "brother", "friend", "teacher"];
    private static readonly string[] Verbs = ["play", "run", "jump", "dance", "sing", "swim", "climb", "hide", "read", "draw"];
    private static readonly string[] Lessons =
    [
        "sharing makes everyone happy", "it is good to be kind", "friends help each other", "it is okay to ask for help",
        "being brave is not the same as not being scared", "you should always say sorry", "trying again is how we learn",
        "a small gift can mean a lot", "listening is a good way to be a friend",
    ];

    /// <summary>The animals stories are about.</summary>
    public static IReadOnlyList<string> AnimalWords => Animals;

    /// <summary>The names of the children and animals in the stories.</summary>
    public static IReadOnlyList<string> NameWords => Names;

    /// <summary>The objects the stories revolve around.</summary>
    public static IReadOnlyList<string> ThingWords => Things;

    /// <summary>One story (a few short paragraphs ending with a blank line).</summary>
    public static string Story(Rng rng) => Compose(rng, null, null).Text;

    /// <summary>
    /// One story and its facts. With a cast, the story's animal, name and object are the cast's (the other words are
    /// drawn as usual, and the friend is never the cast's name); template 0..4 picks the plot (null: drawn).
    /// Without a cast and template it is exactly Story(rng).
    /// </summary>
    public static StoryFacts Compose(Rng rng, StoryCast? cast, int? template)
    {
        ArgumentNullException.ThrowIfNull(rng);
        if (template is < 0 or >= TemplateCount) throw new ArgumentOutOfRangeException(nameof(template), template, $"story templates are 0..{TemplateCount - 1}.");
        string P(string[] xs) => xs[rng.NextInt64(xs.Length)];
        string name = P(Names), friend = P(Names), animal = P(Animals), place = P(Places), thing = P(Things), color = P(Colors);
        string feeling = P(Feelings), relative = P(Relatives), verb = P(Verbs), weather = P(Weather);
        if (cast != null) (animal, name, thing) = (cast.Animal, cast.Name, cast.Thing);
        if (friend == name) friend = Names[(Array.IndexOf(Names, name) + 1) % Names.Length];
        int plot = template ?? (int)rng.NextInt64(TemplateCount);
        var sb = new StringBuilder();
        switch (plot)
        {
            case 0:
                sb.Append($"Once upon a time, there was a little {animal} named {name}. {name} loved to {verb} in the {place}. ");
                sb.Append($"One {weather} day, {name} found a {color} {thing} under a tree. \"What a nice {thing}!\" said {name}. ");
                sb.Append($"{name} wanted to keep it, but then {name} saw {friend} looking {P(Feelings)}. ");
                sb.Append($"{friend} said, \"I lost my {thing}.\" {name} thought for a moment and gave the {thing} to {friend}. ");
                sb.Append($"{friend} was so {feeling}. They played with the {thing} together all day. {name} learned that {P(Lessons)}.");
                break;
            case 1:
                sb.Append($"{name} and {friend} went to the {place} with {name}'s {relative}. It was a {weather} day. ");
                sb.Append($"They wanted to {verb}, but the {place} was full of {animal}s. \"Look at all the {animal}s!\" said {friend}. ");
                sb.Append($"One little {animal} was {P(Feelings)}. It could not find its {relative}. ");
                sb.Append($"{name} and {friend} helped the little {animal} look for its {relative}. They looked near the {P(Places)} and behind a {color} {P(Things)}. ");
                sb.Append($"At last they found it. The little {animal} was {feeling} again, and {name} and {friend} went home with a big smile.");
                break;
            case 2:
                sb.Append($"There was a {color} {thing} in {name}'s room. Every night, {name} would look at the {thing} and wonder where it came from. ");
                sb.Append($"One night, the {thing} began to glow. {name} was {feeling}. \"Hello?\" said {name}. ");
                sb.Append($"A tiny {animal} jumped out of the {thing}. \"Do you want to {verb} with me?\" asked the {animal}. ");
                sb.Append($"{name} said yes, and they went to a magic {place} where the sky was {P(Colors)}. ");
                sb.Append($"They had so much fun. When the sun came up, {name} was back in bed, holding the {color} {thing}.");
                break;
            case 3:
                sb.Append($"{name} did not like {weather} days. \"I can not {verb} outside,\" {name} said to {relative}. ");
                sb.Append($"{name}'s {relative} smiled and said, \"Let us make a {thing} instead.\" ");
                sb.Append($"They worked together. First they found a {color} {P(Things)}. Then they found a {P(Colors)} {P(Things)}. ");
                sb.Append($"When it was done, {name} was very {feeling}. \"This is the best {thing} ever!\" said {name}. ");
                sb.Append($"After that, {name} was never {P(Feelings)} on a {weather} day again, because {P(Lessons)}.");
                break;
            default:
                sb.Append($"{friend} had a {animal} called {name}. {name} was a {color} {animal} who liked to {verb}. ");
                sb.Append($"One day, {name} ran away to the {place}. {friend} was very {P(Feelings)} and called, \"{name}, where are you?\" ");
                sb.Append($"{friend}'s {relative} helped to look. They looked by the {P(Places)} and they looked by the {P(Places)}. ");
                sb.Append($"Then they heard a little sound. It was {name}, sitting next to a {thing}! ");
                sb.Append($"{friend} hugged {name} and said, \"I am so {feeling} you are safe.\" From then on, {name} always stayed close.");
                break;
        }
        sb.Append("\n\n");
        return new StoryFacts(sb.ToString(), plot, new StoryCast(animal, name, thing), friend, place, color);
    }

    /// <summary>Stories until at least the given number of characters.</summary>
    public static string Generate(int minChars, ulong seed = 42) => string.Concat(Stories(minChars, seed));

    /// <summary>
    /// Stories (each ending with a blank line) until at least minChars characters, as Generate writes them; a story
    /// whose cast is in exclude is left out (so held-out casts never reach pretraining).
    /// </summary>
    public static IEnumerable<string> Stories(int minChars, ulong seed = 42, IReadOnlySet<StoryCast>? exclude = null)
    {
        var rng = new Rng(seed);
        for (long total = 0; total < minChars;)
        {
            var story = Compose(rng, null, null);
            if (exclude != null && exclude.Contains(story.Cast)) continue;
            total += story.Text.Length;
            yield return story.Text;
        }
    }

    /// <summary>Number of plots (templates) a story can follow.</summary>
    public const int TemplateCount = 5;
}

/// <summary>What a requested story is about: an animal, its name and an object (e.g. fox, Ben, shell).</summary>
public sealed record StoryCast(string Animal, string Name, string Thing);

/// <summary>
/// A composed story and the words it was made from. Plot 0: the animal Name finds Thing and gives it to Friend, who
/// had lost one. Plot 2: the child Name's Thing glows and a tiny animal jumps out. Plot 4: Friend's animal Name runs
/// away to Place and is found next to Thing. Plots 1 and 3 use the words loosely (the cast is not their subject).
/// </summary>
public sealed record StoryFacts(string Text, int Plot, StoryCast Cast, string Friend, string Place, string Color);
