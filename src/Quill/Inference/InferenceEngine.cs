// The forward pass for inference: token ids in, next-token logits out, keys and values kept in a KvCache.
// One core runs "rows" of activations, each belonging to a sequence segment (cache, first position, count):
// a prompt is one segment of many rows (prefill: the linear layers run as GEMM), a decode step is one row
// (matrix-vector kernels), batched decode is several one-row segments, one per sequence, whose linear layers read
// each weight once for all of them. Prompts are run in chunks of PrefillChunk rows so scratch stays bounded.
// It runs the same ModelSpec as the trainable TransformerModel, block for block: norm (RMSNorm or LayerNorm with
// bias), q|k|v (+bias), q/k norms, RoPE at each row's position with the layer's base (rotary models), append k, v to
// the cache, attention over the cache (the layer's sliding window, score scale and soft-cap), output projection
// (+bias), post-norm (Gemma), residual; norm, SwiGLU, GeGLU or GELU MLP (+biases), post-norm (Gemma), residual;
// learned positions added to the embedding, or the embedding scaled by sqrt(C) (Gemma), when the spec says so; the
// logits soft-capped (Gemma 2); a mixture of experts in place of the MLP (Mixtral, Qwen3-MoE: the rows grouped per
// chosen expert, so a prefill runs each expert once over its rows and a decode step reads only k experts). A
// windowed layer's cache keeps only its window (a ring, see KvCache) and the layer reads only that. A test
// holds the two forwards equal for every architecture. Only the rows whose logits are asked for go through the final
// norm and the classifier.
// InputObserver, when set, sees the input rows of every layer matrix product (what an importance matrix averages).
// Not thread-safe: one engine runs one forward at a time (its scratch is shared); use one engine per thread.
// Glossary: N rows in this call, C width, Hq / Hkv heads, D head size, F MLP width, V vocabulary.
using Quill.Kernels;
using Quill.Models;
using Quill.Tensors;

namespace Quill.Inference;

/// <summary>Runs an <see cref="InferenceModel"/> with KV caches: prefill, decode and batched decode.</summary>
public sealed unsafe class InferenceEngine
{
    /// <summary>Largest number of prompt rows run in one pass (longer prompts run in several).</summary>
    public const int PrefillChunk = 256;

    private readonly InferenceModel model;
    private readonly ModelSpec spec;
    private readonly float[] ropeCos = [], ropeSin = [];
    private readonly float[]? localCos, localSin; // Gemma 3's windowed layers: their own RoPE base
    private Scratch scratch = new(0, null!);

    /// <summary>Scratch for Qwen3's per-head q/k norms: one 1/rms per head of a token.</summary>
    private readonly float[] qkRstd;

    /// <summary>Prepares a model to run with caches of up to <paramref name="contextLength"/> positions
    /// (0: the model's context, capped at 4096).</summary>

    public InferenceEngine(InferenceModel model, int contextLength = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        this.model = model;
        qkRstd = new float[model.Spec.Heads + model.Spec.KvHeads];
        spec = model.Spec;
        if (contextLength < 0) throw new InvalidConfigException($"--context must not be negative (got {contextLength}).");
        ContextLength = contextLength == 0 ? Math.Min(spec.MaxContext, 4096) : contextLength;
        if (ContextLength > spec.MaxContext)
            throw new InvalidConfigException($"--context {ContextLength} exceeds the model's context of {spec.MaxContext} tokens; pass at most {spec.MaxContext}.");
        if (spec.UsesRope)
        {
            var tables = RopeFrequencies.Tables(spec, ContextLength);
            (ropeCos, ropeSin) = (tables.Cos, tables.Sin);
            if (spec.RopeThetaLocal > 0)
            {
                var local = RopeFrequencies.LocalTables(spec, ContextLength);
                (localCos, localSin) = (local.Cos, local.Sin);
            }
        }
    }

    public InferenceModel Model => model;

