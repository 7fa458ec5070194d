// `quill bench ppl`: tokens/s of `quill eval ppl` (llama-perplexity's method on Quill's engine) against llama.cpp's
// forward doing the same (bench/Quill.LlamaPeer's `perplexity` subcommand, run as a child process through `dotnet`),
// same GGUF, text, context, window count and threads, measured one after the other in the same run. Both times run
// from the first window to the last (tokenization excluded). Both perplexities are printed so a reader sees the two
// runs measured the same thing. The peer is looked for at bench/Quill.LlamaPeer/bin/Release/net10.0 above the working
// folder or the program (build it with `dotnet build bench/Quill.LlamaPeer -c Release`); without it Quill runs alone.
// The peer runs with OMP_WAIT_POLICY=PASSIVE (measured faster than the default here: 1,469 vs 1,048 tokens/s).
using System.Globalization;
using System.Text.Json;
using Quill.Evaluation;
using Quill.Inference;
using Quill.Kernels;

namespace Quill.Benchmarks;

/// <summary>What to measure.</summary>
public sealed record PerplexityBenchOptions(string ModelPath, string DataPath, int Context = 512, int Chunks = 20, int Threads = 0, bool Peer = true);

/// <summary>Perplexity throughput against llama.cpp.</summary>
public static class PerplexityBenchmark
{
    public static IReadOnlyList<BenchResult> Run(PerplexityBenchOptions o, TextWriter log)
    {
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(log);
        int threads = o.Threads > 0 ? o.Threads : Environment.ProcessorCount;
        KernelThreads.Count = threads;
        using var model = ModelLoader.Load(o.ModelPath);
        int[] tokens = Perplexity.Tokenize(model, File.ReadAllText(o.DataPath));
        var options = new PerplexityOptions { Context = o.Context, MaxWindows = o.Chunks };
        Perplexity.Run(model, tokens, options with { MaxWindows = 1 }); // warm up (JIT, pages of the mapped file)
        var mine = Perplexity.Run(model, tokens, options);
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"quill: PPL = {mine.Ppl:F4} +/- {mine.PplError:F5}, {mine.Windows.Count} windows, {mine.TokensPerSecond:F0} tokens/s"));
        var peer = o.Peer ? RunPeer(o, threads, log) : null;
        var fields = new Dictionary<string, object>
        {
            ["model"] = Path.GetFileName(o.ModelPath), ["context"] = o.Context, ["windows"] = mine.Windows.Count, ["threads"] = threads,
            ["ppl_quill"] = Math.Round(mine.Ppl, 4),
        };
        if (peer is { } p)
        {
            fields["ppl_peer"] = Math.Round(p.Ppl, 4);
            fields["peer_name"] = "llama.cpp (LLamaSharp 0.30.0, " + p.SystemInfo + ")";
        }
        return [new BenchResult("ppl_tokens_per_s", mine.TokensPerSecond, "tokens/s", peer?.TokensPerSecond, fields)];
    }

    private static (double Ppl, double TokensPerSecond, string SystemInfo)? RunPeer(PerplexityBenchOptions o, int threads, TextWriter log)
    {
        string? dll = LlamaPeerProcess.Find();
        if (dll == null)
        {
            log.WriteLine($"peer: {LlamaPeerProcess.RelativeDll} not found (dotnet build bench/Quill.LlamaPeer -c Release); reporting Quill alone");
            return null;
        }
        JsonElement r;
        try
        {
            // llama.cpp's CPU build uses OpenMP; passive waiting is its faster setting on this shared 2-core host
            r = LlamaPeerProcess.Run(dll, ["perplexity", o.ModelPath, "--data", o.DataPath, "--context", o.Context.ToString(CultureInfo.InvariantCulture),
                "--chunks", o.Chunks.ToString(CultureInfo.InvariantCulture), "--threads", threads.ToString(CultureInfo.InvariantCulture)], passiveWait: true);
        }
        catch (QuillException e)
        {
            log.WriteLine($"peer: no result ({e.Message})");
            return null;
        }
        double ppl = r.GetProperty("ppl").GetDouble(), tps = r.GetProperty("tokens_s").GetDouble();
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"llama.cpp: PPL = {ppl:F4} +/- {r.GetProperty("ppl_error").GetDouble():F5}, {tps:F0} tokens/s"));
        return (ppl, tps, r.GetProperty("system_info").GetString() ?? "");
    }
}
