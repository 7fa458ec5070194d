// `quill bench decode`: batch-1 decode and prefill tokens/s of a model (a file, or a stories15M / stories110M
// shaped Llama with random weights, converted to f32 / q8_0 / q4_0), the memory-bandwidth limit (weight bytes read
// per token / read bandwidth measured here with a streaming read of a 256 MiB buffer on all threads), and the
// PyTorch peer ../shared/peers/torch_llama_decode.py (OMP_WAIT_POLICY=PASSIVE, --matvec mv, same threads) in the
// same run for the stories shapes. Decode timing excludes the first generated token (it comes from the prefill),
// as llama2.c's run.c and the peer do. The read bandwidth a shared host gives swings by 1.5x from minute to
// minute, so every decode run is paired with a bandwidth measurement taken just before it, and the fraction of
// the limit is the median of the per-run fractions; each other figure is the median of the runs ("best": the
// fastest run, to set beside a peer's best). Decoding first runs for a second untimed, so the JIT has moved the
// kernels to their optimized tier before timing starts.
// A mixture of experts (a file, or the mixtral15M shape: stories15M with each MLP replaced by 8 experts of its
// width, 2 per token, as Mixtral's 8 / 2) also reports the weights of all experts and the bytes of router and expert
// matrices the engine actually read per decoded token (InferenceEngine.ExpertBytesRead), which is k of E experts.
// Does not handle: batched decode throughput, sampling cost (greedy argmax only).
// Glossary: V vocabulary.
using System.Diagnostics;
using System.Globalization;
using System.Runtime.Intrinsics;
using System.Text.Json;
using Quill.Evaluation;
using Quill.Formats.Gguf;
using Quill.Quantization;
using Quill.Inference;
using Quill.Models;
using Quill.Tensors;
using Quill.Kernels;

namespace Quill.Benchmarks;

/// <summary>Options of the decode benchmark.</summary>
public sealed record DecodeBenchOptions(string? ModelPath, string? Shape, string? Dtype, int Tokens = 128, int Runs = 5, int Threads = 0, int PromptTokens = 128, bool Peer = true);

/// <summary>Decode / prefill throughput against the bandwidth limit and PyTorch.</summary>
public static class DecodeBenchmark
{
    /// <summary>The model shapes of llama2.c's TinyStories models.</summary>
    public static readonly IReadOnlyDictionary<string, (int Dim, int Hidden, int Layers, int Heads, int Vocab, int SeqLen)> Shapes =
        new Dictionary<string, (int, int, int, int, int, int)>
        {
            ["stories15M"] = (288, 768, 6, 6, 32000, 256),
            ["stories110M"] = (768, 2048, 12, 12, 32000, 1024),
        };

    /// <summary>Random mixtures of experts: a stories shape, experts per layer and experts per token.</summary>
    public static readonly IReadOnlyDictionary<string, (string Base, int Experts, int Used)> MoeShapes =
        new Dictionary<string, (string, int, int)> { ["mixtral15M"] = ("stories15M", 8, 2) };

