// A tensor: a shape and strides over storage of one element type. Storage is either pinned float memory the tensor
// owns (parameters, for the life of the model; activations, borrowed from a TensorArena that hands the same buffers
// back every step, so a training step allocates no large arrays after the first one) or memory it only views: a
// region of a memory-mapped model file or a pinned buffer someone else keeps alive, in F32, F16, BF16 or a GGUF
// block type (DType). Views (View, Transpose, Narrow) share storage; kernels take Span<float> over contiguous F32
// tensors; a frozen weight of another type reaches the kernels through Tensors.WeightMatrix (LinearOp runs it, and
// its backward yields only the input gradient; EmbeddingOp reads its rows dequantized). A device buffer would be a
// third kind of storage.
// Not handled: arithmetic on non-F32 tensors other than LinearOp's weight, broadcasting arithmetic (ops are coarse
// and written per use), tensors over 2^31 elements.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Quill.Quantization;

namespace Quill.Tensors;

/// <summary>A float32 tensor with shape, strides and an offset into shared storage.</summary>
public sealed unsafe class Tensor
{
    private readonly float[] storage;
    private readonly nint address;
    private readonly object? keepAlive;

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

    private Tensor(nint address, GgmlType type, object? keepAlive, int offset, int[] shape, int[] strides)
    {
        storage = [];
        this.address = address;
        this.keepAlive = keepAlive;
        DType = type;
        Offset = offset;
        Shape = shape;
        Strides = strides;
        Length = CheckedElementCount(shape);
    }

    /// <summary>
    /// A contiguous tensor viewing memory it does not own: shape values of <paramref name="type"/> at
    /// <paramref name="address"/> (a mapped file region, a pinned buffer). The memory must stay valid while the
    /// tensor is used; <paramref name="keepAlive"/> (the owner of a pinned array) is kept reachable. Rows (the last
    /// dimension) must be whole blocks of a block type.
    /// </summary>
    public static Tensor FromMemory(nint address, GgmlType type, int[] shape, object? keepAlive = null)
    {
        ArgumentNullException.ThrowIfNull(shape);
        if (address == 0) throw new ArgumentException("address is null.", nameof(address));
        if (!GgmlQuant.IsSupported(type)) throw new QuillException($"tensor type {type} is not one Quill runs (supported: {string.Join(", ", GgmlQuant.SupportedTypes)}).");
        if (shape.Length > 0 && shape[^1] % GgmlTypeInfo.BlockSize(type) != 0)
            throw new ArgumentException($"rows of {shape[^1]} values are not whole {type} blocks of {GgmlTypeInfo.BlockSize(type)}.", nameof(shape));
        return new Tensor(address, type, keepAlive, 0, (int[])shape.Clone(), ContiguousStrides(shape));
    }

    /// <summary>Element type: F32 for owned storage; for a view of foreign memory, whatever it holds.</summary>
    public GgmlType DType { get; } = GgmlType.F32;

    /// <summary>True when the tensor views memory it does not own (see <see cref="FromMemory"/>).</summary>
    public bool IsForeign => address != 0;

    /// <summary>Address of element [0, ...] of a foreign tensor (block-typed: of its first block), else 0.</summary>
    public nint Address => address == 0 ? 0 : address + (nint)GgmlTypeInfo.RowBytes(DType, Offset);

