// Reads a .safetensors file memory-mapped: parses and validates the JSON header (dtype names, shapes, offsets
// inside the data section, sizes equal to prod(shape) x dtype size, no overlaps), exposes the "__metadata__"
// strings, raw zero-copy bytes of each tensor, and ReadSingle, which converts F32 / F16 / BF16 / F64 to float.
// Every malformed header is an InvalidFileException naming the file. Sharded checkpoints (an index JSON beside
// several files) are opened through SafeTensorsCollection. Does not handle: converting integer or FP8 dtypes.
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;
using Quill.Quantization;
using Quill.Kernels;

namespace Quill.Formats.SafeTensors;

/// <summary>A .safetensors file mapped into memory. Dispose it to unmap; spans are invalid afterwards.</summary>
public sealed class SafeTensorsFile : IDisposable, IMappedFileOwner
{
    /// <summary>Largest JSON header accepted (the format's own limit is 100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private readonly MappedFile file;
    private readonly Dictionary<string, SafeTensorInfo> byName;

    /// <summary>Path the file was opened from.</summary>
    public string Path => file.Path;

    /// <summary>The "__metadata__" map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Tensors in header order.</summary>
    public IReadOnlyList<SafeTensorInfo> Tensors { get; }

    /// <summary>Tensor names in header order.</summary>
    public IEnumerable<string> Names => Tensors.Select(t => t.Name);

    private SafeTensorsFile(MappedFile file)
    {
        this.file = file;
        if (file.Length < 8) throw Bad($"file is {file.Length} bytes, shorter than the 8-byte header length");
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(file.Span(0, 8));
        if (n > (ulong)(file.Length - 8)) throw Bad($"header length {n} runs past the end of the file ({file.Length} bytes)");
        if (n > MaxHeaderBytes) throw Bad($"header length {n} exceeds {MaxHeaderBytes} bytes");
        if (n < 2) throw Bad($"header length {n} is too short for a JSON object");
        long dataStart = 8 + (long)n;
        long dataLength = file.Length - dataStart;

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var tensors = new List<SafeTensorInfo>();
        byName = new Dictionary<string, SafeTensorInfo>(StringComparer.Ordinal);
        JsonDocument doc;
        try
        {
            byte[] header = file.Span(8, (long)n).ToArray();
            // JsonDocument accepts invalid UTF-8 inside strings and only fails when a name is read: check it here.
            if (!System.Text.Unicode.Utf8.IsValid(header)) throw Bad("header is not valid UTF-8");
            doc = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw Bad($"header is not valid JSON ({e.Message})");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Bad("header is not a JSON object");
            foreach (JsonProperty p in doc.RootElement.EnumerateObject())
            {
                if (p.Name == "__metadata__")
                {
                    if (p.Value.ValueKind != JsonValueKind.Object) throw Bad("__metadata__ is not an object of strings");
                    foreach (JsonProperty m in p.Value.EnumerateObject())
                        metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
                    continue;
                }
                var info = ParseTensor(p, dataStart, dataLength);
                if (!byName.TryAdd(info.Name, info)) throw Bad($"tensor '{info.Name}' appears twice");
                tensors.Add(info);
            }
        }
        var sorted = tensors.OrderBy(t => t.FileOffset).ToArray();
        for (int i = 1; i < sorted.Length; i++)
        {
            if (sorted[i - 1].FileOffset + sorted[i - 1].ByteSize > sorted[i].FileOffset)
                throw Bad($"tensors '{sorted[i - 1].Name}' and '{sorted[i].Name}' overlap");
        }
        Metadata = metadata;
        Tensors = tensors;
    }

