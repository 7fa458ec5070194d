// Quantization beside llama.cpp's quantizer on the same F32 GGUF file, one JSON line per figure:
// - quantize_seconds: Quill's GgufExport with llama.cpp's mix for the type vs llama.cpp's llama_model_quantize
//   (bench/Quill.LlamaPeer quantize, a child process) at the same thread count;
// - perplexity / KL divergence vs the F32 file on held-out text for both files, scored by Quill's engine
//   (Evaluation.QuantizationQuality), so only the quantizers differ;
// - decode_tokens_per_s: Quill's engine on Quill's file vs llama.cpp (Quill.LlamaPeer decode) on the same file.
// Usage: Quill.Bench quantize --f32 M.gguf --text HELDOUT.txt --peer Quill.LlamaPeer.dll [--types q8_0,q4_0,q4_k_m] [--tokens N] [--threads N] [--out DIR]
// Does not handle: importance matrices, GPU builds of llama.cpp.
using System.Diagnostics;
using System.Globalization;
using Quill.Evaluation;
using Quill.Inference;
using Quill.Kernels;

namespace Quill.Benchmarks;

/// <summary>Quill's quantizer and quantized decode against llama.cpp's on the same file.</summary>
public static class QuantizeBenchmark
{
    public static int Run(string[] args, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        string Opt(string name, string? fallback = null)
        {
            int i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback ?? throw new InvalidConfigException($"quantize bench: {name} is required.");
        }
        string f32 = Opt("--f32"), text = Opt("--text"), peer = Opt("--peer");
        string[] types = Opt("--types", "q8_0,q4_0,q4_k_m").Split(',');
        int tokens = int.Parse(Opt("--tokens", "4096"), CultureInfo.InvariantCulture);
        int threads = int.Parse(Opt("--threads", Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);
        string dir = Opt("--out", Path.GetDirectoryName(Path.GetFullPath(f32))!);
        KernelThreads.Count = threads;
        using var original = ModelLoader.Load(f32);
        int[] ids = [.. original.Tokenizer!.Encode(File.ReadAllText(text)).Take(tokens)];
        foreach (string type in types)
        {
            string mine = Path.Combine(dir, $"quill-{type}.gguf"), theirs = Path.Combine(dir, $"llamacpp-{type}.gguf");
            var sw = Stopwatch.StartNew();
            GgufExport.Write(original, mine, TensorTypePlan.Parse(type));
            double quillSeconds = sw.Elapsed.TotalSeconds;
            var q = LlamaPeerProcess.Run(peer, ["quantize", f32, theirs, "--type", type, "--threads", threads.ToString(CultureInfo.InvariantCulture)]);
            Emit(output, new BenchResult("quantize_seconds", quillSeconds, "s", q.GetProperty("seconds").GetDouble(), Fields(type, threads, mine, theirs)));
            using var a = ModelLoader.Load(mine);
            using var b = ModelLoader.Load(theirs);
            var qa = QuantizationQuality.Measure(original, a, ids);
            var qb = QuantizationQuality.Measure(original, b, ids);
            var f = Fields(type, threads, mine, theirs);
            f["ppl_f32"] = Math.Round(qa.PerplexityOriginal, 4);
            f["tokens"] = qa.Tokens;
            Emit(output, new BenchResult("perplexity", qa.PerplexityQuantized, "ppl", qb.PerplexityQuantized, f));
            Emit(output, new BenchResult("kl_divergence", qa.MeanKl * 1000, "millinats", qb.MeanKl * 1000, Fields(type, threads, mine, theirs)));
            Emit(output, new BenchResult("top_token_agreement", qa.TopTokenAgreement, "share", qb.TopTokenAgreement, Fields(type, threads, mine, theirs)));
            var dec = DecodeBenchmark.Run(new DecodeBenchOptions(mine, null, null, Tokens: 128, Runs: 3, Threads: threads, PromptTokens: 64, Peer: false), null)[0];
            var d = LlamaPeerProcess.Run(peer, ["decode", mine, "--prompt", "64", "--tokens", "128", "--threads", threads.ToString(CultureInfo.InvariantCulture), "--runs", "3"]);
            Emit(output, new BenchResult("decode_tokens_per_s", dec.Quill, "tokens/s", d.GetProperty("decode_tok_s").GetDouble(), Fields(type, threads, mine, mine)));
        }
        return 0;
    }

    private static Dictionary<string, object> Fields(string type, int threads, string mine, string theirs) => new()
    {
        ["type"] = type,
        ["threads"] = threads,
        ["quill_MB"] = Math.Round(new FileInfo(mine).Length / 1e6, 3),
        ["peer_MB"] = Math.Round(new FileInfo(theirs).Length / 1e6, 3),
        ["peer_name"] = "llama.cpp (LLamaSharp 0.30.0)",
    };

    private static void Emit(TextWriter o, BenchResult r)
    {
        o.WriteLine(r.ToJson());
        o.Flush();
    }
}
