// Reads a GGUF v2/v3 file (llama.cpp's model format) memory-mapped: the header, every metadata key/value (all
// value types, arrays included, nested arrays too), the tensor infos, the alignment (general.alignment, default
// 32), and zero-copy access to each tensor's bytes. Validates magic, version, counts, truncation, alignment and
// that every tensor lies inside the file without overlapping another; each failure is an InvalidFileException
// naming the file. ReadSingle converts a tensor of any type GgmlQuant supports to floats. Does not handle: GGUF
// v1 (32-bit counts) or big-endian files.
using System.Text;
using Quill.Quantization;

namespace Quill.Formats.Gguf;

/// <summary>A GGUF file mapped into memory. Dispose it to unmap; tensor spans are invalid afterwards.</summary>
public sealed unsafe class GgufFile : IDisposable, IMappedFileOwner
{
    /// <summary>"GGUF" read as a little-endian uint32.</summary>
    public const uint Magic = 0x46554747;

    /// <summary>Alignment of the data section when general.alignment is absent.</summary>
    public const int DefaultAlignment = 32;

    private const int MaxDims = 4;

    private readonly MappedFile file;
    private readonly Dictionary<string, GgufValue> metadata;
    private readonly Dictionary<string, long> valueOffsets;
    private readonly Dictionary<string, GgufTensorInfo> tensorsByName;

    /// <summary>Path the file was opened from.</summary>
    public string Path => file.Path;

    /// <summary>GGUF version (2 or 3).</summary>
    public int Version { get; }

    /// <summary>Alignment of tensor data in bytes.</summary>
    public int Alignment { get; }

    /// <summary>Absolute offset of the data section (tensor offsets are relative to it).</summary>
    public long DataOffset { get; }

    /// <summary>File size in bytes.</summary>
    public long FileSize => file.Length;

    /// <summary>Metadata keys in file order.</summary>
    public IReadOnlyList<string> MetadataKeys { get; }

    /// <summary>All metadata, by key.</summary>
    public IReadOnlyDictionary<string, GgufValue> Metadata => metadata;

    /// <summary>Tensor infos in file order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }

    /// <summary>general.architecture, or null when absent.</summary>
    public string? Architecture => TryGetString("general.architecture", out string a) ? a : null;

