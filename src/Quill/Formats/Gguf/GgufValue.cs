// One GGUF metadata value: a scalar, a string, or an array (of scalars, strings or nested arrays), held as plain
// .NET values (arrays as typed arrays: uint[], float[], string[], ...). Handles lenient typed access (an integer
// getter accepts any integer type whose value fits; a float getter accepts any number) and the factories the
// writer uses. Does not handle: reading or writing bytes (GgufFile / GgufWriter do that).
namespace Quill.Formats.Gguf;

/// <summary>A GGUF metadata value with its stored type.</summary>
public sealed class GgufValue
{
    /// <summary>The stored type of this value.</summary>
    public GgufValueType Type { get; }

    /// <summary>For arrays, the element type; otherwise equal to <see cref="Type"/>.</summary>
    public GgufValueType ElementType { get; }

    /// <summary>
    /// The value: byte, sbyte, ushort, short, uint, int, float, bool, string, ulong, long or double for scalars; a
    /// typed array of those for arrays (GgufValue[] for arrays of arrays).
    /// </summary>
    public object Value { get; }

    internal GgufValue(GgufValueType type, GgufValueType elementType, object value)
    {
        Type = type;
        ElementType = elementType;
        Value = value;
    }

    /// <summary>True for arrays.</summary>
    public bool IsArray => Type == GgufValueType.Array;

    /// <summary>Element count for arrays, 1 for scalars.</summary>
    public int Count => Value is Array a ? a.Length : 1;

    public static GgufValue FromUInt8(byte v) => Scalar(GgufValueType.UInt8, v);
    public static GgufValue FromInt8(sbyte v) => Scalar(GgufValueType.Int8, v);
    public static GgufValue FromUInt16(ushort v) => Scalar(GgufValueType.UInt16, v);
    public static GgufValue FromInt16(short v) => Scalar(GgufValueType.Int16, v);
    public static GgufValue FromUInt32(uint v) => Scalar(GgufValueType.UInt32, v);
    public static GgufValue FromInt32(int v) => Scalar(GgufValueType.Int32, v);
    public static GgufValue FromFloat32(float v) => Scalar(GgufValueType.Float32, v);
    public static GgufValue FromBool(bool v) => Scalar(GgufValueType.Bool, v);
    public static GgufValue FromUInt64(ulong v) => Scalar(GgufValueType.UInt64, v);
    public static GgufValue FromInt64(long v) => Scalar(GgufValueType.Int64, v);
    public static GgufValue FromFloat64(double v) => Scalar(GgufValueType.Float64, v);

    public static GgufValue FromString(string v)
    {
        ArgumentNullException.ThrowIfNull(v);
        return Scalar(GgufValueType.String, v);
    }

    /// <summary>An array value; <paramref name="values"/> must be a typed array of a GGUF element type (copied).</summary>
    public static GgufValue FromArray(Array values)
    {
        ArgumentNullException.ThrowIfNull(values);
        // switch on the exact element type: the runtime lets an int[] pass as a uint[] (and sbyte[] as byte[])
        Type? e = values.GetType().GetElementType();
        GgufValueType et =
            e == typeof(byte) ? GgufValueType.UInt8 :
            e == typeof(sbyte) ? GgufValueType.Int8 :
            e == typeof(ushort) ? GgufValueType.UInt16 :
            e == typeof(short) ? GgufValueType.Int16 :
            e == typeof(uint) ? GgufValueType.UInt32 :
            e == typeof(int) ? GgufValueType.Int32 :
            e == typeof(float) ? GgufValueType.Float32 :
            e == typeof(bool) ? GgufValueType.Bool :
            e == typeof(string) ? GgufValueType.String :
            e == typeof(ulong) ? GgufValueType.UInt64 :
            e == typeof(long) ? GgufValueType.Int64 :
            e == typeof(double) ? GgufValueType.Float64 :
            e == typeof(GgufValue) ? GgufValueType.Array :
            throw new ArgumentException($"{values.GetType().Name} is not a GGUF array element type.", nameof(values));
        return new GgufValue(GgufValueType.Array, et, values.Clone());
    }

    private static GgufValue Scalar(GgufValueType t, object v) => new(t, t, v);

    /// <summary>The value as a 64-bit integer when it is an integer scalar that fits.</summary>
    public bool TryGetInt64(out long value) => TryInteger(Value, out value);

    /// <summary>The value as a double when it is a numeric scalar (integer or float).</summary>
    public bool TryGetDouble(out double value)
    {
        switch (Value)
        {
            case float f: value = f; return true;
            case double d: value = d; return true;
            case ulong u: value = u; return true;
        }
        if (TryInteger(Value, out long l))
        {
            value = l;
            return true;
        }
        value = 0;
        return false;
    }

    /// <summary>The string, when this is a string scalar.</summary>
    public bool TryGetString(out string value)
    {
        value = Value as string ?? "";
        return Value is string;
    }

    /// <summary>The array as longs, when it is an array of integers that fit.</summary>
    public bool TryGetInt64Array(out long[] values)
    {
        values = [];
        if (!IsArray || Value is GgufValue[] || Value is string[] || Value is float[] || Value is double[] || Value is bool[]) return false;
        var a = (Array)Value;
        var r = new long[a.Length];
        for (int i = 0; i < r.Length; i++)
        {
            if (!TryInteger(a.GetValue(i)!, out r[i])) return false;
        }
        values = r;
        return true;
    }

    /// <summary>The array as floats, when it is a numeric array (converted where needed).</summary>
    public bool TryGetFloatArray(out float[] values)
    {
        values = [];
        if (!IsArray) return false;
        switch (Value)
        {
            case float[] f: values = (float[])f.Clone(); return true;
            case double[] d: values = Array.ConvertAll(d, x => (float)x); return true;
        }
        if (!TryGetInt64Array(out long[] l)) return false;
        values = Array.ConvertAll(l, x => (float)x);
        return true;
    }

    private static bool TryInteger(object v, out long value)
    {
        switch (v)
        {
            case byte b: value = b; return true;
            case sbyte sb: value = sb; return true;
            case ushort us: value = us; return true;
            case short s: value = s; return true;
            case uint ui: value = ui; return true;
            case int i: value = i; return true;
            case long l: value = l; return true;
            case ulong ul when ul <= long.MaxValue: value = (long)ul; return true;
            default: value = 0; return false;
        }
    }

    public override string ToString() => IsArray ? $"[{ElementType} x {Count}]" : $"{Type} {Value}";
}
