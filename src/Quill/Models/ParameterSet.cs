// The named, ordered parameters of a model. Names follow the checkpoint conventions (nanoGPT for gpt2,
// Hugging Face for llama) so that files Quill writes can be read by other tools.
using System.Collections;
using Quill.Tensors;

namespace Quill.Models;

/// <summary>Named trainable tensors in a fixed order.</summary>
public sealed class ParameterSet : IReadOnlyList<Tensor>
{
    private readonly List<Tensor> list = [];
    private readonly Dictionary<string, Tensor> byName = new(StringComparer.Ordinal);

    public int Count => list.Count;

    public Tensor this[int index] => list[index];

    public Tensor this[string name] => byName.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"no parameter named {name}.");

    public bool TryGet(string name, out Tensor tensor) => byName.TryGetValue(name, out tensor!);

    /// <summary>Adds a zero-filled parameter.</summary>
    public Tensor Add(string name, params int[] shape)
    {
        var t = new Tensor(shape) { Name = name, RequiresGrad = true };
        list.Add(t);
        byName.Add(name, t);
        return t;
    }

    /// <summary>Total number of elements.</summary>
    public long ElementCount => list.Sum(t => (long)t.Length);

    /// <summary>Allocates persistent gradient buffers (once) so that gradients accumulate across backward passes.</summary>
    public void EnableGrads()
    {
        foreach (var p in list) p.Grad ??= new Tensor(p.Shape);
    }

    /// <summary>Sets every gradient to zero.</summary>
    public void ZeroGrads()
    {
        foreach (var p in list) p.Grad?.Span.Clear();
    }

    /// <summary>True for parameters that get weight decay by default: matrices other than embeddings.</summary>
    public static bool IsDecayedByDefault(Tensor p, bool decayEmbeddings)
    {
        ArgumentNullException.ThrowIfNull(p);
        if (p.Rank < 2) return false;
        bool embedding = p.Name.Contains("wte", StringComparison.Ordinal) || p.Name.Contains("wpe", StringComparison.Ordinal)
            || p.Name.Contains("embed_tokens", StringComparison.Ordinal);
        return !embedding || decayEmbeddings;
    }

    public IEnumerator<Tensor> GetEnumerator() => list.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
