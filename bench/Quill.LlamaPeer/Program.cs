// llama.cpp as a benchmark peer. Usage:
//   Quill.LlamaPeer decode FILE.gguf --prompt N --tokens N --threads N [--runs N]
// prints {"peer":"llama.cpp","prefill_tok_s":...,"decode_tok_s":...,"system_info":"..."} on one line.
//   Quill.LlamaPeer quantize IN.gguf OUT.gguf --type q4_k_m [--threads N]
// runs llama.cpp's own quantizer (llama_model_quantize, its default mixes, output tensor quantized as
// llama-quantize does) and prints {"peer":...,"type":...,"seconds":...,"bytes":...} on one line.
// Token ids are fixed (1, then 2..N+1 modulo the vocabulary) so no tokenizer enters the timing; decode is greedy.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using LLama;
using LLama.Common;
using LLama.Native;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: Quill.LlamaPeer decode FILE.gguf [--prompt N] [--tokens N] [--threads N] [--runs N]\n       Quill.LlamaPeer quantize IN.gguf OUT.gguf --type TYPE [--threads N]");
    return 2;
}
NativeLibraryConfig.All.WithLogCallback((level, message) =>
{
    if (level == LLamaLogLevel.Error) Console.Error.Write("llama.cpp: " + message);
});
string verb = args[0], file = args[1];
int Opt(string name, int fallback)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
}
int threads = Opt("--threads", Environment.ProcessorCount);
switch (verb)
{
    case "decode":
        {
            int prompt = Opt("--prompt", 128), tokens = Opt("--tokens", 128), runs = Opt("--runs", 3);
            var p = new ModelParams(file)
            {
                ContextSize = (uint)(prompt + tokens + 8),
                BatchSize = (uint)Math.Max(prompt, 8),
                UBatchSize = (uint)Math.Max(prompt, 8),
                GpuLayerCount = 0,
                Threads = threads,
                BatchThreads = threads,
            };
            using var weights = LLamaWeights.LoadFromFile(p);
            using var context = weights.CreateContext(p);
            int vocab = context.Vocab.Count;
            var batch = new LLamaBatch();
            double bestPrefill = 0, bestDecode = 0;
            for (int run = 0; run < runs; run++)
            {
                context.NativeHandle.MemoryClear();
                batch.Clear();
                for (int i = 0; i < prompt; i++) batch.Add((LLamaToken)(i == 0 ? 1 : 2 + (i % (vocab - 2))), i, LLamaSeqId.Zero, i == prompt - 1);
                var sw = Stopwatch.StartNew();
                Check(context.Decode(batch));
                double prefill = prompt / sw.Elapsed.TotalSeconds;
                int pos = prompt;
                sw.Restart();
                for (int n = 0; n < tokens; n++)
                {
                    var logits = context.NativeHandle.GetLogitsIth(batch.TokenCount - 1);
                    int next = 0;
                    for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[next]) next = i;
                    batch.Clear();
                    batch.Add((LLamaToken)next, pos++, LLamaSeqId.Zero, true);
                    Check(context.Decode(batch));
                }
                double decode = tokens / sw.Elapsed.TotalSeconds;
                bestPrefill = Math.Max(bestPrefill, prefill);
                bestDecode = Math.Max(bestDecode, decode);
            }
            Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["peer"] = "llama.cpp (LLamaSharp 0.30.0)",
                ["threads"] = threads,
                ["prefill_tok_s"] = bestPrefill,
                ["decode_tok_s"] = bestDecode,
                ["system_info"] = System.Runtime.InteropServices.Marshal.PtrToStringUTF8(NativeApi.llama_print_system_info())?.Trim() ?? "",
            }));
            return 0;
        }
    case "quantize":
        return Quantize(file, args.Length > 2 ? args[2] : "", args, threads);
    default:
        Console.Error.WriteLine($"unknown subcommand {verb}");
        return 2;
}

static int Quantize(string input, string output, string[] args, int threads)
{
    int t = Array.IndexOf(args, "--type");
    string type = t >= 0 && t + 1 < args.Length ? args[t + 1] : "q8_0";
    if (!Enum.TryParse("MOSTLY_" + type.ToUpperInvariant(), out LLamaFtype ftype))
    {
        Console.Error.WriteLine($"unknown type {type}");
        return 2;
    }
    NativeApi.llama_empty_call(); // loads the native library through LLamaSharp's resolver before the quantizer's own calls
    var sw = Stopwatch.StartNew();
    if (!LLamaQuantizer.Quantize(input, output, ftype, threads, allowRequantize: true, quantizeOutputTensor: true))
    {
        Console.Error.WriteLine($"llama.cpp could not quantize {input}");
        return 1;
    }
    Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
    {
        ["peer"] = "llama.cpp (LLamaSharp 0.30.0)",
        ["type"] = type,
        ["threads"] = threads,
        ["seconds"] = sw.Elapsed.TotalSeconds,
        ["bytes"] = new FileInfo(output).Length,
    }));
    return 0;
}

static void Check(DecodeResult r)
{
    if (r != DecodeResult.Ok) throw new InvalidOperationException("llama.cpp decode failed: " + r);
}
