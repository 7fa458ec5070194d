// The two small records of the safetensors API: a tensor to write (float data plus shape), and what a file says
// about a tensor it holds.
namespace Quill.Formats.SafeTensors;

/// <summary>A float32 tensor to write: name, row-major shape (PyTorch order), and exactly prod(shape) values.</summary>
public readonly record struct SafeTensor(string Name, int[] Shape, ReadOnlyMemory<float> Data);

/// <summary>
/// A float32 tensor to write whose values <paramref name="Produce"/> makes while the file is written (one tensor at a
/// time, so an exporter never holds the whole model twice).
/// </summary>
public readonly record struct DeferredSafeTensor(string Name, int[] Shape, Func<ReadOnlyMemory<float>> Produce);

/// <summary>One tensor of a safetensors file. <see cref="Shape"/> is row-major, outermost first (PyTorch order).</summary>
/// <param name="Name">Tensor name.</param>
/// <param name="Dtype">Stored element type.</param>
/// <param name="Shape">Dimensions, outermost first; empty for a scalar.</param>
/// <param name="FileOffset">Offset of the first byte from the start of the file.</param>
/// <param name="ByteSize">Bytes of data.</param>
public sealed record SafeTensorInfo(string Name, SafeTensorDtype Dtype, IReadOnlyList<long> Shape, long FileOffset, long ByteSize)
{
    /// <summary>Number of values (product of the shape; 1 for a scalar).</summary>
    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (long d in Shape) n *= d;
            return n;
        }
    }

    public override string ToString() => $"{Name} {SafeTensorDtypes.HeaderName(Dtype)} [{string.Join(", ", Shape)}]";
}
