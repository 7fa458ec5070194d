// Writes a GGUF v3 file: metadata (any GgufValue, in the order it was set) and tensors (raw bytes of any ggml
// type, or float32 data), each tensor aligned to general.alignment (default 32) within the data section. The
// file goes to a temporary name, is flushed to disk and renamed over the target (see AtomicFile). A tensor may be
// given as a producer called during Write, one tensor at a time, so a model is never held twice in memory (an
// exporter converts each weight as it is written). Does not handle: a single tensor larger than memory.
using System.Runtime.InteropServices;
using System.Text;
using Quill.Quantization;

namespace Quill.Formats.Gguf;

/// <summary>Builds a GGUF v3 file in memory and writes it atomically.</summary>
public sealed class GgufWriter
{
    private readonly List<KeyValuePair<string, GgufValue>> metadata = [];
    private readonly List<(string Name, long[] Dims, GgmlType Type, long Bytes, Func<ReadOnlyMemory<byte>> Data)> tensors = [];
    private readonly HashSet<string> tensorNames = new(StringComparer.Ordinal);

    /// <summary>Called after each tensor's data is written, with its name and the bytes written so far (progress).</summary>
    public Action<string, long>? Written { get; set; }

    /// <summary>Alignment of tensor data: general.alignment when set, else 32.</summary>
    public int Alignment
    {
        get
        {
            foreach (var kv in metadata)
            {
                if (kv.Key == "general.alignment" && kv.Value.TryGetInt64(out long a)) return (int)a;
            }
            return GgufFile.DefaultAlignment;
        }
    }

    /// <summary>Sets (or replaces) a metadata value, keeping the position of the first Set of that key.</summary>
    public GgufWriter Set(string key, GgufValue value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(value);
        if (key == "general.alignment")
        {
            if (!value.TryGetInt64(out long a) || a <= 0 || a > (1 << 30) || (a & (a - 1)) != 0)
                throw new InvalidConfigException($"general.alignment must be a power of two (got {value.Value}).");
            if (value.Type != GgufValueType.UInt32) value = GgufValue.FromUInt32((uint)a);
        }
        int i = metadata.FindIndex(kv => kv.Key == key);
        if (i >= 0) metadata[i] = new(key, value);
        else metadata.Add(new(key, value));
        return this;
    }

    public GgufWriter SetString(string key, string value) => Set(key, GgufValue.FromString(value));
    public GgufWriter SetUInt32(string key, uint value) => Set(key, GgufValue.FromUInt32(value));
    public GgufWriter SetInt32(string key, int value) => Set(key, GgufValue.FromInt32(value));
    public GgufWriter SetUInt64(string key, ulong value) => Set(key, GgufValue.FromUInt64(value));
    public GgufWriter SetFloat32(string key, float value) => Set(key, GgufValue.FromFloat32(value));
    public GgufWriter SetBool(string key, bool value) => Set(key, GgufValue.FromBool(value));
    public GgufWriter SetStringArray(string key, string[] values) => Set(key, GgufValue.FromArray(values));
    public GgufWriter SetInt32Array(string key, int[] values) => Set(key, GgufValue.FromArray(values));
    public GgufWriter SetFloatArray(string key, float[] values) => Set(key, GgufValue.FromArray(values));

    /// <summary>
    /// Adds a tensor of raw bytes in <paramref name="type"/>'s layout. <paramref name="dims"/> are in GGUF order
    /// (ne0, the row length, first). The data is not copied: keep it alive and unchanged until Write returns.
    /// </summary>
    public GgufWriter AddTensor(string name, GgmlType type, IReadOnlyList<long> dims, ReadOnlyMemory<byte> data)
    {
        long bytes = Validate(name, type, dims);
        if (bytes != data.Length)
            throw new InvalidConfigException($"tensor '{name}': {type} [{string.Join(", ", dims)}] needs {bytes} bytes, got {data.Length}.");
        return Register(name, type, dims, bytes, () => data);
    }

    /// <summary>
    /// Adds a tensor whose bytes <paramref name="produce"/> makes during Write (called once, tensors in order; the
    /// memory may be dropped after it is written). Its size is checked against type and dims then.
    /// </summary>
    public GgufWriter AddTensor(string name, GgmlType type, IReadOnlyList<long> dims, Func<ReadOnlyMemory<byte>> produce)
    {
        ArgumentNullException.ThrowIfNull(produce);
        return Register(name, type, dims, Validate(name, type, dims), produce);
    }

