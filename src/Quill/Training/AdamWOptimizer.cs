// AdamW with decoupled weight decay (Loshchilov & Hutter) over a model's trainable parameters. Frozen parameters
// (RequiresGrad false) get no moments and no memory. Each parameter belongs to a group: the first param_groups
// entry whose glob matches its name gives its learning-rate scale and weight decay; otherwise matrices are decayed
// and norm weights, biases and (unless asked) embeddings are not. The first and second moments live in one buffer
// each per trainable parameter and are saved with the checkpoint. Gradient clipping is folded in as a scale.
// ZeRO-1 (a shard): the trainable parameters are viewed as one flat vector in order, and this optimizer holds the
// moments of [ShardStart, ShardStart + ShardLength) only, in one buffer each; StepShard updates that slice of the
// parameters from that slice of the (reduce-scattered) gradient, with each element's own group settings, element for
// element the update the whole optimizer makes. Its full state for a checkpoint is gathered by the caller
// (SetGatheredState); LoadState reads a whole checkpoint's moments and keeps the slice, so any rank count resumes.
using Quill.Formats.SafeTensors;
using Quill.Kernels;
using Quill.Models;
using Quill.Tensors;

namespace Quill.Training;

/// <summary>AdamW state and update.</summary>
public sealed class AdamWOptimizer
{
    private readonly Tensor[] ps, m, v;
    private readonly float[] decay, lrScale;
    private readonly long[] offsets;           // [trainable + 1] each parameter's start in the flat vector
    private float[]? gatheredM, gatheredV;     // a shard's whole state, gathered for a checkpoint

    public AdamWOptimizer(ParameterSet parameters, TrainConfig config) : this(parameters, config, null)
    {
    }

    /// <summary>
    /// An optimizer holding the moments of elements [start, start + length) of the flat trainable vector only
    /// (ZeRO-1; the shard may run past the end, which is padding).
    /// </summary>
    public AdamWOptimizer(ParameterSet parameters, TrainConfig config, long shardStart, int shardLength) : this(parameters, config, (shardStart, shardLength))
    {
    }

