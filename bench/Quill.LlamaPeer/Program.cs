// llama.cpp as a benchmark peer. Usage:
//   Quill.LlamaPeer decode FILE.gguf --prompt N --tokens N --threads N [--runs N]
// prints {"peer":"llama.cpp","prefill_tok_s":...,"decode_tok_s":...,"system_info":"..."} on one line (best of the
// runs; prefill_tok_s_median and decode_tok_s_median: their medians, to set beside `quill bench decode`'s medians).
//   Quill.LlamaPeer quantize IN.gguf OUT.gguf --type q4_k_m [--threads N]
// runs llama.cpp's own quantizer (llama_model_quantize, its default mixes, output tensor quantized as
// llama-quantize does) and prints {"peer":...,"type":...,"seconds":...,"bytes":...} on one line.
// Token ids are fixed (1, then 2..N+1 modulo the vocabulary) so no tokenizer enters the timing; decode is greedy.
//   Quill.LlamaPeer perplexity FILE.gguf --data TEXT [--context N] [--chunks N] [--threads N]
// prints {"peer":"llama.cpp","ppl":...,"ppl_error":...,"tokens_s":...} on one line: llama-perplexity's method with
// llama.cpp's forward (see Perplexity() below), timed from the first window to the last (tokenization not timed).
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
            var p = Params(file, prompt + tokens + 8, Math.Max(prompt, 8), Math.Max(prompt, 8), 1, threads);
            using var weights = LLamaWeights.LoadFromFile(p);
            using var context = weights.CreateContext(p);
            int vocab = context.Vocab.Count;
            var batch = new LLamaBatch();
            double bestPrefill = 0, bestDecode = 0;
            var prefills = new List<double>();
            var decodes = new List<double>();
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
                prefills.Add(prefill);
                decodes.Add(decode);
            }
            Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["peer"] = "llama.cpp (LLamaSharp 0.30.0)",
                ["threads"] = threads,
                ["prefill_tok_s"] = bestPrefill,
                ["decode_tok_s"] = bestDecode,
                ["prefill_tok_s_median"] = Median(prefills),
                ["decode_tok_s_median"] = Median(decodes),
                ["system_info"] = System.Runtime.InteropServices.Marshal.PtrToStringUTF8(NativeApi.llama_print_system_info())?.Trim() ?? "",
            }));
            return 0;
        }
    case "perplexity":
        return Perplexity(file, args, threads);
    case "quantize":
        return Quantize(file, args.Length > 2 ? args[2] : "", args, threads);
    default:
        Console.Error.WriteLine($"unknown subcommand {verb}");
        return 2;
}

// llama-perplexity's default run (tools/perplexity/perplexity.cpp): the text tokenized once with BOS, cut into
// windows of n_ctx tokens, each window's first token replaced by BOS, logits asked only for positions >= n_ctx/2,
// rows n_ctx/2 .. n_ctx-2 scoring the next token; n_batch 2048 puts 2048 / n_ctx windows into one decode as separate
// sequences, as llama-perplexity does. The log-softmax of the scored rows runs on all threads, as there.
static double Median(List<double> x)
{
    var s = x.Order().ToList();
    return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
}

static int Perplexity(string file, string[] args, int threads)
{
    string? data = null;
    int ctx = 512, chunks = 0;
    for (int i = 2; i + 1 < args.Length; i++)
    {
        if (args[i] == "--data") data = args[i + 1];
        if (args[i] == "--context") ctx = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
        if (args[i] == "--chunks") chunks = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
    }
    if (data == null)
    {
        Console.Error.WriteLine("perplexity needs --data FILE");
        return 2;
    }
    int nSeq = Math.Max(1, 2048 / ctx);
    var p = Params(file, ctx * nSeq, ctx * nSeq, Math.Min(ctx * nSeq, 512), nSeq, threads);
    using var weights = LLamaWeights.LoadFromFile(p);
    using var context = weights.CreateContext(p);
    int vocab = context.Vocab.Count;
    int bos = context.Vocab.BOS is LLamaToken b ? (int)b : -1;
    bool addBos = bos >= 0 && context.Vocab.ShouldAddBOS;
    int[] tokens = [.. context.Tokenize(File.ReadAllText(data), addBos, special: false).Select(t => (int)t)];
    int nChunk = tokens.Length / ctx;
    if (chunks > 0) nChunk = Math.Min(nChunk, chunks);
    int first = ctx / 2, scored = ctx - 1 - first;
    var batch = new LLamaBatch();
    double nll = 0, nll2 = 0;
    long count = 0;
    var decodeTime = TimeSpan.Zero;
    var sw = Stopwatch.StartNew();
    for (int i = 0; i < nChunk; i += nSeq)
    {
        int seqs = Math.Min(nSeq, nChunk - i);
        context.NativeHandle.MemoryClear();
        batch.Clear();
        var outputs = new int[seqs];
        for (int s = 0; s < seqs; s++)
        {
            int start = (i + s) * ctx;
            for (int k = 0; k < ctx; k++)
            {
                int id = k == 0 && addBos ? bos : tokens[start + k];
                int index = batch.Add((LLamaToken)id, k, (LLamaSeqId)s, k >= first);
                if (k == first) outputs[s] = index;
            }
        }
        var decodeStart = sw.Elapsed;
        Check(context.Decode(batch));
        decodeTime += sw.Elapsed - decodeStart;
        for (int s = 0; s < seqs; s++)
        {
            int start = (i + s) * ctx + first;
            var partial = new double[scored];
            Parallel.For(0, scored, new ParallelOptions { MaxDegreeOfParallelism = threads }, j =>
            {
                var row = context.NativeHandle.GetLogitsIth(outputs[s] + j);
                float max = row[0];
                for (int v = 1; v < vocab; v++) max = Math.Max(max, row[v]);
                double sum = 0;
                for (int v = 0; v < vocab; v++) sum += MathF.Exp(row[v] - max);
                partial[j] = max + Math.Log(sum) - row[tokens[start + j + 1]];
            });
            foreach (double x in partial)
            {
                nll += x;
                nll2 += x * x;
            }
            count += scored;
        }
    }
    double seconds = sw.Elapsed.TotalSeconds, mean = nll / count, var2 = nll2 / count - mean * mean;
    Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
    {
        ["peer"] = "llama.cpp (LLamaSharp 0.30.0)",
        ["threads"] = threads,
        ["context"] = ctx,
        ["chunks"] = nChunk,
        ["text_tokens"] = tokens.Length,
        ["tokens_scored"] = count,
        ["ppl"] = Math.Exp(mean),
        ["ppl_error"] = Math.Exp(mean) * (var2 > 0 ? Math.Sqrt(var2 / (count - 1)) : 0),
        ["seconds"] = seconds,
        ["decode_seconds"] = decodeTime.TotalSeconds,
        ["tokens_s"] = (double)nChunk * ctx / seconds,
        ["system_info"] = System.Runtime.InteropServices.Marshal.PtrToStringUTF8(NativeApi.llama_print_system_info())?.Trim() ?? "",
    }));
    return 0;
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

// CPU only, the given context, batch, micro-batch, sequences and threads.
static ModelParams Params(string file, int context, int batch, int ubatch, int sequences, int threads) => new(file)
{
    ContextSize = (uint)context,
    BatchSize = (uint)batch,
    UBatchSize = (uint)ubatch,
    SeqMax = (uint)sequences,
    GpuLayerCount = 0,
    Threads = threads,
    BatchThreads = threads,
};

static void Check(DecodeResult r)
{
    if (r != DecodeResult.Ok) throw new InvalidOperationException("llama.cpp decode failed: " + r);
}
