// The settings of `quill data clean`, loaded from YAML or JSON (snake_case keys, every one optional) and checked
// before any work starts. Defaults follow the Gopher (Rae et al. 2021) and C4 (Raffel et al. 2020) rules, so a run
// with no config file is sensible. A quality threshold set to null switches that filter off; a filter name listed
// under quality.disable does the same.
// Does not handle: per-input overrides (one config applies to every input).
using YamlDotNet.Core;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Quill.Data.Cleaning;

/// <summary>All settings of a cleaning run.</summary>
public sealed class CleanConfig
{
    public InputConfig Input { get; set; } = new();
    public DecodeConfig Decode { get; set; } = new();
    public HtmlConfig Html { get; set; } = new();
    public NormalizeConfig Normalize { get; set; } = new();
    public PiiConfig Pii { get; set; } = new();
    public QualityConfig Quality { get; set; } = new();
    public DedupConfig Dedup { get; set; } = new();
    public ReportConfig Report { get; set; } = new();

    /// <summary>Worker threads (0: KernelThreads.Count).</summary>
    public int Threads { get; set; }

    /// <summary>Loads a YAML or JSON config file (JSON is read as YAML). Throws InvalidConfigException naming the key.</summary>
    public static CleanConfig Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new InvalidFileException($"config file {path} not found; pass an existing YAML or JSON file to --config.");
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses YAML or JSON text; <paramref name="origin"/> names it in error messages.</summary>
    public static CleanConfig Parse(string text, string origin = "config")
    {
        var deserializer = new DeserializerBuilder().WithNamingConvention(UnderscoredNamingConvention.Instance).Build();
        CleanConfig? config;
        try
        {
            config = deserializer.Deserialize<CleanConfig>(text);
        }
        catch (YamlException ex)
        {
            string inner = ex.InnerException?.Message ?? ex.Message;
            throw new InvalidConfigException($"{origin} line {ex.Start.Line}: {inner.ReplaceLineEndings(" ")} (keys are snake_case, see the Data section of README.md).", ex);
        }
        config ??= new CleanConfig();
        config.Validate(origin);
        return config;
    }

    /// <summary>Checks every value; throws InvalidConfigException naming the key and the fix.</summary>
    public void Validate(string origin = "config")
    {
        void Check(bool ok, string key, string fix)
        {
            if (!ok) throw new InvalidConfigException($"{origin}: {key} {fix}");
        }
        Check(!string.IsNullOrEmpty(Input.TextField), "input.text_field", "must name the JSON field holding the text (e.g. text).");
        Check(Input.TxtSplit is "file" or "paragraph" or "line" or "separator", "input.txt_split", $"must be file, paragraph, line or separator (got '{Input.TxtSplit}').");
        Check(Input.TxtSplit != "separator" || !string.IsNullOrEmpty(Input.Separator), "input.separator", "must be set when txt_split is separator.");
        Check(Input.MaxDocumentBytes >= 1024, "input.max_document_bytes", "must be at least 1024.");
        Check(Normalize.MaxBlankLines >= 0, "normalize.max_blank_lines", "must be 0 or more.");
        Check(Dedup.ShingleSize >= 1 && Dedup.ShingleSize <= 32, "dedup.shingle_size", "must be between 1 and 32 words.");
        Check(Dedup.NumPermutations >= 8 && Dedup.NumPermutations % 8 == 0 && Dedup.NumPermutations <= 1024, "dedup.num_permutations", "must be a multiple of 8 between 8 and 1024.");
        Check(Dedup.Bands >= 1 && Dedup.NumPermutations % Dedup.Bands == 0, "dedup.bands", $"must divide dedup.num_permutations ({Dedup.NumPermutations}).");
        Check(Dedup.Threshold > 0 && Dedup.Threshold <= 1, "dedup.threshold", "must be in (0, 1].");
        Check(Report.ExamplesPerFilter >= 0, "report.examples_per_filter", "must be 0 or more.");
        Check(Threads >= 0, "threads", "must be 0 (all cores) or more.");
        foreach (string name in Quality.Disable)
        {
            Check(QualityFilters.FilterNames.Contains(name), "quality.disable", $"lists unknown filter '{name}'; known: {string.Join(", ", QualityFilters.FilterNames)}.");
        }
        Check(Quality.MinWords is null || Quality.MaxWords is null || Quality.MinWords <= Quality.MaxWords, "quality.min_words", "must not exceed quality.max_words.");
    }

    /// <summary>A stable text form of the settings, stored with a run so a resume can check it is the same config.</summary>
    public string Fingerprint()
    {
        // Thread count and report settings do not change the output documents, so a resume may change them.
        var serializer = new SerializerBuilder().WithNamingConvention(UnderscoredNamingConvention.Instance).Build();
        var copy = (CleanConfig)MemberwiseClone();
        copy.Threads = 0;
        copy.Report = new ReportConfig();
        return serializer.Serialize(copy);
    }
}

/// <summary>How input files are read.</summary>
public sealed class InputConfig
{
    /// <summary>JSON field holding the document text in .jsonl inputs.</summary>
    public string TextField { get; set; } = "text";