    /// <summary>Runs the benchmark and returns one result per figure.</summary>
    public static IReadOnlyList<BenchResult> Run(DecodeBenchOptions o, TextWriter? log)
    {
        ArgumentNullException.ThrowIfNull(o);
        if (o.Tokens < 2 || o.Runs < 1 || o.PromptTokens < 1) throw new InvalidConfigException("--tokens must be at least 2, --runs and --prompt-tokens at least 1.");
        if ((o.ModelPath == null) == (o.Shape == null)) throw new InvalidConfigException("pass exactly one of --model PATH and --shape stories15M|stories110M|mixtral15M.");
        if (o.Threads > 0) KernelThreads.Count = o.Threads;
        using var model = o.ModelPath != null ? ModelLoader.Load(o.ModelPath, null, o.Dtype) : RandomModel(o.Shape!, o.Dtype ?? "f32");
        string name = o.Shape ?? Path.GetFileName(o.ModelPath!.TrimEnd('/'));
        string dtype = o.Dtype ?? (o.ModelPath != null ? model.Layers[0].Wo.Type.ToString().ToLowerInvariant() : "f32");
        var engine = new InferenceEngine(model, Math.Min(model.Spec.MaxContext, Math.Max(o.Tokens + 1, o.PromptTokens)));
        bool moe = model.Spec.IsMoe;
        log?.WriteLine($"decode bench: {name} {dtype}, {model.WeightBytesPerToken / 1e6:F1} MB of weights per token{(moe ? $" of {model.Weights.WeightBytes / 1e6:F1} MB ({model.Spec.ExpertsUsed} of {model.Spec.Experts} experts)" : "")}, {KernelThreads.Count} threads");

        int pt = Math.Min(o.PromptTokens, engine.ContextLength);
        var warm = Stopwatch.StartNew();
        while (warm.Elapsed.TotalSeconds < 1) // JIT tiers, caches
        {
            Decode(engine, Math.Min(16, engine.ContextLength - 1));
            Prefill(engine, Math.Min(pt, 16));
        }
        long expertBytes = engine.ExpertBytesRead;
        int measured = Math.Min(o.Tokens, engine.ContextLength - 1);
        Decode(engine, measured);
        double expertPerToken = (double)(engine.ExpertBytesRead - expertBytes) / measured; // every step, the first one too, is one token
        var decode = new List<double>();
        var bandwidth = new List<double>();
        var fraction = new List<double>();
        using (var probe = new BandwidthProbe())
        {
            for (int r = 0; r < o.Runs; r++)
            {
                double bwRun = probe.Measure();
                double decRun = Decode(engine, Math.Min(o.Tokens, engine.ContextLength - 1));
                bandwidth.Add(bwRun);
                decode.Add(decRun);
                fraction.Add(decRun / (bwRun / model.WeightBytesPerToken));
            }
        }
        var prefill = new List<double>();
        for (int r = 0; r < o.Runs; r++) prefill.Add(Prefill(engine, pt));
        double bw = Median(bandwidth);
        double limit = bw / model.WeightBytesPerToken;
        double? peer = o.Peer && o.Shape != null && Shapes.ContainsKey(o.Shape) && dtype == "f32" ? RunPeer(o.Shape, o.Runs, log) : null;

        var fields = new Dictionary<string, object>
        {
            ["model"] = name,
            ["dtype"] = dtype,
            ["threads"] = KernelThreads.Count,
            ["weight_MB_per_token"] = Math.Round(model.WeightBytesPerToken / 1e6, 1),
        };
        if (moe)
        {
            fields["weight_MB_total"] = Math.Round(model.Weights.WeightBytes / 1e6, 1);
            fields["experts_used"] = $"{model.Spec.ExpertsUsed} of {model.Spec.Experts}";
            fields["router_expert_MB_read_per_token"] = Math.Round(expertPerToken / 1e6, 2);
            fields["router_expert_MB_total"] = Math.Round(model.Layers.Sum(l => l.Experts!.ExpertBytes() + l.Experts.Router.ByteSize) / 1e6, 2);
        }
        double dec = Median(decode);
        var results = new List<BenchResult>
        {
            new("decode_tokens_per_s", dec, "tokens/s", peer, new Dictionary<string, object>(fields) { ["peer_name"] = peer != null ? "torch_llama_decode mv PASSIVE" : "none", ["of_bandwidth_limit"] = Math.Round(Median(fraction), 3), ["best"] = Math.Round(decode.Max(), 3) }),
            new("prefill_tokens_per_s", Median(prefill), "tokens/s", null, new Dictionary<string, object>(fields) { ["prompt_tokens"] = pt, ["best"] = Math.Round(prefill.Max(), 3) }),
            new("bandwidth_limit_tokens_per_s", limit, "tokens/s", null, new Dictionary<string, object>(fields) { ["read_GB_per_s"] = Math.Round(bw / 1e9, 1), ["read_GB_per_s_min"] = Math.Round(bandwidth.Min() / 1e9, 1), ["read_GB_per_s_max"] = Math.Round(bandwidth.Max() / 1e9, 1) }),
        };
        return results;
    }

