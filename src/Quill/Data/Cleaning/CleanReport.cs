// The report of a cleaning run (DIR/report.json) and its human summary: documents and bytes in and out, removals
// per filter (quality filters, "empty", "exact_duplicate", "near_duplicate"), skipped inputs with reasons and
// samples, examples of removed documents per filter, and what the cleaning steps changed. The same object is the
// running tally of CleanPipeline and is saved with each checkpoint so a resumed run continues its counts.
// Does not handle: per-source breakdowns.
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Quill.Data.Cleaning;

/// <summary>An example of a removed document.</summary>
public sealed class RemovedExample
{
    public string Id { get; set; } = "";
    public string Source { get; set; } = "";
    public string Snippet { get; set; } = "";
    /// <summary>For near duplicates: the estimated Jaccard similarity to the kept document.</summary>
    public double? Similarity { get; set; }
}

/// <summary>Inputs (files, lines, documents) that could not be read.</summary>
public sealed class SkippedInputs
{
    public long Count { get; set; }
    public SortedDictionary<string, long> ByReason { get; set; } = new(StringComparer.Ordinal);
    public List<SkipRecord> Samples { get; set; } = [];
}

/// <summary>Counts of what the cleaning steps changed in kept and removed documents.</summary>
public sealed class CleaningChanges
{
    public long MojibakeRepairs { get; set; }
    public long DecodedAsWindows1252 { get; set; }
    public long HtmlStripped { get; set; }
    public long EmailsRemoved { get; set; }
    public long PhonesRemoved { get; set; }
}

/// <summary>Everything a cleaning run reports.</summary>
public sealed class CleanReport
{
    public long DocumentsIn { get; set; }
    public long DocumentsOut { get; set; }
    public long BytesIn { get; set; }
    public long BytesOut { get; set; }
    public SortedDictionary<string, long> Removed { get; set; } = new(StringComparer.Ordinal);
    public SkippedInputs SkippedInputs { get; set; } = new();
    public SortedDictionary<string, List<RemovedExample>> Examples { get; set; } = new(StringComparer.Ordinal);
    public CleaningChanges Changes { get; set; } = new();
    public int InputFiles { get; set; }
    public double Seconds { get; set; }

    internal static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>Removed count for a filter (0 when none).</summary>
    public long RemovedBy(string filter) => Removed.TryGetValue(filter, out long n) ? n : 0;

    internal void AddRemoved(string filter, RemovedExample example, int maxExamples)
    {
        Removed[filter] = RemovedBy(filter) + 1;
        if (maxExamples <= 0) return;
        if (!Examples.TryGetValue(filter, out var list)) Examples[filter] = list = [];
        if (list.Count < maxExamples) list.Add(example);
    }

    internal void AddSkip(SkipRecord skip, int maxSamples = 20)
    {
        SkippedInputs.Count++;
        SkippedInputs.ByReason[skip.Reason] = (SkippedInputs.ByReason.TryGetValue(skip.Reason, out long n) ? n : 0) + 1;
        if (SkippedInputs.Samples.Count < maxSamples) SkippedInputs.Samples.Add(skip);
    }

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    public static CleanReport FromJson(string json) =>
        JsonSerializer.Deserialize<CleanReport>(json, JsonOptions) ?? throw new InvalidFileException("report is empty");

    /// <summary>Reads DIR/report.json.</summary>
    public static CleanReport Load(string path)
    {
        try
        {
            return FromJson(File.ReadAllText(path));
        }
        catch (JsonException ex)
        {
            throw new InvalidFileException($"{path} is not a Quill cleaning report: {ex.Message}", ex);
        }
    }

    /// <summary>A few lines for people.</summary>
    public string ToSummary()
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        double keptPct = DocumentsIn == 0 ? 0 : 100.0 * DocumentsOut / DocumentsIn;
        sb.AppendLine(c, $"documents: {DocumentsIn:N0} in, {DocumentsOut:N0} kept ({keptPct:F1}%)");
        sb.AppendLine(c, $"bytes:     {BytesIn / 1e6:N1} MB in, {BytesOut / 1e6:N1} MB out, {InputFiles} input files, {Seconds:F1} s ({(Seconds > 0 ? BytesIn / 1e6 / Seconds : 0):F1} MB/s)");
        if (Removed.Count > 0)
        {
            sb.AppendLine("removed:");
            foreach (var (name, count) in Removed.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal))
            {
                sb.AppendLine(c, $"  {name,-26} {count,10:N0}");
            }
        }
        if (SkippedInputs.Count > 0)
        {
            sb.AppendLine(c, $"skipped inputs: {SkippedInputs.Count:N0} ({string.Join(", ", SkippedInputs.ByReason.Select(kv => $"{kv.Key} {kv.Value}"))})");
            foreach (var s in SkippedInputs.Samples.Take(3)) sb.AppendLine(c, $"  {s.Source}: {s.Reason}: {s.Detail}");
        }
        var ch = Changes;
        if (ch.MojibakeRepairs + ch.DecodedAsWindows1252 + ch.HtmlStripped + ch.EmailsRemoved + ch.PhonesRemoved > 0)
        {
            sb.AppendLine(c, $"changes: {ch.MojibakeRepairs:N0} mojibake repairs, {ch.DecodedAsWindows1252:N0} documents decoded as Windows-1252, {ch.HtmlStripped:N0} HTML stripped, {ch.EmailsRemoved:N0} e-mails and {ch.PhonesRemoved:N0} phone numbers removed");
        }
        return sb.ToString().TrimEnd();
    }
}

/// <summary>Progress of a cleaning run.</summary>
/// <param name="Documents">Documents read so far.</param>
/// <param name="Bytes">Input bytes consumed so far (on disk, so compressed for .gz).</param>
/// <param name="TotalBytes">Size of all inputs on disk.</param>
/// <param name="Elapsed">Time since this run started.</param>
/// <param name="FilesDone">Input files finished.</param>
/// <param name="FilesTotal">Input files in all.</param>
public sealed record CleanProgress(long Documents, long Bytes, long TotalBytes, TimeSpan Elapsed, int FilesDone, int FilesTotal)
{
    public double DocumentsPerSecond => Elapsed.TotalSeconds > 0 ? Documents / Elapsed.TotalSeconds : 0;
    public double MegabytesPerSecond => Elapsed.TotalSeconds > 0 ? Bytes / 1e6 / Elapsed.TotalSeconds : 0;

    /// <summary>Estimated time left, or null before any bytes are done.</summary>
    public TimeSpan? Eta => Bytes > 0 && TotalBytes > Bytes ? TimeSpan.FromSeconds(Elapsed.TotalSeconds * (TotalBytes - Bytes) / Bytes) : Bytes > 0 ? TimeSpan.Zero : null;
}
