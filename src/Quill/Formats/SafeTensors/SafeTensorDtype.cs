// The element types a safetensors header can name, their byte sizes, and the header spelling of each.
namespace Quill.Formats.SafeTensors;

/// <summary>Element type of a safetensors tensor (the header's "dtype" string).</summary>
public enum SafeTensorDtype
{
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
    U16,
    U32,
    U64,
    F8E4M3,
    F8E5M2,
}

/// <summary>Header names and sizes of <see cref="SafeTensorDtype"/>.</summary>
public static class SafeTensorDtypes
{
    /// <summary>Bytes per element.</summary>
    public static int Size(SafeTensorDtype dtype) => dtype switch
    {
        SafeTensorDtype.F64 or SafeTensorDtype.I64 or SafeTensorDtype.U64 => 8,
        SafeTensorDtype.F32 or SafeTensorDtype.I32 or SafeTensorDtype.U32 => 4,
        SafeTensorDtype.F16 or SafeTensorDtype.BF16 or SafeTensorDtype.I16 or SafeTensorDtype.U16 => 2,
        _ => 1,
    };

    /// <summary>The spelling used in the JSON header ("F32", "BF16", "BOOL", "F8_E4M3", ...).</summary>
    public static string HeaderName(SafeTensorDtype dtype) => dtype switch
    {
        SafeTensorDtype.Bool => "BOOL",
        SafeTensorDtype.F8E4M3 => "F8_E4M3",
        SafeTensorDtype.F8E5M2 => "F8_E5M2",
        _ => dtype.ToString(),
    };

    /// <summary>Parses a header dtype string; false when it is not one of the known names.</summary>
    public static bool TryParse(string name, out SafeTensorDtype dtype)
    {
        switch (name)
        {
            case "F64": dtype = SafeTensorDtype.F64; return true;
            case "F32": dtype = SafeTensorDtype.F32; return true;
            case "F16": dtype = SafeTensorDtype.F16; return true;
            case "BF16": dtype = SafeTensorDtype.BF16; return true;
            case "I64": dtype = SafeTensorDtype.I64; return true;
            case "I32": dtype = SafeTensorDtype.I32; return true;
            case "I16": dtype = SafeTensorDtype.I16; return true;
            case "I8": dtype = SafeTensorDtype.I8; return true;
            case "U8": dtype = SafeTensorDtype.U8; return true;
            case "BOOL": dtype = SafeTensorDtype.Bool; return true;
            case "U16": dtype = SafeTensorDtype.U16; return true;
            case "U32": dtype = SafeTensorDtype.U32; return true;
            case "U64": dtype = SafeTensorDtype.U64; return true;
            case "F8_E4M3": dtype = SafeTensorDtype.F8E4M3; return true;
            case "F8_E5M2": dtype = SafeTensorDtype.F8E5M2; return true;
            default: dtype = default; return false;
        }
    }
}
