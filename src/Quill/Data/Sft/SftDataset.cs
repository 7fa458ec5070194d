// An SFT JSONL file read, rendered and split: the examples that fit the context, held-out ones apart, and a report
// that counts everything not trained as written. Examples longer than the context (MaxTokens = seq_len + 1 tokens:
// T inputs and T targets) are truncated keeping the start (TRL's max_length behaviour, wave2-facts 1.3) or skipped,
// per option; a truncated example with no trained target left is skipped. Both are counted, never silent.
// The held-out split is decided per example by a hash of its content (SHA-256 of its turns), so it does not depend
// on the file's order, the tokenizer or the other examples: adding lines never moves an example between splits.
// The report names the layout: raw text when every example is prompt/completion text, else the renderer's.
// Does not handle: streaming files larger than memory (every rendered example is kept as int ids), deduplication.
using System.Globalization;
using System.Text;
using Quill.Data.Dedup;

namespace Quill.Data.Sft;

/// <summary>What to do with an example longer than the context.</summary>
public enum OverlongPolicy
{
    /// <summary>Keep its first MaxTokens tokens.</summary>
    Truncate,

    /// <summary>Leave it out.</summary>
    Skip,
}

/// <summary>How SFT examples become training rows.</summary>
public sealed record SftOptions
{
    /// <summary>Tokens an example may hold: the trainer's seq_len + 1 (a row's inputs and its last target).</summary>
    public int MaxTokens { get; init; } = 257;

    /// <summary>Also train on prompt tokens (system, user, template text); default: replies only.</summary>
    public bool TrainOnPrompt { get; init; }

    public OverlongPolicy Overlong { get; init; } = OverlongPolicy.Truncate;

    /// <summary>Fraction of examples held out for validation, chosen by content hash (0 = none).</summary>
    public double ValFraction { get; init; } = 0.05;
}

/// <summary>Counts of a file's examples: read, skipped and why, truncated, per split.</summary>
public sealed record SftReport
{
    public required string File { get; init; }

    public required string Layout { get; init; }

    /// <summary>The id ending every trained reply, or -1 when the tokenizer has none.</summary>
    public int EndOfReplyId { get; init; }

    /// <summary>Examples per shape.</summary>
    public required IReadOnlyDictionary<SftFormat, int> Formats { get; init; }

    public int SkippedEmpty { get; init; }

    public int Truncated { get; init; }

    public int SkippedTooLong { get; init; }

    /// <summary>Truncated examples left without a trained target.</summary>
    public int SkippedNoTarget { get; init; }

    public int Train { get; init; }

    public int Val { get; init; }

    /// <summary>Tokens of the training examples (after truncation).</summary>
    public long TrainTokens { get; init; }

    /// <summary>Targets of the training examples that count in the loss.</summary>
    public long TrainTargets { get; init; }

    /// <summary>One line for a console: the file, then Summary.</summary>
    public string Describe() => $"{File}: {Summary()}";

    /// <summary>The counts without the file's name: examples by format (or "0 examples"), layout, split, tokens, skips.</summary>
    public string Summary() => string.Create(CultureInfo.InvariantCulture,
        $"{(Formats.Any(f => f.Value > 0) ? string.Join(", ", Formats.Where(f => f.Value > 0).Select(f => $"{f.Value} {Name(f.Key)}")) : "0 examples")}; layout {Layout}; {Train} train / {Val} held out; {TrainTargets:N0} trained of {TrainTokens:N0} tokens"
        + $"{(SkippedEmpty > 0 ? $"; {SkippedEmpty} skipped (empty reply)" : "")}{(Truncated > 0 ? $"; {Truncated} truncated" : "")}"
        + $"{(SkippedTooLong > 0 ? $"; {SkippedTooLong} skipped (too long)" : "")}{(SkippedNoTarget > 0 ? $"; {SkippedNoTarget} skipped (nothing trained within the context)" : "")}");