    /// <summary>The raw bytes of a contiguous foreign tensor (block-typed weights for the kernels).</summary>
    public ReadOnlySpan<byte> Bytes
    {
        get
        {
            if (!IsForeign || !IsContiguous) throw new InvalidOperationException("Bytes needs a contiguous tensor over foreign memory.");
            return new ReadOnlySpan<byte>((void*)Address, checked((int)GgmlTypeInfo.RowBytes(DType, Length)));
        }
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

    /// <summary>The underlying owned storage (shared by views); foreign tensors have none.</summary>
    internal float[] Storage => IsForeign ? throw new InvalidOperationException($"{Name} views foreign memory; it has no float[] storage.") : storage;

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
            if (!IsForeign) return storage.AsSpan(Offset, Length);
            if (DType != GgmlType.F32) throw new InvalidOperationException($"{Name} holds {DType} values; only F32 tensors have a float span (dequantize, or pass it to LinearOp as a frozen weight).");
            return new Span<float>((float*)address + Offset, Length);
        }
    }

    /// <summary>The elements of a contiguous tensor as memory (for writers that hold on to it).</summary>
    public Memory<float> Memory
    {
        get
        {
            if (!IsContiguous) throw new InvalidOperationException("Memory needs a contiguous tensor.");
            if (IsForeign) throw new InvalidOperationException($"{Name} views foreign memory; use Span or Bytes.");
            return storage.AsMemory(Offset, Length);
        }
    }

    [IndexerName("Element")]
    public float this[params int[] index]
    {
        get => ElementRef(Index(index));
        set => ElementRef(Index(index)) = value;
    }

    /// <summary>The single value of a one-element tensor.</summary>
    public float Item() => Length == 1 ? ElementRef(Offset) : throw new InvalidOperationException($"Item() needs one element, tensor has {Length}.");

    private ref float ElementRef(int i)
    {
        if (!IsForeign) return ref storage[i];
        if (DType != GgmlType.F32) throw new InvalidOperationException($"{Name} holds {DType} values; elements of block types are not addressable.");
        return ref ((float*)address)[i];
    }

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
        return Rebase(Offset, s, ContiguousStrides(s));
    }

    /// <summary>A view with two dimensions swapped (no copy).</summary>
    public Tensor Transpose(int a, int b)
    {
        int[] s = (int[])Shape.Clone(), st = (int[])Strides.Clone();
        (s[a], s[b]) = (s[b], s[a]);
        (st[a], st[b]) = (st[b], st[a]);
        if (DType != GgmlType.F32 && a != b && (a == Rank - 1 || b == Rank - 1 || a == -1 || b == -1))
            throw new InvalidOperationException($"{Name}: the rows of a {DType} tensor are whole blocks; its last dimension cannot move.");
        return Rebase(Offset, s, st);
    }

    /// <summary>A view of [start, start+length) along one dimension (no copy).</summary>
    public Tensor Narrow(int axis, int start, int length)
    {
        if (start < 0 || length < 0 || start + length > Shape[axis]) throw new ArgumentOutOfRangeException(nameof(start));
        int[] s = (int[])Shape.Clone();
        s[axis] = length;
        if (DType != GgmlType.F32 && (axis == Rank - 1 || axis == -1)) throw new InvalidOperationException($"{Name}: a {DType} tensor narrows by whole rows only.");
        return Rebase(Offset + start * Strides[axis], s, (int[])Strides.Clone());
    }

    /// <summary>A view with another offset, shape and strides over the same storage (owned or foreign).</summary>
    private Tensor Rebase(int offset, int[] shape, int[] strides) => IsForeign
        ? new Tensor(address, DType, keepAlive, offset, shape, strides) { Name = Name }
        : new Tensor(storage, offset, shape, strides) { Name = Name };

    /// <summary>This tensor if contiguous, else a contiguous copy.</summary>
    public Tensor Contiguous()
    {
        if (IsContiguous) return this;
        if (DType != GgmlType.F32) throw new InvalidOperationException($"{Name}: a {DType} tensor has no element-wise copy.");
        var t = new Tensor(Shape);
        var dst = t.Span;
        int[] idx = new int[Rank];
        for (int i = 0; i < Length; i++)
        {
            dst[i] = ElementRef(Index(idx));
            for (int d = Rank - 1; d >= 0; d--)
            {
                if (++idx[d] < Shape[d]) break;
                idx[d] = 0;
            }
        }
        return t;
    }

    /// <summary>Copies the elements (row-major order) into a new array; block types are dequantized.</summary>
    public float[] ToArray()
    {
        if (DType == GgmlType.F32) return Contiguous().Span.ToArray();
        if (!IsContiguous) throw new InvalidOperationException($"{Name}: a non-contiguous {DType} view cannot be read.");
        var all = new float[Length];
        GgmlQuant.Dequantize(DType, Bytes, all);
        return all;
    }

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

    /// <summary>Sets the name and returns the tensor (for tensors made by a factory).</summary>
    internal Tensor Named(string name)
    {
        Name = name;
        return this;
    }

    /// <summary>Floats an aligned storage holds beyond its tensor, so the tensor can start on a 64-byte line.</summary>
    internal const int AlignPad = 15;

    /// <summary>
    /// A zero-filled contiguous tensor whose first element starts a 64-byte cache line, over pinned storage of
    /// AlignPad more floats (.NET places arrays on 8-byte boundaries only). For activations, gradients and optimizer
    /// state: a vector load or store of a row that is not aligned touches two lines, and a GEMM's C tile rows whose
    /// start is not aligned ran 2-3% slower (Zen 4).
    /// </summary>
    internal static Tensor Aligned(int[] shape)
    {
        int n = CheckedElementCount(shape);
        var storage = AllocateStorage(checked(n + AlignPad));
        return new Tensor(storage, AlignedOffset(storage), (int[])shape.Clone(), ContiguousStrides(shape));
    }

    /// <summary>The index of the first float of a pinned array that starts a 64-byte line (0 to 15).</summary>
    internal static int AlignedOffset(float[] pinned)
    {
        nint address = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(pinned));
        return (int)((-address & 63) / sizeof(float));
    }

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