    /// <summary>JSON field holding a document id in .jsonl inputs (used as the output id when present).</summary>
    public string IdField { get; set; } = "id";

    /// <summary>How a .txt file becomes documents: file (one per file), paragraph (split at blank lines), line, separator.</summary>
    public string TxtSplit { get; set; } = "file";

    /// <summary>The separator for txt_split: separator.</summary>
    public string Separator { get; set; } = "<|endoftext|>";

    /// <summary>Largest document (or JSONL line) read; larger ones are skipped with a reason.</summary>
    public long MaxDocumentBytes { get; set; } = 16L << 20;
}

/// <summary>Decoding options (encoding detection always runs).</summary>
public sealed class DecodeConfig
{
    public bool RepairMojibake { get; set; } = true;
}

/// <summary>HTML stripping.</summary>
public sealed class HtmlConfig
{
    /// <summary>Strip .html/.htm inputs.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Also strip JSONL/text documents that look like an HTML page.</summary>
    public bool DetectInText { get; set; } = true;

    /// <summary>Elements removed with their content (null: HtmlStripper.DefaultDropElements).</summary>
    public List<string>? DropElements { get; set; }
}

/// <summary>Unicode and whitespace normalization.</summary>
public sealed class NormalizeConfig
{
    public bool Nfc { get; set; } = true;
    public bool Whitespace { get; set; } = true;
    public bool CollapseSpaces { get; set; } = true;
    public int MaxBlankLines { get; set; } = 1;
}

/// <summary>Removal of personal data (off by default).</summary>
public sealed class PiiConfig
{
    public bool Enabled { get; set; }
    public bool Emails { get; set; } = true;
    public bool Phones { get; set; } = true;
    public string EmailReplacement { get; set; } = "<EMAIL>";
    public string PhoneReplacement { get; set; } = "<PHONE>";
}

/// <summary>Gopher and C4 quality thresholds; null switches one off.</summary>
public sealed class QualityConfig
{
    public bool Enabled { get; set; } = true;

    /// <summary>Filter names switched off (see QualityFilters.FilterNames).</summary>
    public List<string> Disable { get; set; } = [];

    public int? MinWords { get; set; } = 50;
    public int? MaxWords { get; set; } = 100_000;
    public double? MinMeanWordLength { get; set; } = 3;
    public double? MaxMeanWordLength { get; set; } = 10;
    /// <summary>Most '#' and ellipses per word.</summary>
    public double? MaxSymbolWordRatio { get; set; } = 0.1;
    public double? MaxBulletLinesFraction { get; set; } = 0.9;
    public double? MaxEllipsisLinesFraction { get; set; } = 0.3;
    /// <summary>Least fraction of words holding a letter.</summary>
    public double? MinAlphaWordsFraction { get; set; } = 0.8;
    /// <summary>Least number of distinct English stop words (the, be, to, of, and, that, have, with).</summary>
    public int? MinStopWords { get; set; } = 2;
    /// <summary>Least fraction of non-empty lines ending in terminal punctuation (C4; FineWeb uses 0.12).</summary>
    public double? MinLinePunctuationFraction { get; set; } = 0.12;
    /// <summary>Remove documents containing "lorem ipsum" (C4).</summary>
    public bool LoremIpsum { get; set; } = true;
    /// <summary>Remove documents containing '{' (C4's code filter; off by default).</summary>
    public bool CurlyBrace { get; set; }
    public double? MaxDuplicateLinesFraction { get; set; } = 0.3;
    public double? MaxDuplicateParagraphsFraction { get; set; } = 0.3;
    public double? MaxDuplicateLineCharsFraction { get; set; } = 0.2;
    public double? MaxDuplicateParagraphCharsFraction { get; set; } = 0.2;
    /// <summary>Most characters in the most frequent n-gram, for n = 2, 3, 4.</summary>
    public List<double>? MaxTopNgramCharsFraction { get; set; } = [0.20, 0.18, 0.16];
    /// <summary>Most characters in duplicated n-grams, for n = 5..10.</summary>
    public List<double>? MaxDuplicateNgramCharsFraction { get; set; } = [0.15, 0.14, 0.13, 0.12, 0.11, 0.10];
}

/// <summary>Exact and near-duplicate removal.</summary>
public sealed class DedupConfig
{
    public bool Exact { get; set; } = true;
    public bool Near { get; set; } = true;
    /// <summary>Words per shingle.</summary>
    public int ShingleSize { get; set; } = 5;
    public int NumPermutations { get; set; } = 128;
    /// <summary>LSH bands (rows per band = num_permutations / bands).</summary>
    public int Bands { get; set; } = 16;
    /// <summary>Estimated Jaccard similarity at or above which a document is a near duplicate of an earlier one.</summary>
    public double Threshold { get; set; } = 0.8;
    public ulong Seed { get; set; } = 1;
}

/// <summary>What the report keeps.</summary>
public sealed class ReportConfig
{
    public int ExamplesPerFilter { get; set; } = 3;
    /// <summary>Characters of each example kept.</summary>
    public int ExampleChars { get; set; } = 200;
}
