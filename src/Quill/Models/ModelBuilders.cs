// Assembles ModelWeights from named tensors through one TensorNames table, for every family Quill reads: the
// Llama family under HF names (Quill's own RoPE checkpoints too), Phi-3's fused q|k|v (qkv_proj / attn_qkv) and
// gate|up (gate_up_proj / a [2F, C] ffn_up, split by row views without copying), GPT-2 under nanoGPT / HF names
// (HF's Conv1D weights are stored [in, out] and transposed here into pinned copies), and GGUF. The spec's bias and
// tied-embedding flags are settled here from what the file holds, so the spec says exactly what the weights are.
// A Hugging Face file of a spec with NormWeightOffset (Gemma) stores each RMSNorm weight minus it: normOffset adds
// it back into the arrays read, so the weights hold the gamma the kernels multiply by.
// Does not handle: renaming schemes of other families (Falcon, GPT-NeoX, ...).
// Glossary: C width, F MLP width, V vocabulary.
using Quill.Tensors;

namespace Quill.Models;

/// <summary>Builds model weights from named tensors.</summary>
internal static class ModelBuilders
{
    /// <summary>
    /// The file must hold exactly the layers the config or metadata names: a config saying 2 layers over a 4-layer
    /// file would otherwise run 2 of them, and one saying 300,000,000 would allocate gigabytes before any tensor is read.
    /// </summary>
    private static void CheckLayerCount(WeightSource src, ModelSpec spec, TensorNames names)
    {
        if (spec.Layers < 1) throw new InvalidFileException($"{src.Path}: the model has {spec.Layers} layers; it needs at least one.");
        if (names.Name(WeightSlot.O, spec.Layers - 1) is { } last && !src.Contains(last))
            throw new InvalidFileException($"{src.Path}: the config says {spec.Layers} layers but tensor '{last}' is not in the file; the config does not describe these weights.");
        if (names.Name(WeightSlot.O, spec.Layers) is { } extra && src.Contains(extra))
            throw new InvalidFileException($"{src.Path}: the file holds tensor '{extra}', more layers than the {spec.Layers} its config says; the config does not describe these weights.");
    }

