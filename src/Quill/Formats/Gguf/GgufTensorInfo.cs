// What a GGUF file says about one tensor: its name, dims (ne0 first, as ggml orders them), element type, and
// where its bytes lie. The bytes themselves are reached through GgufFile.
using Quill.Quantization;

namespace Quill.Formats.Gguf;

/// <summary>
/// One tensor of a GGUF file. <see cref="Dimensions"/> are in GGUF/ggml order: ne0 (the fastest-varying, row
/// length) first, so a PyTorch [out, in] weight appears as [in, out].
/// </summary>
/// <param name="Name">Tensor name, e.g. blk.0.attn_q.weight.</param>
/// <param name="Dimensions">ne0, ne1, ... (1 to 4 entries).</param>
/// <param name="Type">Element type.</param>
/// <param name="Offset">Offset of the data from the start of the data section.</param>
/// <param name="FileOffset">Offset of the data from the start of the file.</param>
/// <param name="ByteSize">Bytes of data.</param>
public sealed record GgufTensorInfo(string Name, IReadOnlyList<long> Dimensions, GgmlType Type, long Offset, long FileOffset, long ByteSize)
{
    /// <summary>Number of values (product of the dimensions).</summary>
    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (long d in Dimensions) n *= d;
            return n;
        }
    }

    public override string ToString() => $"{Name} {Type} [{string.Join(", ", Dimensions)}]";
}