    private GgufFile(MappedFile file)
    {
        this.file = file;
        var c = new GgufCursor(file.Pointer, file.Length, file.Path);
        uint magic = c.ReadU32("magic");
        if (magic != Magic)
            throw new InvalidFileException($"{file.Path}: not a GGUF file (magic 0x{magic:X8}, expected \"GGUF\"); pass a .gguf model file.");
        uint version = c.ReadU32("version");
        if (version is 2 or 3) Version = (int)version;
        else if (version == 0x03000000 || version == 0x02000000)
            throw new InvalidFileException($"{file.Path}: big-endian GGUF is not supported; convert it to little-endian.");
        else
            throw new InvalidFileException($"{file.Path}: GGUF version {version} is not supported (only 2 and 3); re-convert it with a current llama.cpp.");

        // tensor info: name length 8, n_dims 4, type 4, offset 8; key/value: key length 8, type 4, value >= 1
        long tensorCount = c.ReadCount("tensor count", 24);
        long kvCount = c.ReadCount("metadata count", 13);

        metadata = new Dictionary<string, GgufValue>((int)Math.Min(kvCount, 1 << 16), StringComparer.Ordinal);
        valueOffsets = new Dictionary<string, long>(StringComparer.Ordinal);
        var keys = new List<string>((int)Math.Min(kvCount, 1 << 16));
        for (long i = 0; i < kvCount; i++)
        {
            string key = c.ReadString($"metadata key {i}");
            uint vt = c.ReadU32($"value type of '{key}'");
            long at = c.Position;
            GgufValue v = c.ReadValue((GgufValueType)vt, key, 0);
            if (!metadata.TryAdd(key, v)) throw c.Error($"metadata key '{key}' appears twice");
            valueOffsets[key] = at;
            keys.Add(key);
        }
        MetadataKeys = keys;

        Alignment = DefaultAlignment;
        if (metadata.TryGetValue("general.alignment", out GgufValue? av))
        {
            if (!av.TryGetInt64(out long a) || a <= 0 || a > (1 << 30) || (a & (a - 1)) != 0)
                throw new InvalidFileException($"{file.Path}: general.alignment is {av.Value}, not a power of two; fix the exporter.");
            Alignment = (int)a;
        }

        var raw = new (string Name, long[] Dims, GgmlType Type, long Offset, long Bytes)[tensorCount];
        tensorsByName = new Dictionary<string, GgufTensorInfo>((int)tensorCount, StringComparer.Ordinal);
        for (long i = 0; i < tensorCount; i++)
        {
            string name = c.ReadString($"tensor name {i}");
            uint nd = c.ReadU32($"dimension count of tensor '{name}'");
            if (nd == 0 || nd > MaxDims) throw c.Error($"tensor '{name}' has {nd} dimensions (1 to {MaxDims} allowed)");
            var dims = new long[nd];
            long elements = 1;
            for (int d = 0; d < nd; d++)
            {
                ulong v = c.ReadU64($"dimension {d} of tensor '{name}'");
                if (v > long.MaxValue) throw c.Error($"tensor '{name}' dimension {d} is {v}, absurd");
                dims[d] = (long)v;
                if (v != 0 && elements > long.MaxValue / (long)v) throw c.Error($"tensor '{name}' has more elements than fit in 64 bits");
                elements *= (long)v;
            }
            uint tt = c.ReadU32($"type of tensor '{name}'");
            var type = (GgmlType)tt;
            if (!GgmlTypeInfo.IsFileType(type)) throw c.Error($"tensor '{name}' has unknown ggml type {tt}");
            int bs = GgmlTypeInfo.BlockSize(type);
            if (dims[0] % bs != 0) throw c.Error($"tensor '{name}' row length {dims[0]} is not a multiple of the {type} block size {bs}");
            if (elements / bs > long.MaxValue / GgmlTypeInfo.BlockBytes(type)) throw c.Error($"tensor '{name}' has more bytes than fit in 64 bits");
            long bytes = elements / bs * GgmlTypeInfo.BlockBytes(type);
            ulong off = c.ReadU64($"offset of tensor '{name}'");
            if (off > long.MaxValue) throw c.Error($"tensor '{name}' offset {off} is absurd");
            raw[i] = (name, dims, type, (long)off, bytes);
        }

        DataOffset = AlignUp(c.Position, Alignment);
        var tensors = new GgufTensorInfo[tensorCount];
        for (long i = 0; i < tensorCount; i++)
        {
            var (name, dims, type, off, bytes) = raw[i];
            if (off % Alignment != 0)
                throw new InvalidFileException($"{file.Path}: tensor '{name}' offset {off} is not a multiple of the alignment {Alignment}; the file is corrupt.");
            if (DataOffset + off > file.Length || bytes > file.Length - DataOffset - off)
                throw new InvalidFileException($"{file.Path}: tensor '{name}' data [{DataOffset + off}, {DataOffset + off + bytes}) lies beyond the end of the file ({file.Length} bytes); the file is truncated, re-download it.");
            var info = new GgufTensorInfo(name, dims, type, off, DataOffset + off, bytes);
            if (!tensorsByName.TryAdd(name, info))
                throw new InvalidFileException($"{file.Path}: tensor '{name}' appears twice; the file is corrupt.");
            tensors[i] = info;
        }
        var sorted = (GgufTensorInfo[])tensors.Clone();
        Array.Sort(sorted, (a, b) => a.Offset.CompareTo(b.Offset));
        for (int i = 1; i < sorted.Length; i++)
        {
            if (sorted[i - 1].Offset + sorted[i - 1].ByteSize > sorted[i].Offset)
                throw new InvalidFileException($"{file.Path}: tensors '{sorted[i - 1].Name}' and '{sorted[i].Name}' overlap; the file is corrupt.");
        }
        Tensors = tensors;
    }

    /// <summary>Opens and validates a GGUF file. Throws InvalidFileException when it is not a valid GGUF v2/v3 file.</summary>
    public static GgufFile Open(string path)
    {
        var f = MappedFile.Open(path, "GGUF");
        try
        {
            return new GgufFile(f);
        }
        catch
        {
            f.Dispose();
            throw;
        }
    }

    internal static long AlignUp(long x, long alignment) => (x + alignment - 1) / alignment * alignment;

    // ---- tensors ----

    /// <summary>The tensor called <paramref name="name"/>, or false.</summary>
    public bool TryGetTensor(string name, out GgufTensorInfo info) => tensorsByName.TryGetValue(name, out info!);

