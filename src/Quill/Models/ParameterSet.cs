// The named, ordered parameters of a model, each with its kind (matrix, embedding, norm, bias), which decides the
// default weight decay and the initialization; names follow the checkpoint conventions (TensorNames: nanoGPT for
// GPT-2, Hugging Face for the Llama family) so that files Quill writes can be read by other tools. A parameter is
// trainable while its RequiresGrad is true: Freeze clears it, and a frozen parameter gets no gradient buffer and no
// optimizer state. A parameter may also be a frozen view of foreign memory of any element type (AddFrozen: the base
// matrices of QLoRA), which the set does not own.
using System.Collections;
using Quill.Tensors;

namespace Quill.Models;

/// <summary>What a parameter is, for weight decay, initialization and parameter groups.</summary>
public enum ParameterKind
{
    /// <summary>A projection matrix (decayed by default).</summary>
    Matrix,

    /// <summary>Token or position embedding (not decayed unless asked).</summary>
    Embedding,

    /// <summary>A norm's scale (never decayed; initialized to 1).</summary>
    Norm,

    /// <summary>A bias (never decayed; initialized to 0).</summary>
    Bias,
}

/// <summary>Named parameters in a fixed order.</summary>
public sealed class ParameterSet : IReadOnlyList<Tensor>
{
    private readonly List<Tensor> list = [];
    private readonly Dictionary<string, Tensor> byName = new(StringComparer.Ordinal);
    private readonly Dictionary<Tensor, ParameterKind> kinds = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<Tensor> residual = new(ReferenceEqualityComparer.Instance);

    public int Count => list.Count;

    public Tensor this[int index] => list[index];

    public Tensor this[string name] => byName.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"no parameter named {name}.");

    public bool TryGet(string name, out Tensor tensor) => byName.TryGetValue(name, out tensor!);

    /// <summary>Adds a zero-filled trainable parameter.</summary>
    public Tensor Add(string name, ParameterKind kind, params int[] shape)
    {
        var t = new Tensor(shape) { Name = name, RequiresGrad = true };
        list.Add(t);
        byName.Add(name, t);
        kinds[t] = kind;
        return t;
    }

    /// <summary>
    /// Adds an existing tensor, frozen, under <paramref name="name"/>: a weight that views memory the model does not
    /// own (a mapped or quantized matrix of a QLoRA base, Tensor.FromMemory). It never gets a gradient or moments.
    /// </summary>
    public Tensor AddFrozen(string name, ParameterKind kind, Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(tensor);
        tensor.Name = name;
        Freeze(tensor);
        list.Add(tensor);
        byName.Add(name, tensor);
        kinds[tensor] = kind;
        return tensor;
    }

    /// <summary>Bytes of the float storage the parameters own (views of foreign memory not counted).</summary>
    public long OwnedBytes => list.Where(t => !t.IsForeign).Sum(t => 4L * t.Length);

    /// <summary>Adds a projection whose output feeds the residual stream (initialized with a smaller std).</summary>
    public Tensor AddResidualProjection(string name, params int[] shape)
    {
        var t = Add(name, ParameterKind.Matrix, shape);
        residual.Add(t);
        return t;
    }

    /// <summary>The kind a parameter was added with.</summary>
    public ParameterKind KindOf(Tensor p) => kinds.TryGetValue(p, out var k) ? k : throw new ArgumentException($"{p.Name} is not a parameter of this model.", nameof(p));

    /// <summary>True for the attention and MLP output projections.</summary>
    public bool IsResidualProjection(Tensor p) => residual.Contains(p);

    /// <summary>Total number of elements.</summary>
    public long ElementCount => list.Sum(t => (long)t.Length);

    /// <summary>Elements of the trainable parameters.</summary>
    public long TrainableElementCount => list.Where(t => t.RequiresGrad).Sum(t => (long)t.Length);

    /// <summary>The trainable parameters, in order.</summary>
    public IEnumerable<Tensor> Trainable => list.Where(t => t.RequiresGrad);

    /// <summary>Freezes every parameter whose name matches none of the glob patterns ('*' any run, '?' one character); an empty list freezes nothing.</summary>
    public int FreezeAllBut(IReadOnlyList<string> trainablePatterns)
    {
        ArgumentNullException.ThrowIfNull(trainablePatterns);
        if (trainablePatterns.Count == 0) return 0;
        int frozen = 0;
        foreach (var p in list)
        {
            bool keep = trainablePatterns.Any(pat => Glob(pat, p.Name));
            if (!keep)
            {
                Freeze(p);
                frozen++;
            }
        }
        return frozen;
    }

    /// <summary>Stops training one parameter and drops its gradient buffer.</summary>
    public static void Freeze(Tensor p)
    {
        ArgumentNullException.ThrowIfNull(p);
        p.RequiresGrad = false;
        p.Grad = null;
    }

    /// <summary>Allocates persistent gradient buffers (once) for the trainable parameters, so gradients accumulate across backward passes.</summary>
    public void EnableGrads()
    {
        foreach (var p in list)
        {
            if (p.RequiresGrad) p.Grad ??= Tensor.Aligned(p.Shape);
        }
    }

    /// <summary>Sets every gradient to zero.</summary>
    public void ZeroGrads()
    {
        foreach (var p in list) p.Grad?.Span.Clear();
    }

    /// <summary>True for parameters that get weight decay by default: matrices, and embeddings when asked.</summary>
    public bool IsDecayedByDefault(Tensor p, bool decayEmbeddings) => KindOf(p) switch
    {
        ParameterKind.Matrix => true,
        ParameterKind.Embedding => decayEmbeddings,
        _ => false,
    };

    /// <summary>Glob match of a whole name: '*' any run of characters, '?' one character.</summary>
    public static bool Glob(string pattern, string name)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        ArgumentNullException.ThrowIfNull(name);
        int p = 0, n = 0, star = -1, mark = 0;
        while (n < name.Length)
        {
            if (p < pattern.Length && (pattern[p] == '?' || pattern[p] == name[n]))
            {
                p++;
                n++;
            }
            else if (p < pattern.Length && pattern[p] == '*')
            {
                star = p++;
                mark = n;
            }
            else if (star >= 0)
            {
                p = star + 1;
                n = ++mark;
            }
            else
            {
                return false;
            }
        }
        while (p < pattern.Length && pattern[p] == '*') p++;
        return p == pattern.Length;
    }

    public IEnumerator<Tensor> GetEnumerator() => list.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