    /// <summary>A Llama of a stories shape with random weights (N(0, 0.02) matrices, norms near 1), tied classifier.</summary>
    public static InferenceModel RandomModel(string shape, string dtype)
    {
        var moe = MoeShapes.TryGetValue(shape, out var ms) ? ms : default;
        if (!Shapes.TryGetValue(moe.Base ?? shape, out var s)) throw new InvalidConfigException($"--shape '{shape}' is unknown; use {string.Join(", ", Shapes.Keys.Concat(MoeShapes.Keys))}.");
        GgmlType type = ModelLoader.ParseType(dtype);
        var rng = new Tensors.Rng(1234);
        WeightMatrix M(string n, int rows, int cols)
        {
            var w = new float[rows * cols];
            rng.FillNormal(w, 0.02);
            return WeightMatrix.Quantize(n, w, rows, cols, type);
        }
        float[] Ones(int n)
        {
            var v = new float[n];
            rng.FillNormal(v, 0.1);
            for (int i = 0; i < n; i++) v[i] += 1f;
            return v;
        }
        var spec = new ModelSpec
        {
            Arch = shape, Dim = s.Dim, Layers = s.Layers, Heads = s.Heads, KvHeads = s.Heads,
            HeadDim = s.Dim / s.Heads, Hidden = s.Hidden, VocabSize = s.Vocab, MaxContext = s.SeqLen, NormEps = 1e-5f,
            RopeStyle = RopeStyle.Interleaved, Experts = moe.Experts, ExpertsUsed = moe.Used, NormTopK = moe.Experts > 0,
        };
        var layers = new LayerWeights[s.Layers];
        for (int l = 0; l < s.Layers; l++)
        {
            layers[l] = new LayerWeights
            {
                AttnNorm = Ones(s.Dim), Wq = M($"wq{l}", s.Dim, s.Dim), Wk = M($"wk{l}", s.Dim, s.Dim), Wv = M($"wv{l}", s.Dim, s.Dim),
                Wo = M($"wo{l}", s.Dim, s.Dim), MlpNorm = Ones(s.Dim),
            };
            if (moe.Experts > 0)
            {
                int e = moe.Experts;
                var router = new float[e * s.Dim];
                rng.FillNormal(router, 0.5); // spread routing over the experts
                layers[l] = new LayerWeights
                {
                    AttnNorm = layers[l].AttnNorm, Wq = layers[l].Wq, Wk = layers[l].Wk, Wv = layers[l].Wv, Wo = layers[l].Wo, MlpNorm = layers[l].MlpNorm,
                    Experts = new ExpertWeights(WeightMatrix.FromFloats($"router{l}", router, e, s.Dim),
                        [.. Enumerable.Range(0, e).Select(x => M($"w1{l}.{x}", s.Hidden, s.Dim))], [.. Enumerable.Range(0, e).Select(x => M($"w3{l}.{x}", s.Hidden, s.Dim))],
                        [.. Enumerable.Range(0, e).Select(x => M($"w2{l}.{x}", s.Dim, s.Hidden))]),
                };
            }
            else
            {
                layers[l] = new LayerWeights
                {
                    AttnNorm = layers[l].AttnNorm, Wq = layers[l].Wq, Wk = layers[l].Wk, Wv = layers[l].Wv, Wo = layers[l].Wo, MlpNorm = layers[l].MlpNorm,
                    Gate = M($"w1{l}", s.Hidden, s.Dim), Up = M($"w3{l}", s.Hidden, s.Dim), Down = M($"w2{l}", s.Dim, s.Hidden),
                };
            }
        }
        var emb = M("emb", s.Vocab, s.Dim);
        return new InferenceModel(new ModelWeights(spec with { TiedEmbeddings = true }, emb, null, layers, Ones(s.Dim), null, emb, [], $"random {shape}"));
    }

    /// <summary>Greedy decode of n tokens from BOS; tokens/s excluding the first.</summary>
    private static double Decode(InferenceEngine engine, int n)
    {
        var cache = engine.CreateCache();
        var logits = new float[engine.Model.Spec.VocabSize];
        int tok = 1;
        engine.Forward(cache, [tok], logits);
        var sw = Stopwatch.StartNew();
        for (int i = 1; i < n; i++)
        {
            tok = ArgMax(logits);
            engine.Forward(cache, [tok], logits);
        }
        return (n - 1) / sw.Elapsed.TotalSeconds;
    }

    private static double Prefill(InferenceEngine engine, int n)
    {
        var rnd = new Random(5);
        int[] prompt = [.. Enumerable.Range(0, n).Select(_ => rnd.Next(engine.Model.Spec.VocabSize))];
        var logits = new float[engine.Model.Spec.VocabSize];
        var sw = Stopwatch.StartNew();
        engine.Forward(engine.CreateCache(n), prompt, logits);
        return n / sw.Elapsed.TotalSeconds;
    }

    private static int ArgMax(float[] x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) best = x[i] > x[best] ? i : best;
        return best;
    }

    private static double Median(List<double> x) => Statistics.Median(x.Order().ToArray());

    /// <summary>PyTorch decode tokens/s (torch_llama_decode.py --matvec mv, OMP_WAIT_POLICY=PASSIVE), or null.</summary>
    public static double? RunPeer(string shape, int runs, TextWriter? log)
    {
        string[] args = ["--models", shape, "--threads", KernelThreads.Count.ToString(CultureInfo.InvariantCulture), "--runs", runs.ToString(CultureInfo.InvariantCulture),
            "--matvec", "mv", "--steps", shape == "stories15M" ? "256" : "128"];
        return TorchPeer.Run("torch_llama_decode.py", args, "tok_per_s_median", log);
    }
}