    /// <summary>Sees the input of every layer matrix product (null: none); used to collect an importance matrix.</summary>
    public MatrixInputObserver? InputObserver { get; set; }

    /// <summary>Positions a cache made by this engine can hold.</summary>
    public int ContextLength { get; }

    /// <summary>
    /// A new, empty cache (capacity 0 = <see cref="ContextLength"/>). Windowed layers keep only their window (a ring
    /// of window + PrefillChunk - 1 positions) unless <paramref name="keepAll"/>.
    /// </summary>
    public KvCache CreateCache(int capacity = 0, bool keepAll = false)
    {
        if (capacity > ContextLength) throw new InvalidConfigException($"cache capacity {capacity} exceeds the engine's context of {ContextLength}.");
        return new KvCache(spec, capacity == 0 ? ContextLength : capacity, PrefillChunk, keepAll);
    }

    /// <summary>
    /// Runs tokens at the cache's next positions, appends their keys and values, and writes the logits of the last
    /// token to logits [V] (or of every token to logits [T, V] when allLogits).
    /// </summary>
    public void Forward(KvCache cache, ReadOnlySpan<int> tokens, Span<float> logits, bool allLogits = false)
    {
        ArgumentNullException.ThrowIfNull(cache);
        int t = tokens.Length, v = spec.VocabSize;
        if (t == 0) throw new ArgumentException("no tokens to run.", nameof(tokens));
        if (logits.Length < (allLogits ? (long)t * v : v)) throw new ArgumentException($"logits must hold {(allLogits ? (long)t * v : v)} floats.", nameof(logits));
        CheckTokens(tokens);
        if (t > cache.Remaining)
            throw new QuillException($"{cache.Length + t} tokens do not fit the context of {cache.Capacity} (the prompt or conversation is too long); shorten it or raise --context (model maximum {spec.MaxContext}).");
        for (int start = 0; start < t; start += PrefillChunk)
        {
            int n = Math.Min(PrefillChunk, t - start);
            bool last = start + n == t;
            var segs = new[] { new Segment(cache, 0, n, cache.Length) };
            if (allLogits) Run(segs, tokens.Slice(start, n), n, logits.Slice(start * v), outputAll: true);
            else Run(segs, tokens.Slice(start, n), n, last ? logits : default, outputAll: false);
            cache.Length += n;
        }
    }

    /// <summary>
    /// One decode step for several sequences together: token b runs at caches[b]'s next position; logits [B, V].
    /// Linear layers read each weight once for the whole batch.
    /// </summary>
    public void DecodeBatch(IReadOnlyList<KvCache> caches, ReadOnlySpan<int> tokens, Span<float> logits)
    {
        ArgumentNullException.ThrowIfNull(caches);
        int b = caches.Count;
        if (tokens.Length != b) throw new ArgumentException($"{tokens.Length} tokens for {b} caches.", nameof(tokens));
        if (logits.Length < (long)b * spec.VocabSize) throw new ArgumentException($"logits must hold {(long)b * spec.VocabSize} floats.", nameof(logits));
        CheckTokens(tokens);
        var segs = new Segment[b];
        for (int i = 0; i < b; i++)
        {
            var c = caches[i];
            if (c.Remaining < 1) throw new QuillException($"sequence {i} has filled its context of {c.Capacity} tokens; end it or raise --context.");
            for (int j = 0; j < i; j++)
            {
                if (ReferenceEquals(caches[j], c)) throw new ArgumentException($"cache {i} appears twice in the batch.", nameof(caches));
            }
            segs[i] = new Segment(c, i, 1, c.Length);
        }
        int chunk = PrefillChunk;
        for (int start = 0; start < b; start += chunk)
        {
            int n = Math.Min(chunk, b - start);
            var part = new Segment[n];
            for (int i = 0; i < n; i++) part[i] = segs[start + i] with { Row = i };
            Run(part, tokens.Slice(start, n), n, logits.Slice(start * spec.VocabSize), outputAll: true);
        }
        foreach (var c in caches) c.Length++;
    }