    /// <summary>
    /// The weights of <paramref name="spec"/> found in <paramref name="src"/> under <paramref name="names"/>. tied:
    /// the config says the head is the embedding (a head tensor in the file is then ignored); conv1d: GPT-2 matrices
    /// are stored [in, out].
    /// </summary>
    public static ModelWeights Build(WeightSource src, ModelSpec spec, TensorNames names, List<IDisposable> owners, bool tied, bool conv1d = false, float normOffset = 0)
    {
        int c = spec.Dim;
        string L(WeightSlot s, int i) => names.Name(s, i)
            ?? throw new InvalidFileException($"{src.Path}: layer {i} has no {s} weights under {names.Family} names; the file is not a complete model of the architecture its metadata names.");
        bool Has(WeightSlot s, int i) => names.Name(s, i) is { } n && src.Contains(n);
        WeightMatrix M(WeightSlot s, int i, int rows, int cols) => conv1d ? OutIn(src, L(s, i), rows, cols) : src.Matrix(L(s, i));
        float[]? Opt(WeightSlot s, int i) => Has(s, i) ? src.Floats(L(s, i)) : null;

        CheckLayerCount(src, spec, names);
        var layers = new LayerWeights[spec.Layers];
        for (int i = 0; i < spec.Layers; i++)
        {
            WeightMatrix? wqkv = Has(WeightSlot.Qkv, i) ? M(WeightSlot.Qkv, i, spec.QkvDim, c) : null;
            float[]? qkvBias = wqkv != null ? Opt(WeightSlot.QkvBias, i) : ConcatOptional(src, spec, names, i);
            WeightMatrix? gate = null, up = null;
            ExpertWeights? experts = null;
            if (spec.IsMoe)
            {
                experts = Experts(src, spec, names, i);
            }
            else if (spec.Mlp != MlpKind.Gelu)
            {
                if (Has(WeightSlot.Gate, i))
                {
                    gate = src.Matrix(L(WeightSlot.Gate, i));
                    up = src.Matrix(L(WeightSlot.Up, i));
                }
                else if (Has(WeightSlot.GateUp, i))
                {
                    (gate, up) = SplitGateUp(src, src.Matrix(L(WeightSlot.GateUp, i)), spec);
                }
                else
                {
                    throw new InvalidFileException($"{src.Path}: tensor '{L(WeightSlot.Gate, i)}' not found; the file is not a complete model of the architecture its metadata names.");
                }
            }
            else
            {
                up = M(WeightSlot.Up, i, spec.Hidden, c);
            }
            layers[i] = new LayerWeights
            {
                AttnNorm = spec.PreNorms ? src.Floats(L(WeightSlot.AttnNorm, i)) : null,
                AttnNormBias = Opt(WeightSlot.AttnNormBias, i),
                Wqkv = wqkv,
                Wq = wqkv == null ? src.Matrix(L(WeightSlot.Q, i)) : null,
                Wk = wqkv == null ? src.Matrix(L(WeightSlot.K, i)) : null,
                Wv = wqkv == null ? src.Matrix(L(WeightSlot.V, i)) : null,
                QkvBias = qkvBias,
                QNorm = Opt(WeightSlot.QNorm, i),
                KNorm = Opt(WeightSlot.KNorm, i),
                Wo = M(WeightSlot.O, i, c, spec.QDim),
                WoBias = Opt(WeightSlot.OBias, i),
                AttnPostNorm = Opt(WeightSlot.AttnPostNorm, i),
                MlpPostNorm = Opt(WeightSlot.MlpPostNorm, i),
                MlpNorm = spec.PreNorms ? src.Floats(L(WeightSlot.MlpNorm, i)) : null,
                MlpNormBias = Opt(WeightSlot.MlpNormBias, i),
                Gate = gate,
                Up = up,
                UpBias = Opt(WeightSlot.UpBias, i),
                Down = spec.IsMoe ? null : M(WeightSlot.Down, i, c, spec.Hidden),
                DownBias = Opt(WeightSlot.DownBias, i),
                Experts = experts,
            };
        }
        string G(WeightSlot s) => names.Name(s) ?? throw new InvalidOperationException($"{names.Family} has no name for {s}.");
        var embed = src.Matrix(G(WeightSlot.TokenEmbedding));
        var head = tied || !src.Contains(G(WeightSlot.Head)) ? embed : src.Matrix(G(WeightSlot.Head));
        float[]? positions = spec.Positions == PositionKind.Learned ? src.Floats(G(WeightSlot.PositionEmbedding)) : null;
        float[]? finalBias = names.Name(WeightSlot.FinalNormBias) is { } fb && src.Contains(fb) ? src.Floats(fb) : null;
        var l0 = layers.Length > 0 ? layers[0] : null;
        var settled = spec with
        {
            QkvBias = l0?.QkvBias != null,
            QkNorm = l0?.QNorm != null,
            PostNorms = l0?.AttnPostNorm != null,
            OutBias = l0?.WoBias != null,
            MlpBias = l0?.UpBias != null,
            NormBias = l0?.AttnNormBias != null,
            TiedEmbeddings = ReferenceEquals(head, embed),
        };
        var finalNorm = src.Floats(G(WeightSlot.FinalNorm));
        if (normOffset != 0)
        {
            foreach (var v in layers.SelectMany(l => new[] { l.AttnNorm, l.MlpNorm, l.QNorm, l.KNorm, l.AttnPostNorm, l.MlpPostNorm }).Append(finalNorm))
            {
                if (v == null) continue;
                for (int j = 0; j < v.Length; j++) v[j] += normOffset;
            }
        }
        return new ModelWeights(settled, embed, positions, layers, finalNorm, finalBias, head, owners, src.Path);
    }

