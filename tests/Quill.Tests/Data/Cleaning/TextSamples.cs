// Deterministic synthetic documents for the cleaning tests: prose that passes every default quality filter, and
// helpers to bend it so that exactly one filter trips.
namespace Quill.Tests.Data.Cleaning;

internal static class TextSamples
{
    private static readonly string[] Vocabulary = BuildVocabulary();

    private static string[] BuildVocabulary()
    {
        string[] stems = ["river", "garden", "window", "letter", "market", "winter", "silver", "harbor", "forest", "candle",
            "music", "paper", "island", "mountain", "bridge", "castle", "lantern", "meadow", "orchard", "village",
            "painter", "sailor", "doctor", "teacher", "farmer", "writer", "soldier", "baker", "miller", "weaver"];
        string[] verbs = ["carried", "painted", "watched", "opened", "followed", "answered", "gathered", "measured", "visited", "repaired"];
        string[] small = ["the", "of", "and", "to", "with", "that", "a", "in", "on", "by"];
        var words = new List<string>();
        foreach (string s in stems) words.AddRange([s, s + "s", "old " + s, "quiet " + s]);
        words.AddRange(verbs);
        words.AddRange(small);
        return words.SelectMany(w => w.Split(' ')).Distinct().ToArray();
    }

    /// <summary>Lines of random sentences ending in a period, about wordsPerLine words each.</summary>
    public static List<string> Lines(int seed, int lines = 12, int wordsPerLine = 12, Func<Random, string>? word = null)
    {
        var rng = new Random(seed);
        word ??= r => Vocabulary[r.Next(Vocabulary.Length)];
        var result = new List<string>();
        string[] glue = ["the", "of", "and", "with", "to", "that"];
        for (int l = 0; l < lines; l++)
        {
            var ws = new List<string>();
            for (int k = 0; k < wordsPerLine; k++) ws.Add(k % 4 == 1 ? glue[rng.Next(glue.Length)] : word(rng));
            string line = string.Join(' ', ws);
            result.Add(char.ToUpperInvariant(line[0]) + line[1..] + ".");
        }
        return result;
    }

    /// <summary>A document that passes every default quality filter.</summary>
    public static string Good(int seed, int lines = 12) => string.Join('\n', Lines(seed, lines));
}