    /// <summary>The tensor called <paramref name="name"/>; InvalidFileException naming the file when absent.</summary>
    public GgufTensorInfo GetTensor(string name) =>
        tensorsByName.TryGetValue(name, out var t) ? t
        : throw new InvalidFileException($"{Path}: tensor '{name}' not found ({Tensors.Count} tensors in the file); is this the right model?");

    /// <summary>The bytes of a tensor, without copying (valid until Dispose). Tensors over 2 GiB need <see cref="GetTensorAddress"/>.</summary>
    public ReadOnlySpan<byte> GetTensorData(GgufTensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        return file.Span(tensor.FileOffset, tensor.ByteSize);
    }

    /// <summary>The bytes of the tensor called <paramref name="name"/>, without copying.</summary>
    public ReadOnlySpan<byte> GetTensorData(string name) => GetTensorData(GetTensor(name));

    /// <summary>Address of a tensor's first byte in the mapping (valid until Dispose), for tensors of any size.</summary>
    public nint GetTensorAddress(GgufTensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        return (nint)(file.Pointer + tensor.FileOffset);
    }

    /// <summary>
    /// Converts a tensor to floats (any type in GgmlQuant.SupportedTypes), row by row, so tensors
    /// over 2 GiB work too. <paramref name="dst"/> must hold exactly the element count.
    /// </summary>
    public void ReadSingle(GgufTensorInfo tensor, Span<float> dst)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (dst.Length != tensor.ElementCount)
            throw new InvalidConfigException($"{Path}: tensor '{tensor.Name}' has {tensor.ElementCount} values ({tensor}) but the destination holds {dst.Length}; the file does not match the model config.");
        if (!GgmlQuant.IsSupported(tensor.Type))
            throw new InvalidFileException($"{Path}: tensor '{tensor.Name}' is {tensor.Type}, which Quill cannot convert (supported: {string.Join(", ", GgmlQuant.SupportedTypes)}); use a model quantized to one of those.");
        int rowLength = (int)tensor.Dimensions[0];
        if (rowLength == 0) return;
        long rowBytes = GgmlTypeInfo.RowBytes(tensor.Type, rowLength);
        long rows = tensor.ElementCount / rowLength;
        for (long r = 0; r < rows; r++)
        {
            ReadOnlySpan<byte> src = file.Span(tensor.FileOffset + r * rowBytes, rowBytes);
            GgmlQuant.Dequantize(tensor.Type, src, dst.Slice((int)(r * rowLength), rowLength));
        }
    }

    /// <summary>The tensor called <paramref name="name"/> as a new float array (see <see cref="ReadSingle(GgufTensorInfo, Span{float})"/>).</summary>
    public float[] ReadSingle(string name)
    {
        var t = GetTensor(name);
        var dst = new float[checked((int)t.ElementCount)];
        ReadSingle(t, dst);
        return dst;
    }

    // ---- metadata ----

    /// <summary>True when the metadata has <paramref name="key"/>.</summary>
    public bool ContainsKey(string key) => metadata.ContainsKey(key);

    /// <summary>The raw value of <paramref name="key"/>; InvalidFileException naming file and key when absent.</summary>
    public GgufValue Get(string key) =>
        metadata.TryGetValue(key, out var v) ? v
        : throw new InvalidFileException($"{Path}: metadata key '{key}' is missing; the file was not exported with it.");

    public bool TryGet(string key, out GgufValue value) => metadata.TryGetValue(key, out value!);

    public bool TryGetString(string key, out string value)
    {
        value = "";
        return metadata.TryGetValue(key, out var v) && v.TryGetString(out value);
    }

    public string GetString(string key) => TryGetString(key, out string s) ? s : throw WrongType(key, "a string");

    public bool TryGetInt64(string key, out long value)
    {
        value = 0;
        return metadata.TryGetValue(key, out var v) && v.TryGetInt64(out value);
    }

    public long GetInt64(string key) => TryGetInt64(key, out long v) ? v : throw WrongType(key, "an integer");

    public bool TryGetUInt64(string key, out ulong value)
    {
        value = 0;
        if (!metadata.TryGetValue(key, out var v)) return false;
        if (v.Value is ulong u)
        {
            value = u;
            return true;
        }
        if (v.TryGetInt64(out long l) && l >= 0)
        {
            value = (ulong)l;
            return true;
        }
        return false;
    }

    public ulong GetUInt64(string key) => TryGetUInt64(key, out ulong v) ? v : throw WrongType(key, "a non-negative integer");

    public bool TryGetInt32(string key, out int value)
    {
        value = 0;
        if (!TryGetInt64(key, out long l) || l < int.MinValue || l > int.MaxValue) return false;
        value = (int)l;
        return true;
    }

    public int GetInt32(string key) => TryGetInt32(key, out int v) ? v : throw WrongType(key, "a 32-bit integer");

    public bool TryGetUInt32(string key, out uint value)
    {
        value = 0;
        if (!TryGetInt64(key, out long l) || l < 0 || l > uint.MaxValue) return false;
        value = (uint)l;
        return true;
    }

    public uint GetUInt32(string key) => TryGetUInt32(key, out uint v) ? v : throw WrongType(key, "a 32-bit unsigned integer");

    public bool TryGetFloat32(string key, out float value)
    {
        value = 0;
        if (!metadata.TryGetValue(key, out var v) || !v.TryGetDouble(out double d)) return false;
        value = (float)d;
        return true;
    }

    public float GetFloat32(string key) => TryGetFloat32(key, out float v) ? v : throw WrongType(key, "a number");

    public bool TryGetBool(string key, out bool value)
    {
        value = false;
        if (!metadata.TryGetValue(key, out var v) || v.Value is not bool b) return false;
        value = b;
        return true;
    }

    public bool GetBool(string key) => TryGetBool(key, out bool v) ? v : throw WrongType(key, "a bool");

    public bool TryGetStringArray(string key, out string[] values)
    {
        values = [];
        if (!metadata.TryGetValue(key, out var v) || v.Value is not string[] a) return false;
        values = (string[])a.Clone();
        return true;
    }

    /// <summary>A string array (a copy; decoded as UTF-8, invalid bytes replaced: see <see cref="GetStringArrayBytes"/>).</summary>
    public string[] GetStringArray(string key) => TryGetStringArray(key, out var a) ? a : throw WrongType(key, "an array of strings");

    /// <summary>A string array's raw bytes, exactly as stored (for tokens that are not valid UTF-8).</summary>
    public byte[][] GetStringArrayBytes(string key)
    {
        if (!metadata.TryGetValue(key, out var v) || v.Value is not string[] a) throw WrongType(key, "an array of strings");
        var c = new GgufCursor(file.Pointer, file.Length, Path, valueOffsets[key]);
        c.ReadU32("array element type");
        c.ReadU64("array count");
        var r = new byte[a.Length][];
        for (int i = 0; i < r.Length; i++) r[i] = c.ReadStringBytes(key).ToArray();
        return r;
    }

    public bool TryGetInt32Array(string key, out int[] values)
    {
        values = [];
        if (!metadata.TryGetValue(key, out var v) || !v.TryGetInt64Array(out long[] l)) return false;
        var r = new int[l.Length];
        for (int i = 0; i < l.Length; i++)
        {
            if (l[i] < int.MinValue || l[i] > int.MaxValue) return false;
            r[i] = (int)l[i];
        }
        values = r;
        return true;
    }

    /// <summary>An integer array converted to int (any integer element type whose values fit).</summary>
    public int[] GetInt32Array(string key) => TryGetInt32Array(key, out var a) ? a : throw WrongType(key, "an array of 32-bit integers");

    public bool TryGetFloatArray(string key, out float[] values)
    {
        values = [];
        return metadata.TryGetValue(key, out var v) && v.TryGetFloatArray(out values);
    }

    /// <summary>A numeric array converted to float.</summary>
    public float[] GetFloatArray(string key) => TryGetFloatArray(key, out var a) ? a : throw WrongType(key, "an array of numbers");

    private InvalidFileException WrongType(string key, string expected)
    {
        if (!metadata.TryGetValue(key, out var v))
            return new InvalidFileException($"{Path}: metadata key '{key}' is missing; the file was not exported with it.");
        return new InvalidFileException($"{Path}: metadata key '{key}' is {v}, expected {expected}; the file was exported with a different convention.");
    }

    /// <summary>A short human-readable summary: version, counts, architecture.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append(System.IO.Path.GetFileName(Path)).Append(": GGUF v").Append(Version)
          .Append(", ").Append(MetadataKeys.Count).Append(" metadata keys, ").Append(Tensors.Count).Append(" tensors");
        if (Architecture != null) sb.Append(", ").Append(Architecture);
        return sb.ToString();
    }

    /// <summary>Drops the file's resident pages from this process (see MappedFile.ReleaseResident).</summary>
    void IMappedFileOwner.ReleaseResident() => file.ReleaseResident();

    public void Dispose() => file.Dispose();
}
