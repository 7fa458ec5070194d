// One entry point over all the element types Quill can convert: F32, F16, BF16 and the block formats Q8_0, Q4_0,
// Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, and bitsandbytes' NF4 (in memory only, for QLoRA). Quantize turns floats
// into a type's bytes, Dequantize turns bytes back into floats. Any other ggml type (Q2_K, Q3_K, Q8_K, IQ*, ...) raises a QuillException that names the type.
using System.Runtime.InteropServices;
using Quill.Kernels;

namespace Quill.Quantization;

/// <summary>Quantize / dequantize by <see cref="GgmlType"/>.</summary>
public static class GgmlQuant
{
    /// <summary>The types Quantize and Dequantize accept.</summary>
    public static readonly IReadOnlyList<GgmlType> SupportedTypes =
        [GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K];

    /// <summary>True for the types Quantize and Dequantize accept: <see cref="SupportedTypes"/> and the in-memory NF4.</summary>
    public static bool IsSupported(GgmlType type) => type == GgmlType.NF4 || SupportedTypes.Contains(type);

    /// <summary>The block types a float QLoRA base can be quantized to in memory, by their lower-case names.</summary>
    public static string QLoraTypeNames => string.Join(", ", SupportedTypes.Where(GgmlTypeInfo.IsBlockType).Append(GgmlType.NF4)).ToLowerInvariant();

    /// <summary>Converts <paramref name="src"/> into <paramref name="type"/>'s bytes (a whole number of blocks).</summary>
    public static void Quantize(GgmlType type, ReadOnlySpan<float> src, Span<byte> dst)
    {
        switch (type)
        {
            case GgmlType.F32:
                QuantMath.CheckSizes("F32", 1, 4, src.Length, dst.Length);
                MemoryMarshal.AsBytes(src).CopyTo(dst);
                break;
            case GgmlType.F16:
                QuantMath.CheckSizes("F16", 1, 2, src.Length, dst.Length);
                Fp16.FromSingle(src, dst);
                break;
            case GgmlType.BF16:
                QuantMath.CheckSizes("BF16", 1, 2, src.Length, dst.Length);
                Bf16.FromSingle(src, dst);
                break;
            case GgmlType.Q8_0: Q8_0.Quantize(src, dst); break;
            case GgmlType.Q4_0: Q4_0.Quantize(src, dst); break;
            case GgmlType.Q4_1: Q4_1.Quantize(src, dst); break;
            case GgmlType.Q5_0: Q5_0.Quantize(src, dst); break;
            case GgmlType.Q5_1: Q5_1.Quantize(src, dst); break;
            case GgmlType.Q4_K: Q4_K.Quantize(src, dst); break;
            case GgmlType.Q5_K: Q5_K.Quantize(src, dst); break;
            case GgmlType.Q6_K: Q6_K.Quantize(src, dst); break;
            case GgmlType.NF4: Nf4.Quantize(src, dst); break;
            default: throw Unsupported(type);
        }
    }

    /// <summary>Converts <paramref name="type"/>'s bytes back into floats.</summary>
    public static void Dequantize(GgmlType type, ReadOnlySpan<byte> src, Span<float> dst)
    {
        switch (type)
        {
            case GgmlType.F32:
                QuantMath.CheckSizes("F32", 1, 4, dst.Length, src.Length);
                src.CopyTo(MemoryMarshal.AsBytes(dst));
                break;
            case GgmlType.F16:
                QuantMath.CheckSizes("F16", 1, 2, dst.Length, src.Length);
                Fp16.ToSingle(src, dst);
                break;
            case GgmlType.BF16:
                QuantMath.CheckSizes("BF16", 1, 2, dst.Length, src.Length);
                Bf16.ToSingle(src, dst);
                break;
            case GgmlType.Q8_0: Q8_0.Dequantize(src, dst); break;
            case GgmlType.Q4_0: Q4_0.Dequantize(src, dst); break;
            case GgmlType.Q4_1: Q4_1.Dequantize(src, dst); break;
            case GgmlType.Q5_0: Q5_0.Dequantize(src, dst); break;
            case GgmlType.Q5_1: Q5_1.Dequantize(src, dst); break;
            case GgmlType.Q4_K: Q4_K.Dequantize(src, dst); break;
            case GgmlType.Q5_K: Q5_K.Dequantize(src, dst); break;
            case GgmlType.Q6_K: Q6_K.Dequantize(src, dst); break;
            case GgmlType.NF4: Nf4.Dequantize(src, dst); break;
            default: throw Unsupported(type);
        }
    }

    internal static QuillException Unsupported(GgmlType type) =>
        new($"ggml type {type} is not supported by Quill (supported: {string.Join(", ", SupportedTypes)}); re-quantize the model to one of those, e.g. Q8_0 or Q4_K.");
}