    /// <summary>Layer i's router and experts: one tensor per expert (HF) or one 3-D tensor per kind sliced into views (GGUF).</summary>
    private static ExpertWeights Experts(WeightSource src, ModelSpec spec, TensorNames names, int i)
    {
        string N(WeightSlot s, int e = 0) => names.ExpertName(s, i, e) ?? throw new InvalidFileException($"{src.Path}: {names.Family} files have no {s} tensors.");
        var router = src.Matrix(N(WeightSlot.Router));
        if (!names.PerExpert)
            return new ExpertWeights(router, src.Stacked(N(WeightSlot.ExpertGate), spec.Experts), src.Stacked(N(WeightSlot.ExpertUp), spec.Experts), src.Stacked(N(WeightSlot.ExpertDown), spec.Experts));
        if (src.Contains(N(WeightSlot.ExpertGate, spec.Experts)))
            throw new InvalidFileException($"{src.Path}: the file holds tensor '{N(WeightSlot.ExpertGate, spec.Experts)}', more experts than the {spec.Experts} its config says.");
        WeightMatrix[] All(WeightSlot s) => [.. Enumerable.Range(0, spec.Experts).Select(e => src.Matrix(N(s, e)))];
        return new ExpertWeights(router, All(WeightSlot.ExpertGate), All(WeightSlot.ExpertUp), All(WeightSlot.ExpertDown));
    }

    /// <summary>A fused [2F, C] gate|up matrix (Phi-3) as two row views: gate rows first, then up.</summary>
    private static (WeightMatrix Gate, WeightMatrix Up) SplitGateUp(WeightSource src, WeightMatrix fused, ModelSpec spec)
    {
        int f = spec.Hidden;
        if (fused.Rows != 2 * f)
            throw new InvalidFileException($"{src.Path}: no separate gate projection, and tensor '{fused.Name}' has {fused.Rows} rows, not the {2 * f} of a fused gate|up for an MLP of width {f}.");
        return (fused.SliceRows(fused.Name + "[gate]", 0, f), fused.SliceRows(fused.Name + "[up]", f, f));
    }

    /// <summary>q|k|v biases concatenated, or null when the model has none (all three absent).</summary>
    private static float[]? ConcatOptional(WeightSource src, ModelSpec spec, TensorNames names, int i)
    {
        string? q = names.Name(WeightSlot.QBias, i), k = names.Name(WeightSlot.KBias, i), v = names.Name(WeightSlot.VBias, i);
        bool Has(string? n) => n != null && src.Contains(n);
        if (!Has(q) && !Has(k) && !Has(v)) return null;
        var all = new float[spec.QkvDim];
        if (Has(q)) src.Floats(q!).AsSpan().CopyTo(all);
        if (Has(k)) src.Floats(k!).AsSpan().CopyTo(all.AsSpan(spec.QDim));
        if (Has(v)) src.Floats(v!).AsSpan().CopyTo(all.AsSpan(spec.QDim + spec.KvDim));
        return all;
    }

    /// <summary>A GPT-2 Conv1D matrix stored [cols, rows], transposed into a [rows, cols] copy.</summary>
    private static WeightMatrix OutIn(WeightSource src, string name, int rows, int cols)
    {
        var v = src.Get(name);
        if (v.Shape is [var r2, var k2] && r2 == cols && k2 == rows)
        {
            float[] t = src.Floats(name), w = new float[t.Length];
            for (int i = 0; i < cols; i++)
            {
                for (int j = 0; j < rows; j++) w[j * cols + i] = t[i * rows + j];
            }
            return WeightMatrix.FromFloats(name, w, rows, cols);
        }
        throw new InvalidFileException($"{src.Path}: tensor '{name}' has shape [{string.Join(", ", v.Shape)}], expected [{cols}, {rows}] (Conv1D).");
    }
}
