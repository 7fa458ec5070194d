// Tokenizer throughput for `quill bench tokenize`: encode MB/s (UTF-8 bytes of input per second) on one thread and
// on several, and BPE training time. Each figure repeats the work until a time budget is spent and reports the
// best rate, so a busy machine hurts it less. Peers (js-tiktoken, python sentencepiece) live in TokenizePeers.
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Quill.Tokenization;

namespace Quill.Benchmarks;

/// <summary>Measures tokenizer encode throughput and training time.</summary>
public static class TokenizeBenchmark
{
    /// <summary>Result of one encode measurement.</summary>
    public sealed record EncodeResult(int Threads, double MegabytesPerSecond, int Tokens);

    /// <summary>Encodes text repeatedly for about `seconds` (after one warm-up run) and returns the best MB/s.</summary>
    public static EncodeResult MeasureEncode(ITokenizer tokenizer, string text, int threads, double seconds = 2.0)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(text);
        double bytes = Encoding.UTF8.GetByteCount(text);
        int tokens = Encode(tokenizer, text, threads).Length;
        double best = double.MaxValue;
        var total = Stopwatch.StartNew();
        do
        {
            var sw = Stopwatch.StartNew();
            Encode(tokenizer, text, threads);
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        while (total.Elapsed.TotalSeconds < seconds);
        return new EncodeResult(threads, bytes / best / 1e6, tokens);
    }

    /// <summary>Seconds BpeTrainer takes to train on the files (best of `repeats`).</summary>
    public static double MeasureTraining(IReadOnlyList<string> files, int vocabSize, int threads, int repeats = 1)
    {
        double best = double.MaxValue;
        for (int r = 0; r < Math.Max(1, repeats); r++)
        {
            var sw = Stopwatch.StartNew();
            BpeTrainer.TrainFiles(files, new BpeTrainerOptions { VocabSize = vocabSize, Threads = threads, Pattern = "gpt2" });
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return best;
    }

    /// <summary>The JSON line `quill bench tokenize` prints for a result.</summary>
    public static string ToJson(EncodeResult r)
    {
        ArgumentNullException.ThrowIfNull(r);
        return string.Create(CultureInfo.InvariantCulture, $"{{\"bench\": \"tokenize\", \"threads\": {r.Threads}, \"mb_per_s\": {r.MegabytesPerSecond:F2}, \"tokens\": {r.Tokens}}}");
    }

    /// <summary>A comparison line {"bench", "quill", "peer", "ratio", "unit"}; ratio is quill/peer (for seconds: peer/quill, higher is better for Quill).</summary>
    public static string CompareJson(string bench, double quill, double peer, string unit)
    {
        double ratio = unit == "s" ? peer / quill : quill / peer;
        return string.Create(CultureInfo.InvariantCulture, $"{{\"bench\": \"{bench}\", \"quill\": {quill:G4}, \"peer\": {peer:G4}, \"ratio\": {ratio:F2}, \"unit\": \"{unit}\"}}");
    }

    private static int[] Encode(ITokenizer tokenizer, string text, int threads) =>
        threads > 1 && tokenizer is BpeTokenizer bpe ? bpe.EncodeParallel(text, threads) : tokenizer.Encode(text);
}
