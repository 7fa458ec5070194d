// The GGUF metadata value type ids, as stored in the file before each value.
namespace Quill.Formats.Gguf;

/// <summary>Type id of a GGUF metadata value (GGUF v2/v3 numbering).</summary>
public enum GgufValueType
{
    UInt8 = 0,
    Int8 = 1,
    UInt16 = 2,
    Int16 = 3,
    UInt32 = 4,
    Int32 = 5,
    Float32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    UInt64 = 10,
    Int64 = 11,
    Float64 = 12,
}