    private void CheckTokens(ReadOnlySpan<int> tokens)
    {
        foreach (int id in tokens)
        {
            if ((uint)id >= (uint)spec.VocabSize)
                throw new QuillException($"token id {id} is outside the model's vocabulary of {spec.VocabSize}; use the model's own tokenizer.");
        }
    }

    /// <summary>Rows [Row, Row + Count) of this call belong to Cache at positions [Pos0, Pos0 + Count).</summary>
    private readonly record struct Segment(KvCache Cache, int Row, int Count, int Pos0);

    private void Run(Segment[] segs, ReadOnlySpan<int> tokens, int n, Span<float> logits, bool outputAll)
    {
        var s = spec;
        int c = s.Dim, qkvW = s.QkvDim, qd = s.QDim, kvd = s.KvDim, f = s.Hidden, d = s.HeadDim;
        var sc = EnsureScratch(n);
        float* x = sc.X, h = sc.H, qkv = sc.Qkv, att = sc.Att, tmp = sc.Tmp, gate = sc.Gate, up = sc.Up;
        var xs = new Span<float>(x, n * c);
        var hs = new Span<float>(h, n * c);

        for (int r = 0; r < n; r++) model.TokenEmbedding.ReadRow(tokens[r], xs.Slice(r * c, c));
        if (s.EmbedScale) Elementwise.Scale(xs, MathF.Sqrt(c)); // Gemma
        if (model.PositionEmbedding is { } wpe)
        {
            foreach (var g in segs)
            {
                for (int i = 0; i < g.Count; i++)
                    Add(xs.Slice((g.Row + i) * c, c), wpe.AsSpan((g.Pos0 + i) * c, c));
            }
        }

        float scale = s.EffectiveAttentionScale;
        for (int l = 0; l < model.Layers.Count; l++)
        {
            var lw = model.Layers[l];
            int window = s.LayerWindow(l);
            bool local = localCos != null && window > 0;
            float[] cos = local ? localCos! : ropeCos, sin = local ? localSin! : ropeSin;
            foreach (var g in segs)
            {
                if (g.Count == 1) g.Cache.Prefetch(l, g.Pos0); // decode: the slots this layer writes, while its weights stream
            }
            if (lw.AttnNorm != null) Norm(xs, lw.AttnNorm, lw.AttnNormBias, hs, n, sc);
            else xs[..(n * c)].CopyTo(hs); // OLMo 2: no norm before attention
            InputObserver?.Invoke(l, MatrixInput.Attention, hs[..(n * c)], n, c);
            if (lw.Wqkv != null) lw.Wqkv.Multiply(h, c, n, qkv, qkvW);
            else
            {
                WeightMatrix.MultiplyMany([lw.Wq!, lw.Wk!, lw.Wv!], h, c, n, [(nint)qkv, (nint)(qkv + qd), (nint)(qkv + qd + kvd)], [qkvW, qkvW, qkvW]);
            }
            var qkvs = new Span<float>(qkv, n * qkvW);
            if (lw.QkvBias is { } qb)
            {
                for (int r = 0; r < n; r++) Add(qkvs.Slice(r * qkvW, qkvW), qb);
            }
            if (lw.QNorm is { } qn && lw.KNorm is { } kn)
            {
                // Qwen3: each head of q and of k RMS-normalized over its D values, before RoPE (in place); OLMo 2:
                // q and k each over their whole width
                Span<float> rstd = qkRstd;
                var (qg, qw, kg, kw) = s.QkNormWhole ? (1, qd, 1, kvd) : (s.Heads, d, s.KvHeads, d);
                for (int r = 0; r < n; r++)
                {
                    var q = qkvs.Slice(r * qkvW, qd);
                    var k = qkvs.Slice(r * qkvW + qd, kvd);
                    RmsNorm.Forward(q, qn, q, rstd[..qg], qg, qw, s.NormEps);
                    RmsNorm.Forward(k, kn, k, rstd.Slice(qg, kg), kg, kw, s.NormEps);
                }
            }
            foreach (var g in segs)
            {
                var rows = qkvs.Slice(g.Row * qkvW, g.Count * qkvW);
                if (s.UsesRope)
                {
                    Rope.Apply(rows, 1, g.Count, s.Heads, d, qkvW, s.EffectiveRotaryDim, g.Pos0, cos, sin, s.RopeStyle, false);
                    Rope.Apply(rows[qd..], 1, g.Count, s.KvHeads, d, qkvW, s.EffectiveRotaryDim, g.Pos0, cos, sin, s.RopeStyle, false);
                }
                for (int i = 0; i < g.Count; i++)
                {
                    var row = rows.Slice(i * qkvW, qkvW);
                    g.Cache.Store(l, g.Pos0 + i, row.Slice(qd, kvd), row.Slice(qd + kvd, kvd));
                }
                Attention.ForwardCached(g.Count, g.Pos0, s.Heads, s.KvHeads, d, scale, rows, qkvW,
                    g.Cache.Keys[l], g.Cache.Values[l], g.Cache.Slots[l], new Span<float>(att + (long)g.Row * qd, g.Count * qd),
                    window, s.AttnSoftcap, g.Cache.Ring[l]);
            }
            InputObserver?.Invoke(l, MatrixInput.AttentionOutput, new ReadOnlySpan<float>(att, n * qd), n, qd);
            lw.Wo.Multiply(att, qd, n, tmp, c);
            var tmps = new Span<float>(tmp, n * c);
            if (lw.AttnPostNorm is { } apn) Norm(tmps, apn, null, tmps, n, sc); // Gemma: the attention output normalized
            Residual(xs, tmps, lw.WoBias, n, c);

            if (lw.MlpNorm != null) Norm(xs, lw.MlpNorm, lw.MlpNormBias, hs, n, sc);
            else xs[..(n * c)].CopyTo(hs);
            if (lw.Experts is { } experts)
            {
                Experts(experts, h, n, sc);
                Residual(xs, tmps, null, n, c);
                continue;
            }
            InputObserver?.Invoke(l, MatrixInput.Mlp, hs[..(n * c)], n, c);
            var gs = new Span<float>(gate, n * f);
            float* mlp = gate;
            if (lw.Gate != null)
            {
                WeightMatrix.MultiplyMany([lw.Gate, lw.Up!], h, c, n, [(nint)gate, (nint)up], [f, f]);
                if (s.Mlp == MlpKind.GeGlu)
                {
                    // Gemma: gelu_tanh(gate) * up
                    if (GeluOverride is { } g) g(gs, gs);
                    else Gelu.Forward(gs, gs);
                    var ups = new Span<float>(up, n * f);
                    for (int i = 0; i < gs.Length; i++) gs[i] *= ups[i];
                }
                else
                {
                    SwiGlu.Forward(gs, new Span<float>(up, n * f), gs);
                }
            }
            else
            {
                lw.Up!.Multiply(h, c, n, gate, f);
                if (lw.UpBias is { } ub)
                {
                    for (int r = 0; r < n; r++) Add(gs.Slice(r * f, f), ub);
                }
                if (GeluOverride is { } g) g(gs, new Span<float>(up, n * f));
                else Gelu.Forward(gs, new Span<float>(up, n * f));
                mlp = up;
            }
            InputObserver?.Invoke(l, MatrixInput.MlpDown, new ReadOnlySpan<float>(mlp, n * f), n, f);
            lw.Down!.Multiply(mlp, f, n, tmp, c);
            if (lw.MlpPostNorm is { } mpn) Norm(tmps, mpn, null, tmps, n, sc); // Gemma: the MLP output normalized
            Residual(xs, tmps, lw.DownBias, n, c);
        }

        if (logits.IsEmpty) return;
        int first = outputAll ? 0 : n - 1, m = n - first;
        Norm(xs.Slice(first * c, m * c), model.FinalNorm, model.FinalNormBias, hs, m, sc);
        fixed (float* pl = logits)
            model.Classifier.Multiply(h, c, m, pl, s.VocabSize);
        if (s.FinalSoftcap > 0)
        {
            var ls = logits[..(m * s.VocabSize)];
            Autograd.Ops.SoftcapOp.Apply(ls, ls, s.FinalSoftcap); // Gemma 2
        }
    }

