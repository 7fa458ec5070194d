// The small catalogue behind `quill data fetch NAME`: well-known training corpora with their download address,
// the file name written, and the SHA-256 where it is known. An entry without a checksum is still checked on
// request (--sha256) and the computed checksum is written beside the file.
// Does not handle: datasets split over many files, or ones needing authentication.
namespace Quill.Data.Fetch;

/// <summary>One downloadable dataset.</summary>
/// <param name="Name">What the user types.</param>
/// <param name="Url">Where it is downloaded from.</param>
/// <param name="FileName">The file written in the output folder.</param>
/// <param name="Sha256">Lower-case hex SHA-256 of the file, or null when not recorded here.</param>
/// <param name="Description">One line for `--list`.</param>
public sealed record DatasetEntry(string Name, Uri Url, string FileName, string? Sha256, string Description);

/// <summary>The datasets `quill data fetch` knows by name.</summary>
public static class DatasetCatalog
{
    public static IReadOnlyList<DatasetEntry> Entries { get; } =
    [
        new("tinyshakespeare", new Uri("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"),
            "tinyshakespeare.txt", "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
            "char-rnn tiny Shakespeare, 1.1 MB of plain text"),
        new("tinystories", new Uri("https://huggingface.co/datasets/roneneldan/TinyStories/resolve/main/TinyStories-train.txt"),
            "TinyStories-train.txt", null, "TinyStories training split, about 1.9 GB, stories separated by <|endoftext|>"),
        new("tinystories-valid", new Uri("https://huggingface.co/datasets/roneneldan/TinyStories/resolve/main/TinyStories-valid.txt"),
            "TinyStories-valid.txt", null, "TinyStories validation split, about 19 MB, stories separated by <|endoftext|>"),
        new("wikitext-103", new Uri("https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-103-raw-v1.zip"),
            "wikitext-103-raw-v1.zip", null, "WikiText-103 raw (zip, about 190 MB), extracted after download"),
        new("wikitext-2", new Uri("https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-raw-v1.zip"),
            "wikitext-2-raw-v1.zip", null, "WikiText-2 raw (zip, about 4.7 MB), extracted after download"),
    ];

    /// <summary>The entry with this name (case-insensitive), or null.</summary>
    public static DatasetEntry? Find(string name) =>
        Entries.FirstOrDefault(e => string.Equals(e.Name, name, StringComparison.OrdinalIgnoreCase));
}
