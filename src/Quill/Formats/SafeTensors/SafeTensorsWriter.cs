// Writes float32 tensors to a .safetensors file: an 8-byte little-endian header length, a JSON header (the
// optional "__metadata__" string map first, then each tensor's dtype, shape and data_offsets in the order given),
// padded with spaces to a multiple of 8, then the raw little-endian data. Values are stored as F32, or converted
// to F16 / BF16 (round to nearest even) when asked. The file goes to a temporary name, is fsynced and renamed
// over the target, so an IO error (a full disk) leaves any previous file intact and raises QuillException.
// Deferred tensors are produced one at a time as the file is written (an exporter converts each weight as it goes).
// Does not handle: integer dtypes.
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;
using Quill.Quantization;
using Quill.Kernels;

namespace Quill.Formats.SafeTensors;

/// <summary>Writes .safetensors files atomically.</summary>
public static class SafeTensorsWriter
{
    /// <summary>
    /// Writes <paramref name="tensors"/> to <paramref name="path"/> as <paramref name="dtype"/> (F32, F16 or BF16), with
    /// optional string metadata. Throws InvalidConfigException for a bad tensor (shape/data mismatch, duplicate name)
    /// and QuillException naming the file when writing fails.
    /// </summary>
    public static void Write(string path, IEnumerable<SafeTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null, SafeTensorDtype dtype = SafeTensorDtype.F32)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var list = tensors.ToList();
        foreach (var t in list)
        {
            long n = 1;
            foreach (int d in t.Shape ?? []) n *= d;
            if (t.Shape != null && t.Shape.All(d => d >= 0) && n != t.Data.Length)
                throw new InvalidConfigException($"{path}: tensor '{t.Name}' shape [{string.Join(", ", t.Shape)}] holds {n} values but {t.Data.Length} were given.");
        }
        WriteDeferred(path, list.Select(t => new DeferredSafeTensor(t.Name, t.Shape, () => t.Data)), metadata, dtype);
    }

    /// <summary>As Write, with each tensor's values produced while the file is written (checked against its shape then).</summary>
    public static void WriteDeferred(string path, IEnumerable<DeferredSafeTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null, SafeTensorDtype dtype = SafeTensorDtype.F32)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);
        if (dtype is not (SafeTensorDtype.F32 or SafeTensorDtype.F16 or SafeTensorDtype.BF16))
            throw new InvalidConfigException($"{path}: safetensors output dtype must be F32, F16 or BF16 (got {SafeTensorDtypes.HeaderName(dtype)}).");
        List<DeferredSafeTensor> list = tensors.ToList();
        int elementSize = SafeTensorDtypes.Size(dtype);
        byte[] header = BuildHeader(path, list, metadata, dtype, elementSize);

        AtomicFile.Write(path, s =>
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
            s.Write(len);
            s.Write(header);
            const int Chunk = 1 << 16;
            var buffer = new byte[Chunk * elementSize];
            foreach (var t in list)
            {
                ReadOnlySpan<float> data = t.Produce().Span;
                long want = 1;
                foreach (int d in t.Shape) want *= d;
                if (data.Length != want)
                    throw new InvalidConfigException($"{path}: tensor '{t.Name}' shape [{string.Join(", ", t.Shape)}] holds {want} values but {data.Length} were given.");
                for (int i = 0; i < data.Length; i += Chunk)
                {
                    ReadOnlySpan<float> part = data.Slice(i, Math.Min(Chunk, data.Length - i));
                    Span<byte> outBytes = buffer.AsSpan(0, part.Length * elementSize);
                    switch (dtype)
                    {
                        case SafeTensorDtype.F32: MemoryMarshal.AsBytes(part).CopyTo(outBytes); break;
                        case SafeTensorDtype.F16: Fp16.FromSingle(part, outBytes); break;
                        default: Bf16.FromSingle(part, outBytes); break;
                    }
                    s.Write(outBytes);
                }
            }
        });
    }

    private static byte[] BuildHeader(string path, List<DeferredSafeTensor> list, IReadOnlyDictionary<string, string>? metadata, SafeTensorDtype dtype, int elementSize)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var kv in metadata) w.WriteString(kv.Key, kv.Value);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var t in list)
            {
                if (string.IsNullOrEmpty(t.Name) || t.Name == "__metadata__")
                    throw new InvalidConfigException($"{path}: tensor name '{t.Name}' is not allowed in safetensors.");
                if (!names.Add(t.Name)) throw new InvalidConfigException($"{path}: tensor '{t.Name}' given twice.");
                ArgumentNullException.ThrowIfNull(t.Shape);
                long n = 1;
                foreach (int d in t.Shape)
                {
                    if (d < 0) throw new InvalidConfigException($"{path}: tensor '{t.Name}' has a negative dimension {d}.");
                    n *= d;
                }
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", SafeTensorDtypes.HeaderName(dtype));
                w.WriteStartArray("shape");
                foreach (int d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                offset += n * elementSize;
                w.WriteNumberValue(offset);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        int pad = (int)((8 - ms.Length % 8) % 8);
        for (int i = 0; i < pad; i++) ms.WriteByte((byte)' ');
        return ms.ToArray();
    }
}