    /// <summary>
    /// A mixture of experts over the n normalized rows h [N, C], into tmp [N, C]: router logits [N, E], each row's
    /// top-k experts and weights (Kernels.MoeRouting, as in training), then per expert that some row chose: its rows
    /// gathered [m, C], gate|up [m, F], SwiGLU, down [m, C], each output row added into its token's row of tmp times
    /// the token's weight for that expert. Experts no row chose are never read: a decode step reads k of E.
    /// </summary>
    private void Experts(ExpertWeights x, float* h, int n, Scratch sc)
    {
        int c = spec.Dim, f = spec.Hidden, e = spec.Experts, k = spec.ExpertsUsed;
        float* logits = sc.Router, gathered = sc.Gathered, outRows = sc.ExpertOut, gate = sc.Gate, up = sc.Up, tmp = sc.Tmp;
        x.Router.Multiply(h, c, n, logits, e);
        ExpertBytesRead += x.Router.ByteSize;
        var chosen = sc.Chosen;
        var weights = sc.ChosenWeights;
        for (int r = 0; r < n; r++)
            MoeRouting.Route(new ReadOnlySpan<float>(logits + (long)r * e, e), k, spec.NormTopK, chosen.AsSpan(r * k, k), weights.AsSpan(r * k, k));
        new Span<float>(tmp, n * c).Clear();
        var rows = sc.ExpertRows;
        var slots = sc.ExpertSlots;
        for (int ex = 0; ex < e; ex++)
        {
            int m = 0;
            for (int i = 0; i < n * k; i++)
            {
                if (chosen[i] != ex) continue;
                rows[m] = i / k;
                slots[m++] = i;
            }
            if (m == 0) continue;
            for (int j = 0; j < m; j++) Buffer.MemoryCopy(h + (long)rows[j] * c, gathered + (long)j * c, c * sizeof(float), c * sizeof(float));
            WeightMatrix.MultiplyMany([x.Gate[ex], x.Up[ex]], gathered, c, m, [(nint)gate, (nint)up], [f, f]);
            SwiGlu.Forward(new Span<float>(gate, m * f), new Span<float>(up, m * f), new Span<float>(gate, m * f));
            x.Down[ex].Multiply(gate, f, m, outRows, c);
            ExpertBytesRead += x.Gate[ex].ByteSize + x.Up[ex].ByteSize + x.Down[ex].ByteSize;
            for (int j = 0; j < m; j++)
                MoeRouting.AddScaled(new Span<float>(tmp + (long)rows[j] * c, c), new ReadOnlySpan<float>(outRows + (long)j * c, c), weights[slots[j]]);
        }
    }

