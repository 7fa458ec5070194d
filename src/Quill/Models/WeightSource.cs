// Where the loaders find tensors by name: a uniform view over safetensors (single or sharded) and GGUF files, or
// arrays in memory. Each tensor comes back as its element type, address and shape (outermost first, PyTorch
// order; GGUF's ne0-first dims are reversed here), so the model builders can make zero-copy WeightMatrix views of
// matrices and small float copies of norm vectors and biases.
// Does not handle: integer or FP8 tensors (a QuillException names the tensor and its type).
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Quill.Formats.Gguf;
using Quill.Formats.SafeTensors;
using Quill.Quantization;
using Quill.Tensors;

namespace Quill.Models;

/// <summary>A tensor found in a model file: type, first byte, shape outermost first.</summary>
internal readonly record struct TensorView(string Name, GgmlType Type, nint Address, long[] Shape, object? KeepAlive);

/// <summary>Tensors by name from one model file (or set of shards).</summary>
internal abstract class WeightSource
{
    protected WeightSource(string path) => Path = path;

    /// <summary>The file or folder, for messages.</summary>
    public string Path { get; }

    public abstract bool TryGet(string name, out TensorView view);

    public bool Contains(string name) => TryGet(name, out _);

    public TensorView Get(string name) => TryGet(name, out var v) ? v
        : throw new InvalidFileException($"{Path}: tensor '{name}' not found; the file is not a complete model of the architecture its metadata names.");

    /// <summary>A 2-D tensor as a zero-copy matrix [shape0, shape1].</summary>
    public WeightMatrix Matrix(string name)
    {
        var v = Get(name);
        if (v.Shape.Length != 2) throw new InvalidFileException($"{Path}: tensor '{name}' has {v.Shape.Length} dims; a weight matrix needs 2.");
        if (v.Shape[0] > int.MaxValue || v.Shape[1] > int.MaxValue) throw new InvalidFileException($"{Path}: tensor '{name}' is too large.");
        return new WeightMatrix(name, v.Type, v.Address, (int)v.Shape[0], (int)v.Shape[1], v.KeepAlive);
    }

    public WeightMatrix? OptionalMatrix(string name) => Contains(name) ? Matrix(name) : null;

    /// <summary>A 3-D tensor [n, rows, cols] (GGUF's stacked experts) as n zero-copy matrices [rows, cols].</summary>
    public WeightMatrix[] Stacked(string name, int n)
    {
        var v = Get(name);
        if (v.Shape.Length != 3 || v.Shape[0] != n)
            throw new InvalidFileException($"{Path}: tensor '{name}' has shape [{string.Join(", ", v.Shape)}]; the {n} experts need [{n}, rows, cols].");
        if (v.Shape[1] > int.MaxValue || v.Shape[2] > int.MaxValue) throw new InvalidFileException($"{Path}: tensor '{name}' is too large.");
        int rows = (int)v.Shape[1], cols = (int)v.Shape[2];
        long bytes = Quantization.GgmlTypeInfo.RowBytes(v.Type, cols) * rows;
        var all = new WeightMatrix[n];
        for (int e = 0; e < n; e++) all[e] = new WeightMatrix($"{name}[{e}]", v.Type, v.Address + (nint)(e * bytes), rows, cols, v.KeepAlive);
        return all;
    }

    /// <summary>Any tensor as a new float array (norm weights, biases, position tables).</summary>
    public unsafe float[] Floats(string name)
    {
        var v = Get(name);
        long n = 1;
        foreach (long d in v.Shape) n *= d;
        var dst = new float[n];
        long bytes = GgmlTypeInfo.RowBytes(v.Type, n);
        GgmlQuant.Dequantize(v.Type, new ReadOnlySpan<byte>((void*)v.Address, checked((int)bytes)), dst);
        return dst;
    }

    public float[]? OptionalFloats(string name) => Contains(name) ? Floats(name) : null;
}

/// <summary>Tensors of a safetensors file or sharded set.</summary>
internal sealed class SafeTensorsSource(SafeTensorsCollection files, string path) : WeightSource(path)
{
    public override bool TryGet(string name, out TensorView view)
    {
        view = default;
        if (!files.TryGetInfo(name, out var info)) return false;
        GgmlType type = info.Dtype switch
        {
            SafeTensorDtype.F32 => GgmlType.F32,
            SafeTensorDtype.F16 => GgmlType.F16,
            SafeTensorDtype.BF16 => GgmlType.BF16,
            _ => throw new QuillException($"{Path}: tensor '{name}' is {SafeTensorDtypes.HeaderName(info.Dtype)}; Quill runs F32, F16 and BF16 safetensors (convert the model or use GGUF)."),
        };
        view = new TensorView(name, type, files.Owner(name).GetAddress(name), [.. info.Shape], null);
        return true;
    }
}

/// <summary>Tensors of a GGUF file (dims reversed to outermost first).</summary>
internal sealed class GgufSource(GgufFile file) : WeightSource(file.Path)
{
    public GgufFile File => file;

    public override bool TryGet(string name, out TensorView view)
    {
        view = default;
        if (!file.TryGetTensor(name, out var info)) return false;
        long[] shape = [.. info.Dimensions.Reverse()];
        view = new TensorView(name, info.Type, file.GetTensorAddress(info), shape, null);
        return true;
    }
}

/// <summary>Float arrays in memory, by name (a model just trained, conversions, tests).</summary>
internal sealed class ArraySource(string path) : WeightSource(path)
{
    private readonly Dictionary<string, (float[] Data, long[] Shape)> tensors = new(StringComparer.Ordinal);

    /// <summary>Adds a copy of values in a pinned array.</summary>
    public void Add(string name, ReadOnlySpan<float> values, params long[] shape)
    {
        float[] data = GC.AllocateUninitializedArray<float>(values.Length, pinned: true);
        values.CopyTo(data);
        tensors[name] = (data, shape);
    }

    public override unsafe bool TryGet(string name, out TensorView view)
    {
        view = default;
        if (!tensors.TryGetValue(name, out var t)) return false;
        view = new TensorView(name, GgmlType.F32, (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(t.Data)), t.Shape, t.Data);
        return true;
    }
}
