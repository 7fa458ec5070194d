// A bounds-checked little-endian reader over the mapped bytes of a GGUF file. Every read checks the remaining
// length first, so a truncated or corrupt file raises InvalidFileException naming the file, the offset and what
// was being read, instead of reading past the mapping.
using System.Buffers.Binary;
using System.Text;

namespace Quill.Formats.Gguf;

internal unsafe struct GgufCursor
{
    private readonly byte* basePtr;
    private readonly long length;
    private readonly string path;

    public long Position;

    public GgufCursor(byte* basePtr, long length, string path, long position = 0)
    {
        this.basePtr = basePtr;
        this.length = length;
        this.path = path;
        Position = position;
    }

    public readonly long Remaining => length - Position;

    public readonly InvalidFileException Error(string what) =>
        new($"{path}: {Printable(what)} (at byte {Position}); the GGUF file is corrupt or truncated, re-download or re-export it.");

    /// <summary>Text from a corrupt file made fit for a one-line message: control characters shown as '?', at most 200 characters.</summary>
    public static string Printable(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var chars = text.Length > 200 ? (text[..200] + "...").ToCharArray() : text.ToCharArray();
        for (int i = 0; i < chars.Length; i++) if (char.IsControl(chars[i])) chars[i] = '?';
        return new string(chars);
    }

    private ReadOnlySpan<byte> Take(long n, string what)
    {
        if (n < 0 || n > Remaining)
            throw Error($"truncated while reading {what}: need {n} bytes, {Math.Max(0, Remaining)} left");
        var s = new ReadOnlySpan<byte>(basePtr + Position, (int)n);
        Position += n;
        return s;
    }

    public byte ReadU8(string what) => Take(1, what)[0];
    public ushort ReadU16(string what) => BinaryPrimitives.ReadUInt16LittleEndian(Take(2, what));
    public uint ReadU32(string what) => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, what));
    public ulong ReadU64(string what) => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, what));
    public float ReadF32(string what) => BinaryPrimitives.ReadSingleLittleEndian(Take(4, what));
    public double ReadF64(string what) => BinaryPrimitives.ReadDoubleLittleEndian(Take(8, what));

    /// <summary>A count that must be plausible: each of the items takes at least minItemBytes of what is left.</summary>
    public long ReadCount(string what, long minItemBytes)
    {
        ulong n = ReadU64(what);
        if (n > (ulong)Math.Max(0, Remaining) / (ulong)Math.Max(1, minItemBytes))
            throw Error($"{what} is {n}, more than the {Remaining} bytes left could hold");
        return (long)n;
    }

    public ReadOnlySpan<byte> ReadStringBytes(string what)
    {
        long n = ReadCount(what + " length", 1);
        if (n > int.MaxValue) throw Error($"{what} length {n} is absurd");
        return Take(n, what);
    }

    public string ReadString(string what) => Encoding.UTF8.GetString(ReadStringBytes(what));

    public GgufValue ReadValue(GgufValueType type, string key, int depth)
    {
        switch (type)
        {
            case GgufValueType.UInt8: return GgufValue.FromUInt8(ReadU8(key));
            case GgufValueType.Int8: return GgufValue.FromInt8((sbyte)ReadU8(key));
            case GgufValueType.UInt16: return GgufValue.FromUInt16(ReadU16(key));
            case GgufValueType.Int16: return GgufValue.FromInt16((short)ReadU16(key));
            case GgufValueType.UInt32: return GgufValue.FromUInt32(ReadU32(key));
            case GgufValueType.Int32: return GgufValue.FromInt32((int)ReadU32(key));
            case GgufValueType.Float32: return GgufValue.FromFloat32(ReadF32(key));
            case GgufValueType.Bool:
                byte b = ReadU8(key);
                if (b > 1) throw Error($"bool value {b} of '{key}' is neither 0 nor 1");
                return GgufValue.FromBool(b == 1);
            case GgufValueType.String: return GgufValue.FromString(ReadString(key));
            case GgufValueType.UInt64: return GgufValue.FromUInt64(ReadU64(key));
            case GgufValueType.Int64: return GgufValue.FromInt64((long)ReadU64(key));
            case GgufValueType.Float64: return GgufValue.FromFloat64(ReadF64(key));
            case GgufValueType.Array: return ReadArray(key, depth);
            default: throw Error($"metadata '{key}' has unknown value type {(int)type}");
        }
    }

    private GgufValue ReadArray(string key, int depth)
    {
        if (depth >= 8) throw Error($"metadata '{key}' nests arrays more than 8 deep");
        uint et = ReadU32(key + " array element type");
        var type = (GgufValueType)et;
        int size = ElementBytes(type);
        long n = ReadCount($"element count of '{key}'", size == 0 ? (type == GgufValueType.String ? 8 : 12) : size);
        if (n > int.MaxValue) throw Error($"metadata '{key}' has {n} elements, too many");
        int count = (int)n;
        Array values;
        switch (type)
        {
            case GgufValueType.UInt8: values = Take(count, key).ToArray(); break;
            case GgufValueType.Int8:
                {
                    var a = new sbyte[count];
                    Take(count, key).CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan()));
                    values = a;
                    break;
                }
            case GgufValueType.UInt16: values = Fill(new ushort[count], key); break;
            case GgufValueType.Int16: values = Fill(new short[count], key); break;
            case GgufValueType.UInt32: values = Fill(new uint[count], key); break;
            case GgufValueType.Int32: values = Fill(new int[count], key); break;
            case GgufValueType.Float32: values = Fill(new float[count], key); break;
            case GgufValueType.UInt64: values = Fill(new ulong[count], key); break;
            case GgufValueType.Int64: values = Fill(new long[count], key); break;
            case GgufValueType.Float64: values = Fill(new double[count], key); break;
            case GgufValueType.Bool:
                {
                    var a = new bool[count];
                    var src = Take(count, key);
                    for (int i = 0; i < count; i++)
                    {
                        if (src[i] > 1) throw Error($"bool element {i} of '{key}' is {src[i]}, neither 0 nor 1");
                        a[i] = src[i] == 1;
                    }
                    values = a;
                    break;
                }
            case GgufValueType.String:
                {
                    var a = new string[count];
                    for (int i = 0; i < count; i++) a[i] = ReadString(key);
                    values = a;
                    break;
                }
            case GgufValueType.Array:
                {
                    var a = new GgufValue[count];
                    for (int i = 0; i < count; i++) a[i] = ReadArray(key, depth + 1);
                    values = a;
                    break;
                }
            default: throw Error($"metadata '{key}' is an array of unknown value type {et}");
        }
        return new GgufValue(GgufValueType.Array, type, values);
    }

    private T[] Fill<T>(T[] a, string key) where T : unmanaged
    {
        var src = Take((long)a.Length * sizeof(T), key);
        src.CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan()));
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("GGUF reading needs a little-endian machine.");
        return a;
    }

    /// <summary>Bytes per element of a fixed-size value type; 0 for strings and arrays.</summary>
    public static int ElementBytes(GgufValueType t) => t switch
    {
        GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
        GgufValueType.UInt16 or GgufValueType.Int16 => 2,
        GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
        GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 => 8,
        _ => 0,
    };
}