    /// <summary>
    /// Test seam: a GELU to use instead of Quill's (x -> y, same length). The llama.cpp comparisons put ggml's
    /// half-precision GELU table here to show that, with it, Quill's quantized GPT-2 computes llama.cpp's logits.
    /// </summary>
    internal GeluKernel? GeluOverride { get; set; }

    internal delegate void GeluKernel(ReadOnlySpan<float> x, Span<float> y);

    /// <summary>Bytes of router and expert matrices the forwards so far have read (a test and `quill bench decode` use it).</summary>
    public long ExpertBytesRead { get; private set; }

    private void Norm(ReadOnlySpan<float> x, float[] w, float[]? b, Span<float> y, int n, Scratch sc)
    {
        var rstd = new Span<float>(sc.Rstd, n);
        if (spec.Norm == NormKind.RmsNorm) RmsNorm.Forward(x[..(n * spec.Dim)], w, y[..(n * spec.Dim)], rstd, n, spec.Dim, spec.NormEps);
        else LayerNorm.Forward(x[..(n * spec.Dim)], w, b ?? default, y[..(n * spec.Dim)], new Span<float>(sc.Mean, n), rstd, n, spec.Dim, spec.NormEps);
    }

    private static void Residual(Span<float> x, ReadOnlySpan<float> delta, float[]? bias, int n, int c)
    {
        for (int r = 0; r < n; r++)
        {
            var xr = x.Slice(r * c, c);
            Add(xr, delta.Slice(r * c, c));
            if (bias != null) Add(xr, bias);
        }
    }

