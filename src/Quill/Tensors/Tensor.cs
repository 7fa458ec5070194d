// A float32 tensor: a shape and strides over a slice of pinned float storage. Views (View, Transpose, Narrow)
// share storage; kernels take Span<float> over contiguous tensors. Parameters own their storage for the life of
// the model; activations borrow theirs from a TensorArena that hands the same buffers back every step, so a
// training step allocates no large arrays after the first one.
// Not handled: other dtypes (quantized weights live in Quill.Quantization), broadcasting arithmetic (ops are coarse
// and written per use), tensors over 2^31 elements.
using System.Runtime.CompilerServices;
using System.Text;

namespace Quill.Tensors;

/// <summary>A float32 tensor with shape, strides and an offset into shared storage.</summary>
public sealed class Tensor
{
    private readonly float[] storage;

    /// <summary>Creates a zero-filled contiguous tensor with its own pinned storage.</summary>
    public Tensor(params int[] shape) : this(AllocateStorage(CheckedElementCount(shape)), 0, shape, ContiguousStrides(shape))
    {
    }

    internal Tensor(float[] storage, int offset, int[] shape, int[] strides)
    {
        this.storage = storage;
        Offset = offset;
        Shape = shape;
        Strides = strides;
        Length = CheckedElementCount(shape);
    }

    /// <summary>Dimensions, outermost first.</summary>
    public int[] Shape { get; }

    /// <summary>Elements to skip to advance one step along each dimension.</summary>
    public int[] Strides { get; }

    /// <summary>Index of element [0, 0, ...] in the storage.</summary>
    public int Offset { get; }

    /// <summary>Number of elements.</summary>
    public int Length { get; }

    public int Rank => Shape.Length;

    /// <summary>Name (parameters carry their checkpoint name).</summary>
    public string Name { get; set; } = "";

    /// <summary>True for tensors whose gradient the graph computes (parameters, and activations that depend on them).</summary>
    public bool RequiresGrad { get; set; }

    /// <summary>The gradient, same shape; allocated by the graph (activations) or by the model (parameters).</summary>
    public Tensor? Grad { get; set; }

    /// <summary>The underlying storage (shared by views).</summary>
    internal float[] Storage => storage;

    public int Dim(int axis) => Shape[axis < 0 ? axis + Rank : axis];

    public bool IsContiguous
    {
        get
        {
            int expected = 1;
            for (int i = Rank - 1; i >= 0; i--)
            {
                if (Shape[i] != 1 && Strides[i] != expected) return false;
                expected *= Shape[i];
            }
            return true;
        }
    }

    /// <summary>The elements of a contiguous tensor.</summary>
    public Span<float> Span
    {
        get
        {
            if (!IsContiguous) throw new InvalidOperationException("Span needs a contiguous tensor; call Contiguous() first.");
            return storage.AsSpan(Offset, Length);
        }
    }

    /// <summary>The elements of a contiguous tensor as memory (for writers that hold on to it).</summary>
    public Memory<float> Memory
    {
        get
        {
            if (!IsContiguous) throw new InvalidOperationException("Memory needs a contiguous tensor.");
            return storage.AsMemory(Offset, Length);
        }
    }

    [IndexerName("Element")]
    public float this[params int[] index]
    {
        get => storage[Index(index)];
        set => storage[Index(index)] = value;
    }

    /// <summary>The single value of a one-element tensor.</summary>
    public float Item() => Length == 1 ? storage[Offset] : throw new InvalidOperationException($"Item() needs one element, tensor has {Length}.");

    /// <summary>A contiguous tensor holding a copy of values.</summary>
    public static Tensor FromArray(float[] values, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(values);
        var t = new Tensor(shape);
        if (values.Length != t.Length) throw new ArgumentException($"{values.Length} values do not fill shape {Describe(shape)}.");
        values.CopyTo(t.Span);
        return t;
    }

    /// <summary>A view with another shape over the same contiguous elements; one dimension may be -1 (inferred).</summary>
    public Tensor View(params int[] shape)
    {
        if (!IsContiguous) throw new InvalidOperationException("View needs a contiguous tensor.");
        int[] s = (int[])shape.Clone();
        int infer = Array.IndexOf(s, -1);
        if (infer >= 0)
        {
            int known = 1;
            for (int i = 0; i < s.Length; i++) if (i != infer) known *= s[i];
            s[infer] = known == 0 ? 0 : Length / known;
        }
        if (CheckedElementCount(s) != Length) throw new ArgumentException($"cannot view {Describe(Shape)} as {Describe(shape)}.");
        return new Tensor(storage, Offset, s, ContiguousStrides(s)) { Name = Name };
    }

    /// <summary>A view with two dimensions swapped (no copy).</summary>
    public Tensor Transpose(int a, int b)
    {
        int[] s = (int[])Shape.Clone(), st = (int[])Strides.Clone();
        (s[a], s[b]) = (s[b], s[a]);
        (st[a], st[b]) = (st[b], st[a]);
        return new Tensor(storage, Offset, s, st);
    }

    /// <summary>A view of [start, start+length) along one dimension (no copy).</summary>
    public Tensor Narrow(int axis, int start, int length)
    {
        if (start < 0 || length < 0 || start + length > Shape[axis]) throw new ArgumentOutOfRangeException(nameof(start));
        int[] s = (int[])Shape.Clone();
        s[axis] = length;
        return new Tensor(storage, Offset + start * Strides[axis], s, (int[])Strides.Clone());
    }

    /// <summary>This tensor if contiguous, else a contiguous copy.</summary>
    public Tensor Contiguous()
    {
        if (IsContiguous) return this;
        var t = new Tensor(Shape);
        var dst = t.Span;
        int[] idx = new int[Rank];
        for (int i = 0; i < Length; i++)
        {
            dst[i] = storage[Index(idx)];
            for (int d = Rank - 1; d >= 0; d--)
            {
                if (++idx[d] < Shape[d]) break;
                idx[d] = 0;
            }
        }
        return t;
    }

    /// <summary>Copies the elements (row-major order) into a new array.</summary>
    public float[] ToArray() => Contiguous().Span.ToArray();

    public override string ToString()
    {
        var sb = new StringBuilder("Tensor").Append(Describe(Shape));
        if (Name.Length > 0) sb.Append(' ').Append(Name);
        return sb.ToString();
    }

    /// <summary>Formats a shape as [a, b, c].</summary>
    public static string Describe(int[] shape) => "[" + string.Join(", ", shape ?? []) + "]";

    internal static int[] ContiguousStrides(int[] shape)
    {
        int[] strides = new int[shape.Length];
        int s = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            strides[i] = s;
            s *= shape[i];
        }
        return strides;
    }

    internal static int CheckedElementCount(int[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension in shape {Describe(shape)}.");
            n *= d;
            if (n > int.MaxValue) throw new ArgumentException($"shape {Describe(shape)} has more than 2^31 elements.");
        }
        return (int)n;
    }

    internal static float[] AllocateStorage(int length) => GC.AllocateArray<float>(length, pinned: true);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Index(int[] index)
    {
        if (index.Length != Rank) throw new ArgumentException($"{index.Length} indices for a rank-{Rank} tensor.");
        int o = Offset;
        for (int i = 0; i < index.Length; i++)
        {
            if ((uint)index[i] >= (uint)Shape[i]) throw new IndexOutOfRangeException($"index {index[i]} out of range for dimension {i} of size {Shape[i]}.");
            o += index[i] * Strides[i];
        }
        return o;
    }
}
