// Test-only oracle: llama.cpp (through the NuGet packages LLamaSharp + LLamaSharp.Backend.Cpu) opens a GGUF file and
// gives its logits and greedy tokens for token ids we pass in (no tokenizer in between, so only the model is
// compared). Used by the tests that prove llama.cpp reads Quill's GGUF files and computes what Quill computes.
// The backend picks its own best CPU build (noavx / avx2 / avx512) for this machine.
// Not handled: sampling, more than one sequence, KV-cache reuse between calls (every call starts from an empty cache).
using LLama;
using LLama.Common;
using LLama.Native;

namespace Quill.Tests.Support;

/// <summary>A GGUF model opened by llama.cpp.</summary>
internal sealed class LlamaCpp : IDisposable
{
    private static readonly object InitGate = new();
    private static bool initialized;
    private readonly LLamaWeights weights;
    private readonly LLamaContext context;

    private LlamaCpp(LLamaWeights weights, LLamaContext context)
    {
        this.weights = weights;
        this.context = context;
    }

    /// <summary>Vocabulary size of the loaded model.</summary>
    public int VocabSize => context.Vocab.Count;

    /// <summary>Opens <paramref name="path"/> on the CPU with a context of <paramref name="contextSize"/> tokens.</summary>
    public static LlamaCpp Open(string path, int contextSize = 256, int threads = 2, bool f32Cache = false, bool? flashAttention = null)
    {
        lock (InitGate)
        {
            if (!initialized)
            {
                // llama.cpp logs every tensor it loads to stderr; keep warnings and errors only.
                NativeLibraryConfig.All.WithLogCallback((level, message) =>
                {
                    if (level is LLamaLogLevel.Error or LLamaLogLevel.Warning) Console.Error.Write("llama.cpp: " + message);
                });
                initialized = true;
            }
        }
        var p = new ModelParams(path)
        {
            ContextSize = (uint)contextSize,
            BatchSize = (uint)contextSize,
            UBatchSize = (uint)contextSize,
            GpuLayerCount = 0,
            Threads = threads,
            BatchThreads = threads,
        };
        if (f32Cache)
        {
            // llama.cpp keeps K and V as F16 by default; F32 removes that rounding when comparing with Quill's f32 cache
            p.TypeK = GGMLType.GGML_TYPE_F32;
            p.TypeV = GGMLType.GGML_TYPE_F32;
        }
        if (flashAttention is bool fa) p.FlashAttention = fa;
        var w = LLamaWeights.LoadFromFile(p);
        return new LlamaCpp(w, w.CreateContext(p));
    }

    /// <summary>Applies a GGUF LoRA adapter (general.type adapter) to this context at <paramref name="scale"/>.</summary>
    public void AddLoraAdapter(string path, float scale = 1f)
    {
        var adapter = weights.NativeHandle.LoadLoraFromFile(path);
        context.NativeHandle.SetLoraAdapters([(adapter, scale)]);
    }

    /// <summary>Logits at every position of <paramref name="tokens"/> (row t predicts token t + 1).</summary>
    public float[][] Logits(IReadOnlyList<int> tokens)
    {
        context.NativeHandle.MemoryClear();
        var batch = new LLamaBatch();
        for (int i = 0; i < tokens.Count; i++) batch.Add((LLamaToken)tokens[i], i, LLamaSeqId.Zero, logits: true);
        Decode(batch);
        var rows = new float[tokens.Count][];
        for (int i = 0; i < tokens.Count; i++) rows[i] = context.NativeHandle.GetLogitsIth(i).ToArray();
        return rows;
    }

    /// <summary>llama.cpp's token ids for <paramref name="text"/> (no BOS, special-token text as plain text).</summary>
    public int[] Tokenize(string text) => context.Tokenize(text, addBos: false, special: false).Select(t => (int)t).ToArray();

    /// <summary>Greedy continuation: <paramref name="count"/> tokens after <paramref name="prompt"/> (ties: lowest id).</summary>
    public int[] Greedy(IReadOnlyList<int> prompt, int count)
    {
        context.NativeHandle.MemoryClear();
        var batch = new LLamaBatch();
        for (int i = 0; i < prompt.Count; i++) batch.Add((LLamaToken)prompt[i], i, LLamaSeqId.Zero, logits: i == prompt.Count - 1);
        Decode(batch);
        var output = new int[count];
        int pos = prompt.Count;
        for (int n = 0; n < count; n++)
        {
            int next = ArgMax(context.NativeHandle.GetLogitsIth(batch.TokenCount - 1));
            output[n] = next;
            batch.Clear();
            batch.Add((LLamaToken)next, pos++, LLamaSeqId.Zero, logits: true);
            Decode(batch);
        }
        return output;
    }

    private void Decode(LLamaBatch batch)
    {
        var result = context.Decode(batch);
        if (result != DecodeResult.Ok) throw new InvalidOperationException("llama.cpp decode failed: " + result);
    }

    private static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    public void Dispose()
    {
        context.Dispose();
        weights.Dispose();
    }
}