    private AdamWOptimizer(ParameterSet parameters, TrainConfig config, (long Start, int Length)? shard)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(config);
        Config = config;
        ps = [.. parameters.Trainable];
        offsets = new long[ps.Length + 1];
        for (int i = 0; i < ps.Length; i++) offsets[i + 1] = offsets[i] + ps[i].Length;
        if (shard is var (start, length))
        {
            if (start < 0 || length < 1) throw new ArgumentOutOfRangeException(nameof(shard), "a shard needs a start >= 0 and a length >= 1.");
            ShardStart = start;
            ShardLength = length;
            m = [Tensor.Aligned([length]).Named("m.shard")];
            v = [Tensor.Aligned([length]).Named("v.shard")];
        }
        else
        {
            m = [.. ps.Select(p => Tensor.Aligned(p.Shape).Named("m." + p.Name))];
            v = [.. ps.Select(p => Tensor.Aligned(p.Shape).Named("v." + p.Name))];
        }
        decay = new float[ps.Length];
        lrScale = new float[ps.Length];
        for (int i = 0; i < ps.Length; i++)
        {
            var group = config.ParamGroups.FirstOrDefault(g => ParameterSet.Glob(g.Match, ps[i].Name));
            lrScale[i] = group?.LrScale ?? 1f;
            decay[i] = group?.WeightDecay ?? (parameters.IsDecayedByDefault(ps[i], config.DecayEmbeddings) ? config.WeightDecay : 0f);
        }
    }

    public TrainConfig Config { get; }

    /// <summary>Updates applied so far (bias correction uses step + 1 for the next one).</summary>
    public int StepCount { get; set; }

    /// <summary>The parameters this optimizer updates (the trainable ones), in order.</summary>
    public IReadOnlyList<Tensor> Parameters => ps;

    /// <summary>Bytes of moment buffers (two floats per trainable value; per value of the shard under ZeRO-1).</summary>
    public long StateBytes => IsShard ? 8L * ShardLength : 8L * ps.Sum(p => (long)p.Length);

    /// <summary>True when this optimizer holds one shard of the moments (ZeRO-1).</summary>
    public bool IsShard => ShardLength > 0;

    /// <summary>The shard's first element in the flat trainable vector.</summary>
    public long ShardStart { get; }

    /// <summary>The shard's length (0: the whole optimizer).</summary>
    public int ShardLength { get; }

    /// <summary>Elements of all trainable parameters together (the flat vector's length).</summary>
    public long FlatLength => offsets[^1];

    /// <summary>Is trainable parameter i weight-decayed?</summary>
    public bool IsDecayed(int i) => decay[i] > 0;

    /// <summary>The weight decay of trainable parameter i.</summary>
    public float WeightDecayOf(int i) => decay[i];

    /// <summary>The learning-rate scale of trainable parameter i.</summary>
    public float LrScaleOf(int i) => lrScale[i];

    /// <summary>One update of every trainable parameter with its gradient times gradScale (for clipping).</summary>
    public void Step(float lr, float gradScale)
    {
        if (IsShard) throw new InvalidOperationException("a ZeRO-1 shard steps with StepShard.");
        StepCount++;
        var c = Config;
        for (int i = 0; i < ps.Length; i++)
        {
            var p = ps[i];
            if (p.Grad == null || lrScale[i] == 0f) continue;
            AdamW.Step(p.Span, p.Grad.Span, m[i].Span, v[i].Span, lr * lrScale[i], c.Beta1, c.Beta2, c.Eps, decay[i], StepCount, gradScale);
        }
    }

    /// <summary>
    /// ZeRO-1: one update of the shard's slice of the parameters from the shard's gradient ([ShardLength], elements
    /// past the flat vector ignored), times gradScale.
    /// </summary>
    public void StepShard(float lr, float gradScale, ReadOnlySpan<float> shardGrad)
    {
        if (!IsShard) throw new InvalidOperationException("StepShard needs an optimizer made for a shard.");
        if (shardGrad.Length != ShardLength) throw new ArgumentException($"the shard's gradient has {shardGrad.Length} values, not {ShardLength}.", nameof(shardGrad));
        StepCount++;
        var c = Config;
        long end = ShardStart + ShardLength;
        for (int i = 0; i < ps.Length; i++)
        {
            long lo = Math.Max(offsets[i], ShardStart), hi = Math.Min(offsets[i + 1], end);
            if (lo >= hi || lrScale[i] == 0f) continue;
            int at = (int)(lo - offsets[i]), n = (int)(hi - lo), s = (int)(lo - ShardStart);
            AdamW.Step(ps[i].Span.Slice(at, n), shardGrad.Slice(s, n), m[0].Span.Slice(s, n), v[0].Span.Slice(s, n),
                lr * lrScale[i], c.Beta1, c.Beta2, c.Eps, decay[i], StepCount, gradScale);
        }
    }

    /// <summary>ZeRO-1: the shard's first and second moments ([ShardLength] each), to gather for a checkpoint.</summary>
    public (Tensor M, Tensor V) ShardMoments => IsShard ? (m[0], v[0]) : throw new InvalidOperationException("not a shard.");

    /// <summary>
    /// ZeRO-1: every shard's moments side by side ([ranks * ShardLength] each, in rank order), which
    /// <see cref="StateTensors"/> then writes as the whole optimizer would.
    /// </summary>
    public void SetGatheredState(float[] allM, float[] allV)
    {
        ArgumentNullException.ThrowIfNull(allM);
        ArgumentNullException.ThrowIfNull(allV);
        if (allM.Length < FlatLength || allV.Length < FlatLength) throw new ArgumentException("the gathered moments are shorter than the parameters.", nameof(allM));
        gatheredM = allM;
        gatheredV = allV;
    }

    /// <summary>The factor that brings the gradient norm down to clip (as torch.nn.utils.clip_grad_norm_: clip / (norm + 1e-6), at most 1).</summary>
    public static float ClipScale(float gradNorm, float clip) => clip > 0 ? Math.Min(1f, clip / (gradNorm + 1e-6f)) : 1f;

    /// <summary>Global L2 norm of all gradients of the trainable parameters.</summary>
    public double GradNorm()
    {
        double sum = 0;
        foreach (var p in ps) if (p.Grad != null) sum += Elementwise.SumOfSquares(p.Grad.Span);
        return Math.Sqrt(sum);
    }

    /// <summary>The moments as named tensors (m.NAME, v.NAME) for the checkpoint.</summary>
    public IEnumerable<SafeTensor> StateTensors()
    {
        if (IsShard)
        {
            if (gatheredM == null || gatheredV == null) throw new InvalidOperationException("a ZeRO-1 shard writes its state after SetGatheredState.");
            for (int i = 0; i < ps.Length; i++) yield return new SafeTensor("m." + ps[i].Name, ps[i].Shape, gatheredM.AsMemory((int)offsets[i], ps[i].Length));
            for (int i = 0; i < ps.Length; i++) yield return new SafeTensor("v." + ps[i].Name, ps[i].Shape, gatheredV.AsMemory((int)offsets[i], ps[i].Length));
            yield break;
        }
        for (int i = 0; i < m.Length; i++) yield return new SafeTensor(m[i].Name, m[i].Shape, m[i].Memory);
        for (int i = 0; i < v.Length; i++) yield return new SafeTensor(v[i].Name, v[i].Shape, v[i].Memory);
    }

    /// <summary>Restores the moments from optimizer.safetensors.</summary>
    public void LoadState(string path)
    {
        if (!File.Exists(path)) throw new InvalidFileException($"{path} not found; the checkpoint has no optimizer state to resume from.");
        using var file = SafeTensorsFile.Open(path);
        if (IsShard)
        {
            LoadShard(file, path);
            return;
        }
        foreach (var t in m.Concat(v))
        {
            if (!file.Contains(t.Name) || !ShapeOf(file, t.Name).AsSpan().SequenceEqual(t.Shape))
                throw new InvalidFileException($"{path}: optimizer state for {t.Name} is missing or has the wrong shape; the checkpoint does not match the model.");
            file.ReadSingle(t.Name, t.Span);
        }
    }

    /// <summary>Reads each parameter's whole moments and keeps the part inside the shard.</summary>
    private void LoadShard(SafeTensorsFile file, string path)
    {
        long end = ShardStart + ShardLength;
        foreach (var (prefix, shard) in new[] { ("m.", m[0]), ("v.", v[0]) })
        {
            for (int i = 0; i < ps.Length; i++)
            {
                string name = prefix + ps[i].Name;
                if (!file.Contains(name) || !ShapeOf(file, name).AsSpan().SequenceEqual(ps[i].Shape))
                    throw new InvalidFileException($"{path}: optimizer state for {name} is missing or has the wrong shape; the checkpoint does not match the model.");
                long lo = Math.Max(offsets[i], ShardStart), hi = Math.Min(offsets[i + 1], end);
                if (lo >= hi) continue;
                var whole = new float[ps[i].Length];
                file.ReadSingle(name, whole);
                whole.AsSpan((int)(lo - offsets[i]), (int)(hi - lo)).CopyTo(shard.Span.Slice((int)(lo - ShardStart)));
            }
        }
    }

    private static int[] ShapeOf(SafeTensorsFile file, string name) => [.. file.GetInfo(name).Shape.Select(d => (int)d)];
}