    private static string Name(SftFormat f) => f switch
    {
        SftFormat.Alpaca => "alpaca",
        SftFormat.Chat => "chat",
        SftFormat.ShareGpt => "sharegpt",
        _ => "prompt/completion",
    };
}

/// <summary>Rendered SFT examples, split into training and held-out sets.</summary>
public sealed class SftDataset
{
    /// <summary>The report's layout when every example is prompt/completion text (rendered raw, whatever the base).</summary>
    public const string RawLayout = "raw text (prompt/completion)";

    private SftDataset(IReadOnlyList<SftTokens> train, IReadOnlyList<SftTokens> val, SftReport report)
    {
        Train = train;
        Val = val;
        Report = report;
    }

    public IReadOnlyList<SftTokens> Train { get; }

    public IReadOnlyList<SftTokens> Val { get; }

    public SftReport Report { get; }

    /// <summary>Reads, renders and splits a JSONL file.</summary>
    public static SftDataset Load(string path, SftRenderer renderer, SftOptions options) => Build(SftReader.Read(path), renderer, options);

    /// <summary>Renders and splits examples already read.</summary>
    public static SftDataset Build(SftFile file, SftRenderer renderer, SftOptions options)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(renderer);
        ArgumentNullException.ThrowIfNull(options);
        if (options.MaxTokens < 2) throw new InvalidConfigException($"SFT examples need room for at least 2 tokens (got {options.MaxTokens}); raise seq_len.");
        if (!(options.ValFraction >= 0 && options.ValFraction < 1)) throw new InvalidConfigException($"--val-fraction (the held-out share of examples) must be in [0, 1) (got {options.ValFraction}).");
        var train = new List<SftTokens>();
        var val = new List<SftTokens>();
        var formats = Enum.GetValues<SftFormat>().ToDictionary(f => f, _ => 0);
        int truncated = 0, tooLong = 0, noTarget = 0;
        long tokens = 0, targets = 0;
        foreach (var example in file.Examples)
        {
            formats[example.Format]++;
            var r = renderer.Render(example, options.TrainOnPrompt);
            if (r.Ids.Length > options.MaxTokens)
            {
                if (options.Overlong == OverlongPolicy.Skip)
                {
                    tooLong++;
                    continue;
                }
                truncated++;
                r = r with { Ids = r.Ids[..options.MaxTokens], Trained = r.Trained[..options.MaxTokens] };
                if (r.TrainedTargets == 0)
                {
                    noTarget++;
                    continue;
                }
            }
            if (IsHeldOut(example, options.ValFraction)) val.Add(r);
            else
            {
                train.Add(r);
                tokens += r.Ids.Length;
                targets += r.TrainedTargets;
            }
        }
        var report = new SftReport
        {
            File = file.Path, Layout = formats.All(f => f.Key == SftFormat.PromptCompletion || f.Value == 0) ? RawLayout : renderer.Layout, EndOfReplyId = renderer.EndOfReplyId, Formats = formats,
            SkippedEmpty = file.SkippedEmpty, Truncated = truncated, SkippedTooLong = tooLong, SkippedNoTarget = noTarget,
            Train = train.Count, Val = val.Count, TrainTokens = tokens, TrainTargets = targets,
        };
        return new SftDataset(train, val, report);
    }

    /// <summary>Whether an example belongs to the held-out split: a hash of its turns below the fraction.</summary>
    public static bool IsHeldOut(SftExample example, double fraction)
    {
        ArgumentNullException.ThrowIfNull(example);
        if (fraction <= 0) return false;
        var key = new StringBuilder();
        foreach (var m in example.Messages) key.Append(m.Role).Append('\u0001').Append(m.Content).Append('\u0002');
        key.Append(example.Input);
        ulong h = (ulong)ContentHash.Of(key.ToString());
        return (h >> 11) * (1.0 / (1UL << 53)) < fraction;
    }
}
