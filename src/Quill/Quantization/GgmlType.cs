// The ggml tensor element types, with ggml's numeric values (as stored in GGUF tensor infos), and the block
// geometry of each: how many values one block holds and how many bytes it takes. Handles every type ggml has
// defined up to MXFP4; ids ggml removed (4, 5, 31-33, 36-38) are not members. Which types Quill can convert is
// decided by GgmlQuant, not here. Lives in Quantization (not Formats) so that the formats depend on quantization
// and never the other way round.
namespace Quill.Quantization;

/// <summary>A ggml tensor element type; the numeric values are ggml's and appear in GGUF files.</summary>
public enum GgmlType
{
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
    TQ1_0 = 34,
    TQ2_0 = 35,
    MXFP4 = 39,

    /// <summary>
    /// Not a ggml type: bitsandbytes' NF4 (blocks of 64, an f32 absmax each, see <see cref="Nf4"/>), which Quill
    /// holds only in memory (a QLoRA base); GGUF files never carry it, and this id is outside ggml's range.
    /// </summary>
    NF4 = 1000,
}

/// <summary>Block geometry of the ggml types: values per block and bytes per block.</summary>
public static class GgmlTypeInfo
{
    /// <summary>True when <paramref name="type"/> is a type this table knows.</summary>
    public static bool IsKnown(GgmlType type) => Geometry(type).BlockSize != 0;

    /// <summary>True for the types a GGUF file may hold: every known type but Quill's in-memory <see cref="GgmlType.NF4"/>.</summary>
    public static bool IsFileType(GgmlType type) => IsKnown(type) && type != GgmlType.NF4;

    /// <summary>True for the quantized block types (every type but the plain floats F32, F16 and BF16).</summary>
    public static bool IsBlockType(GgmlType type) => type is not (GgmlType.F32 or GgmlType.F16 or GgmlType.BF16);

    /// <summary>Values per block (1 for plain types, 32 or 256 for quantized ones).</summary>
    public static int BlockSize(GgmlType type) => Known(type).BlockSize;

    /// <summary>Bytes per block.</summary>
    public static int BlockBytes(GgmlType type) => Known(type).BlockBytes;

    /// <summary>
    /// Bytes taken by a row of <paramref name="count"/> values; <paramref name="count"/> must be a multiple of the
    /// block size.
    /// </summary>
    public static long RowBytes(GgmlType type, long count)
    {
        var (bs, bb) = Known(type);
        if (count % bs != 0)
            throw new ArgumentException($"{type} stores values in blocks of {bs}; {count} is not a multiple of {bs}.", nameof(count));
        return count / bs * bb;
    }

    private static (int BlockSize, int BlockBytes) Known(GgmlType type)
    {
        var g = Geometry(type);
        if (g.BlockSize == 0) throw new ArgumentException($"unknown ggml type id {(int)type}.", nameof(type));
        return g;
    }

    private static (int BlockSize, int BlockBytes) Geometry(GgmlType type) => type switch
    {
        GgmlType.F32 => (1, 4),
        GgmlType.F16 => (1, 2),
        GgmlType.Q4_0 => (32, 18),   // f16 d, 16 bytes of nibbles
        GgmlType.Q4_1 => (32, 20),   // f16 d, f16 m, 16 bytes of nibbles
        GgmlType.Q5_0 => (32, 22),   // f16 d, 4 bytes high bits, 16 bytes of nibbles
        GgmlType.Q5_1 => (32, 24),   // f16 d, f16 m, 4 bytes high bits, 16 bytes of nibbles
        GgmlType.Q8_0 => (32, 34),   // f16 d, 32 int8
        GgmlType.Q8_1 => (32, 36),   // f16 d, f16 s, 32 int8
        GgmlType.Q2_K => (256, 84),
        GgmlType.Q3_K => (256, 110),
        GgmlType.Q4_K => (256, 144), // f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles
        GgmlType.Q5_K => (256, 176),
        GgmlType.Q6_K => (256, 210), // 128 bytes low nibbles, 64 bytes high 2 bits, 16 int8 scales, f16 d
        GgmlType.Q8_K => (256, 292),
        GgmlType.IQ2_XXS => (256, 66),
        GgmlType.IQ2_XS => (256, 74),
        GgmlType.IQ3_XXS => (256, 98),
        GgmlType.IQ1_S => (256, 50),
        GgmlType.IQ4_NL => (32, 18),
        GgmlType.IQ3_S => (256, 110),
        GgmlType.IQ2_S => (256, 82),
        GgmlType.IQ4_XS => (256, 136),
        GgmlType.I8 => (1, 1),
        GgmlType.I16 => (1, 2),
        GgmlType.I32 => (1, 4),
        GgmlType.I64 => (1, 8),
        GgmlType.F64 => (1, 8),
        GgmlType.IQ1_M => (256, 56),
        GgmlType.BF16 => (1, 2),
        GgmlType.TQ1_0 => (256, 54),
        GgmlType.TQ2_0 => (256, 66),
        GgmlType.MXFP4 => (32, 17),
        GgmlType.NF4 => (64, 36),    // f32 absmax, 32 bytes of 4-bit codes (Quill's in-memory QLoRA type)
        _ => (0, 0),
    };
}