    private SafeTensorInfo ParseTensor(JsonProperty p, long dataStart, long dataLength)
    {
        string name = p.Name;
        JsonElement v = p.Value;
        if (v.ValueKind != JsonValueKind.Object) throw Bad($"entry '{name}' is not an object");
        if (!v.TryGetProperty("dtype", out JsonElement dt) || dt.ValueKind != JsonValueKind.String)
            throw Bad($"tensor '{name}' has no dtype string");
        if (!SafeTensorDtypes.TryParse(dt.GetString()!, out SafeTensorDtype dtype))
            throw Bad($"tensor '{name}' has unknown dtype '{dt.GetString()}'");
        if (!v.TryGetProperty("shape", out JsonElement sh) || sh.ValueKind != JsonValueKind.Array)
            throw Bad($"tensor '{name}' has no shape array");
        var shape = new long[sh.GetArrayLength()];
        long count = 1;
        int k = 0;
        foreach (JsonElement d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long x) || x < 0)
                throw Bad($"tensor '{name}' shape entry {d.GetRawText()} is not a non-negative integer");
            shape[k++] = x;
            if (x != 0 && count > long.MaxValue / x) throw Bad($"tensor '{name}' shape overflows 64 bits");
            count *= x;
        }
        if (!v.TryGetProperty("data_offsets", out JsonElement off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw Bad($"tensor '{name}' has no [begin, end] data_offsets");
        if (!off[0].TryGetInt64(out long begin) || !off[1].TryGetInt64(out long end) || begin < 0 || end < begin)
            throw Bad($"tensor '{name}' data_offsets {off.GetRawText()} are not 0 <= begin <= end");
        if (end > dataLength) throw Bad($"tensor '{name}' ends at data byte {end}, past the end of the data ({dataLength} bytes); the file is truncated");
        int size = SafeTensorDtypes.Size(dtype);
        if (count > long.MaxValue / size || end - begin != count * size)
            throw Bad($"tensor '{name}' has {end - begin} bytes but shape [{string.Join(", ", shape)}] x {SafeTensorDtypes.HeaderName(dtype)} needs {count * size}");
        return new SafeTensorInfo(name, dtype, shape, dataStart + begin, end - begin);
    }

    private InvalidFileException Bad(string what) =>
        new($"{file.Path}: {what}; not a valid safetensors file, re-export or re-download it.");

    /// <summary>Opens and validates a .safetensors file.</summary>
    public static SafeTensorsFile Open(string path)
    {
        var f = MappedFile.Open(path, "safetensors");
        try
        {
            return new SafeTensorsFile(f);
        }
        catch
        {
            f.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens a checkpoint that may be sharded: a model.safetensors.index.json (or a folder holding one, or holding a
    /// single model.safetensors), or a plain .safetensors file.
    /// </summary>
    public static SafeTensorsCollection OpenSharded(string dirOrIndexPath) => SafeTensorsCollection.Open(dirOrIndexPath);

    public bool Contains(string name) => byName.ContainsKey(name);

    public bool TryGetInfo(string name, out SafeTensorInfo info) => byName.TryGetValue(name, out info!);

    /// <summary>The tensor called <paramref name="name"/>; InvalidFileException naming the file when absent.</summary>
    public SafeTensorInfo GetInfo(string name) =>
        byName.TryGetValue(name, out var t) ? t
        : throw new InvalidFileException($"{Path}: tensor '{name}' not found ({Tensors.Count} tensors in the file); is this the right checkpoint?");

    /// <summary>The raw little-endian bytes of a tensor, without copying (valid until Dispose).</summary>
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        var t = GetInfo(name);
        return file.Span(t.FileOffset, t.ByteSize);
    }

    /// <summary>Address of a tensor's first byte in the mapping (valid until Dispose), for tensors of any size.</summary>
    public unsafe nint GetAddress(string name) => (nint)(file.Pointer + GetInfo(name).FileOffset);

    /// <summary>
    /// Copies a tensor into <paramref name="dst"/> as float, converting F32 / F16 / BF16 / F64. <paramref name="dst"/>
    /// must hold exactly the tensor's element count.
    /// </summary>
    public void ReadSingle(string name, Span<float> dst)
    {
        var t = GetInfo(name);
        if (dst.Length != t.ElementCount)
            throw new InvalidConfigException($"{Path}: tensor '{name}' has {t.ElementCount} values (shape [{string.Join(", ", t.Shape)}]) but the destination holds {dst.Length}; the checkpoint does not match the model config.");
        ReadOnlySpan<byte> src = file.Span(t.FileOffset, t.ByteSize);
        switch (t.Dtype)
        {
            case SafeTensorDtype.F32: src.CopyTo(MemoryMarshal.AsBytes(dst)); break;
            case SafeTensorDtype.F16: Fp16.ToSingle(src, dst); break;
            case SafeTensorDtype.BF16: Bf16.ToSingle(src, dst); break;
            case SafeTensorDtype.F64:
                {
                    var d = MemoryMarshal.Cast<byte, double>(src);
                    for (int i = 0; i < d.Length; i++) dst[i] = (float)d[i];
                    break;
                }
            default:
                throw new InvalidFileException($"{Path}: tensor '{name}' is {SafeTensorDtypes.HeaderName(t.Dtype)}, which cannot be read as float (F32, F16, BF16, F64 can).");
        }
    }

    /// <summary>A tensor as a new float array (see <see cref="ReadSingle(string, Span{float})"/>).</summary>
    public float[] ReadSingle(string name)
    {
        var dst = new float[checked((int)GetInfo(name).ElementCount)];
        ReadSingle(name, dst);
        return dst;
    }

    /// <summary>Drops the file's resident pages from this process (see MappedFile.ReleaseResident).</summary>
    void IMappedFileOwner.ReleaseResident() => file.ReleaseResident();

    public void Dispose() => file.Dispose();
}
