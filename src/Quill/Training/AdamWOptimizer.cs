// AdamW with decoupled weight decay (Loshchilov & Hutter) over a model's trainable parameters. Frozen parameters
// (RequiresGrad false) get no moments and no memory. Each parameter belongs to a group: the first param_groups
// entry whose glob matches its name gives its learning-rate scale and weight decay; otherwise matrices are decayed
// and norm weights, biases and (unless asked) embeddings are not. The first and second moments live in one buffer
// each per trainable parameter and are saved with the checkpoint. Gradient clipping is folded in as a scale.
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

    public AdamWOptimizer(ParameterSet parameters, TrainConfig config)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(config);
        Config = config;
        ps = [.. parameters.Trainable];
        m = [.. ps.Select(p => new Tensor(p.Shape) { Name = "m." + p.Name })];
        v = [.. ps.Select(p => new Tensor(p.Shape) { Name = "v." + p.Name })];
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

    /// <summary>Bytes of moment buffers (two floats per trainable value).</summary>
    public long StateBytes => 8L * ps.Sum(p => (long)p.Length);

    /// <summary>Is trainable parameter i weight-decayed?</summary>
    public bool IsDecayed(int i) => decay[i] > 0;

    /// <summary>The weight decay of trainable parameter i.</summary>
    public float WeightDecayOf(int i) => decay[i];

    /// <summary>The learning-rate scale of trainable parameter i.</summary>
    public float LrScaleOf(int i) => lrScale[i];

    /// <summary>One update of every trainable parameter with its gradient times gradScale (for clipping).</summary>
    public void Step(float lr, float gradScale)
    {
        StepCount++;
        var c = Config;
        for (int i = 0; i < ps.Length; i++)
        {
            var p = ps[i];
            if (p.Grad == null || lrScale[i] == 0f) continue;
            AdamW.Step(p.Span, p.Grad.Span, m[i].Span, v[i].Span, lr * lrScale[i], c.Beta1, c.Beta2, c.Eps, decay[i], StepCount, gradScale);
        }
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
        for (int i = 0; i < m.Length; i++) yield return new SafeTensor(m[i].Name, m[i].Shape, m[i].Memory);
        for (int i = 0; i < v.Length; i++) yield return new SafeTensor(v[i].Name, v[i].Shape, v[i].Memory);
    }

    /// <summary>Restores the moments from optimizer.safetensors.</summary>
    public void LoadState(string path)
    {
        if (!File.Exists(path)) throw new InvalidFileException($"{path} not found; the checkpoint has no optimizer state to resume from.");
        using var file = SafeTensorsFile.Open(path);
        foreach (var t in m.Concat(v))
        {
            if (!file.Contains(t.Name) || !ShapeOf(file, t.Name).AsSpan().SequenceEqual(t.Shape))
                throw new InvalidFileException($"{path}: optimizer state for {t.Name} is missing or has the wrong shape; the checkpoint does not match the model.");
            file.ReadSingle(t.Name, t.Span);
        }
    }

    private static int[] ShapeOf(SafeTensorsFile file, string name) => [.. file.GetInfo(name).Shape.Select(d => (int)d)];
}