    /// <summary>x += y. x, y: [n]</summary>
    private static void Add(Span<float> x, ReadOnlySpan<float> y) => Elementwise.AddInPlace(x, y);

    private Scratch EnsureScratch(int rows)
    {
        if (scratch.Rows >= rows) return scratch;
        scratch = new Scratch(Math.Max(rows, 1), spec);
        return scratch;
    }

    /// <summary>Pinned per-row buffers for one forward: x, h [N, C]; qkv [N, QkvDim]; att [N, QDim]; tmp [N, C]; gate, up [N, F].</summary>
    private sealed class Scratch
    {
        private readonly float[] buffer = [];

        public Scratch(int rows, ModelSpec spec)
        {
            Rows = rows;
            if (spec == null) return;
            int c = spec.Dim, f = spec.Hidden;
            long moe = spec.IsMoe ? rows : 0;
            long[] sizes = [(long)rows * c, (long)rows * c, (long)rows * spec.QkvDim, (long)rows * spec.QDim, (long)rows * c, (long)rows * f, (long)rows * f, rows, rows,
                moe * spec.Experts, moe * c, moe * c];
            long total = 0;
            foreach (long z in sizes) total += (z + 15) / 16 * 16;
            buffer = GC.AllocateArray<float>(checked((int)total), pinned: true);
            float* p = (float*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(buffer));
            var ptrs = new float*[sizes.Length];
            for (int i = 0; i < sizes.Length; i++)
            {
                ptrs[i] = p;
                p += (sizes[i] + 15) / 16 * 16;
            }
            X = ptrs[0];
            H = ptrs[1];
            Qkv = ptrs[2];
            Att = ptrs[3];
            Tmp = ptrs[4];
            Gate = ptrs[5];
            Up = ptrs[6];
            Rstd = ptrs[7];
            Mean = ptrs[8];
            Router = ptrs[9];
            Gathered = ptrs[10];
            ExpertOut = ptrs[11];
            int picks = spec.IsMoe ? rows * spec.ExpertsUsed : 0;
            Chosen = new int[picks];
            ChosenWeights = new float[picks];
            ExpertRows = new int[picks];
            ExpertSlots = new int[picks];
        }

        public int Rows { get; }

        public float* X { get; }

        public float* H { get; }

        public float* Qkv { get; }

        public float* Att { get; }

        public float* Tmp { get; }

        public float* Gate { get; }

        public float* Up { get; }

        public float* Rstd { get; }

        public float* Mean { get; }

        /// <summary>Mixtures of experts: router logits [N, E], one expert's gathered rows and its outputs [N, C].</summary>
        public float* Router { get; }

        public float* Gathered { get; }

        public float* ExpertOut { get; }

        /// <summary>Each row's chosen experts and their weights [N, k]; one expert's rows and their (row, slot) index.</summary>
        public int[] Chosen { get; } = [];

        public float[] ChosenWeights { get; } = [];

        public int[] ExpertRows { get; } = [];

        public int[] ExpertSlots { get; } = [];
    }
}