    /// <summary>Checks name, dims and block size; returns the bytes the tensor takes.</summary>
    private static long Validate(string name, GgmlType type, IReadOnlyList<long> dims)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(dims);
        if (dims.Count is < 1 or > 4) throw new InvalidConfigException($"tensor '{name}': GGUF tensors have 1 to 4 dims (got {dims.Count}).");
        if (!GgmlTypeInfo.IsFileType(type)) throw new InvalidConfigException($"tensor '{name}': {type} is not a type GGUF files hold.");
        long n = 1;
        foreach (long d in dims)
        {
            if (d < 0) throw new InvalidConfigException($"tensor '{name}': negative dimension {d}.");
            n = checked(n * d);
        }
        if (dims[0] % GgmlTypeInfo.BlockSize(type) != 0)
            throw new InvalidConfigException($"tensor '{name}': row length {dims[0]} is not a multiple of the {type} block size {GgmlTypeInfo.BlockSize(type)}.");
        return n / GgmlTypeInfo.BlockSize(type) * GgmlTypeInfo.BlockBytes(type);
    }

    private GgufWriter Register(string name, GgmlType type, IReadOnlyList<long> dims, long bytes, Func<ReadOnlyMemory<byte>> produce)
    {
        if (!tensorNames.Add(name)) throw new InvalidConfigException($"tensor '{name}' added twice.");
        tensors.Add((name, dims.ToArray(), type, bytes, produce));
        return this;
    }

    /// <summary>Adds a float32 tensor (dims in GGUF order, ne0 first); the data is copied.</summary>
    public GgufWriter AddTensor(string name, IReadOnlyList<long> dims, ReadOnlyMemory<float> data)
    {
        ReadOnlyMemory<byte> bytes = MemoryMarshal.TryGetArray(data, out ArraySegment<float> seg)
            ? MemoryMarshal.AsBytes(seg.AsSpan()).ToArray()
            : MemoryMarshal.AsBytes(data.Span).ToArray();
        return AddTensor(name, GgmlType.F32, dims, bytes);
    }

    /// <summary>Writes the file atomically (temp file, fsync, rename). IO failures raise QuillException naming the file.</summary>
    public void Write(string path)
    {
        int alignment = Alignment;
        AtomicFile.Write(path, s =>
        {
            var w = new BinaryWriter(s, Encoding.UTF8, leaveOpen: true);
            w.Write(GgufFile.Magic);
            w.Write(3u);
            w.Write((ulong)tensors.Count);
            w.Write((ulong)metadata.Count);
            foreach (var kv in metadata)
            {
                WriteString(w, kv.Key);
                w.Write((uint)kv.Value.Type);
                WriteValue(w, kv.Value);
            }
            long offset = 0;
            foreach (var t in tensors)
            {
                WriteString(w, t.Name);
                w.Write((uint)t.Dims.Length);
                foreach (long d in t.Dims) w.Write((ulong)d);
                w.Write((uint)t.Type);
                w.Write((ulong)offset);
                offset = GgufFile.AlignUp(offset + t.Bytes, alignment);
            }
            w.Flush();
            Pad(s, GgufFile.AlignUp(s.Position, alignment) - s.Position);
            long start = s.Position;
            foreach (var t in tensors)
            {
                var data = t.Data();
                if (data.Length != t.Bytes)
                    throw new InvalidConfigException($"tensor '{t.Name}': {t.Type} [{string.Join(", ", t.Dims)}] needs {t.Bytes} bytes, got {data.Length}.");
                s.Write(data.Span);
                Pad(s, GgufFile.AlignUp(s.Position - start, alignment) - (s.Position - start));
                Written?.Invoke(t.Name, s.Position);
            }
        });
    }

    private static void Pad(Stream s, long n)
    {
        Span<byte> zeros = stackalloc byte[64];
        zeros.Clear();
        while (n > 0)
        {
            int k = (int)Math.Min(n, zeros.Length);
            s.Write(zeros[..k]);
            n -= k;
        }
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        byte[] b = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)b.Length);
        w.Write(b);
    }

    private static void WriteValue(BinaryWriter w, GgufValue v)
    {
        if (!v.IsArray)
        {
            WriteScalar(w, v.Value);
            return;
        }
        w.Write((uint)v.ElementType);
        var a = (Array)v.Value;
        w.Write((ulong)a.Length);
        if (a is GgufValue[] nested)
        {
            foreach (var e in nested)
            {
                if (!e.IsArray) throw new InvalidConfigException("a GGUF array of arrays must hold only arrays.");
                WriteValue(w, e);
            }
            return;
        }
        foreach (object e in a) WriteScalar(w, e);
    }

    private static void WriteScalar(BinaryWriter w, object v)
    {
        switch (v)
        {
            case byte x: w.Write(x); break;
            case sbyte x: w.Write(x); break;
            case ushort x: w.Write(x); break;
            case short x: w.Write(x); break;
            case uint x: w.Write(x); break;
            case int x: w.Write(x); break;
            case float x: w.Write(x); break;
            case bool x: w.Write((byte)(x ? 1 : 0)); break;
            case string x: WriteString(w, x); break;
            case ulong x: w.Write(x); break;
            case long x: w.Write(x); break;
            case double x: w.Write(x); break;
            default: throw new InvalidConfigException($"cannot write a {v.GetType().Name} as a GGUF value.");
        }
    }
}
