// Round-trips every metadata value type and a few tensor types through GgufWriter and GgufFile, and checks that
// corrupt files (bad magic, bad version, truncation, out-of-bounds tensors, absurd counts) raise
// InvalidFileException naming the file.
using System.Buffers.Binary;
using Quill.Formats.Gguf;
using Quill.Quantization;

namespace Quill.Tests.Formats.Gguf;

public sealed class GgufWriterTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("quill-gguf-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private string WriteSample(int alignment = 64)
    {
        var w = new GgufWriter();
        w.SetString("general.architecture", "llama")
         .SetUInt32("general.alignment", (uint)alignment)
         .Set("u8", GgufValue.FromUInt8(200))
         .Set("i8", GgufValue.FromInt8(-5))
         .Set("u16", GgufValue.FromUInt16(60000))
         .Set("i16", GgufValue.FromInt16(-30000))
         .SetUInt32("u32", 4_000_000_000)
         .SetInt32("i32", -123456)
         .SetFloat32("f32", 1e-5f)
         .SetBool("flag", true)
         .SetUInt64("u64", ulong.MaxValue)
         .Set("i64", GgufValue.FromInt64(long.MinValue))
         .Set("f64", GgufValue.FromFloat64(Math.PI))
         .SetStringArray("strings", ["a", "", "héllo ▁world", "<0x0A>"])
         .SetInt32Array("ints", [1, -2, 3])
         .SetFloatArray("floats", [0.5f, -1.25f])
         .Set("bools", GgufValue.FromArray(new[] { true, false, true }))
         .Set("u16s", GgufValue.FromArray(new ushort[] { 1, 65535 }))
         .Set("nested", GgufValue.FromArray(new[] { GgufValue.FromArray(new[] { 1, 2 }), GgufValue.FromArray(new[] { "x" }) }));
        var f32 = new float[3 * 5];
        for (int i = 0; i < f32.Length; i++) f32[i] = i * 0.25f - 1;
        w.AddTensor("a.weight", [5, 3], f32);
        var f16 = new byte[7 * 2];
        for (int i = 0; i < f16.Length; i++) f16[i] = (byte)(i * 13);
        w.AddTensor("b.weight", GgmlType.F16, [7], f16);
        var q8 = new byte[2 * 34];
        for (int i = 0; i < q8.Length; i++) q8[i] = (byte)(i * 7 + 1);
        w.AddTensor("c.weight", GgmlType.Q8_0, [32, 2], q8);
        string path = Path.Combine(dir, "sample.gguf");
        w.Write(path);
        return path;
    }

    [Theory]
    [InlineData(32)]
    [InlineData(64)]
    [InlineData(4096)]
    public void Round_trip_preserves_metadata_and_tensors(int alignment)
    {
        string path = WriteSample(alignment);
        using var g = GgufFile.Open(path);
        Assert.Equal(3, g.Version);
        Assert.Equal(alignment, g.Alignment);
        Assert.Equal(0, g.DataOffset % alignment);
        Assert.Equal("llama", g.Architecture);
        Assert.Equal((byte)200, g.Get("u8").Value);
        Assert.Equal((sbyte)-5, g.Get("i8").Value);
        Assert.Equal(60000, g.GetInt32("u16"));
        Assert.Equal(-30000, g.GetInt32("i16"));
        Assert.Equal(4_000_000_000u, g.GetUInt32("u32"));
        Assert.False(g.TryGetInt32("u32", out _));
        Assert.Equal(-123456, g.GetInt32("i32"));
        Assert.False(g.TryGetUInt32("i32", out _));
        Assert.Equal(1e-5f, g.GetFloat32("f32"));
        Assert.True(g.GetBool("flag"));
        Assert.Equal(ulong.MaxValue, g.GetUInt64("u64"));
        Assert.False(g.TryGetInt64("u64", out _));
        Assert.Equal(long.MinValue, g.GetInt64("i64"));
        Assert.Equal(Math.PI, (double)g.Get("f64").Value);
        Assert.Equal(["a", "", "héllo ▁world", "<0x0A>"], g.GetStringArray("strings"));
        Assert.Equal([1, -2, 3], g.GetInt32Array("ints"));
        Assert.Equal([0.5f, -1.25f], g.GetFloatArray("floats"));
        Assert.Equal([1f, -2f, 3f], g.GetFloatArray("ints"));
        Assert.Equal(new[] { true, false, true }, (bool[])g.Get("bools").Value);
        Assert.Equal([1, 65535], g.GetInt32Array("u16s"));
        var nested = (GgufValue[])g.Get("nested").Value;
        Assert.Equal(GgufValueType.Array, g.Get("nested").ElementType);
        Assert.Equal(new[] { 1, 2 }, (int[])nested[0].Value);
        Assert.Equal(new[] { "x" }, (string[])nested[1].Value);
        Assert.Equal("general.architecture", g.MetadataKeys[0]);
        Assert.Equal("nested", g.MetadataKeys[^1]);

        Assert.Equal(["a.weight", "b.weight", "c.weight"], g.Tensors.Select(t => t.Name));
        var a = g.GetTensor("a.weight");
        Assert.Equal(GgmlType.F32, a.Type);
        Assert.Equal([5L, 3L], a.Dimensions);
        var af = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(g.GetTensorData(a));
        for (int i = 0; i < 15; i++) Assert.Equal(i * 0.25f - 1, af[i]);
        var b = g.GetTensorData("b.weight");
        for (int i = 0; i < 14; i++) Assert.Equal((byte)(i * 13), b[i]);
        var c = g.GetTensor("c.weight");
        Assert.Equal(68, c.ByteSize);
        Assert.Equal([32L, 2L], c.Dimensions);
        for (int i = 0; i < 68; i++) Assert.Equal((byte)(i * 7 + 1), g.GetTensorData(c)[i]);
        foreach (var t in g.Tensors) Assert.Equal(0, t.FileOffset % alignment);
        Assert.Empty(Directory.GetFiles(dir, "*.tmp"));
    }

    [Fact]
    public void Version_2_files_read_like_version_3()
    {
        byte[] b = File.ReadAllBytes(WriteSample(32));
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), 2);
        string path = Path.Combine(dir, "v2.gguf");
        File.WriteAllBytes(path, b);
        using var g = GgufFile.Open(path);
        Assert.Equal(2, g.Version);
        Assert.Equal(3, g.Tensors.Count);
        Assert.Equal(["a", "", "héllo ▁world", "<0x0A>"], g.GetStringArray("strings"));
    }

    [Fact]
    public void Writer_rejects_bad_tensors()
    {
        var w = new GgufWriter();
        Assert.Throws<InvalidConfigException>(() => w.AddTensor("q", GgmlType.Q8_0, [33], new byte[34]));
        Assert.Throws<InvalidConfigException>(() => w.AddTensor("q", GgmlType.Q8_0, [32], new byte[33]));
        w.AddTensor("q", GgmlType.Q8_0, [32], new byte[34]);
        Assert.Throws<InvalidConfigException>(() => w.AddTensor("q", GgmlType.Q8_0, [32], new byte[34]));
        Assert.Throws<InvalidConfigException>(() => w.SetUInt32("general.alignment", 48));
    }

    private string Corrupt(Action<byte[]> edit, int? truncateTo = null)
    {
        byte[] b = File.ReadAllBytes(WriteSample(32));
        edit(b);
        string path = Path.Combine(dir, "bad.gguf");
        File.WriteAllBytes(path, truncateTo is int n ? b[..n] : b);
        return path;
    }

    private static void AssertInvalid(string path, string fragment)
    {
        var e = Assert.Throws<InvalidFileException>(() => GgufFile.Open(path).Dispose());
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains(fragment, e.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void Bad_magic_and_version_are_rejected()
    {
        AssertInvalid(Corrupt(b => b[0] = (byte)'X'), "not a GGUF file");
        AssertInvalid(Corrupt(b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), 1)), "version 1");
        AssertInvalid(Corrupt(b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), 4)), "version 4");
        AssertInvalid(Corrupt(b => BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(4), 3)), "big-endian");
    }

    [Fact]
    public void Absurd_counts_are_rejected()
    {
        AssertInvalid(Corrupt(b => BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(8), 1UL << 60)), "tensor count");
        AssertInvalid(Corrupt(b => BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(16), 1UL << 40)), "metadata count");
        // the first key's length
        AssertInvalid(Corrupt(b => BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(24), ulong.MaxValue - 3)), "length");
    }

    [Fact]
    public void Every_truncation_is_an_invalid_file()
    {
        string sample = WriteSample(32);
        long end;
        using (var g = GgufFile.Open(sample)) end = g.Tensors.Max(t => t.FileOffset + t.ByteSize);
        byte[] full = File.ReadAllBytes(sample);
        for (int n = 1; n < end; n += n < 200 ? 1 : 23)
        {
            string path = Path.Combine(dir, "cut.gguf");
            File.WriteAllBytes(path, full[..n]);
            var e = Assert.Throws<InvalidFileException>(() => GgufFile.Open(path).Dispose());
            Assert.Contains(path, e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Tensor_out_of_bounds_or_misaligned_is_rejected()
    {
        string path = WriteSample(32);
        long offsetPos;
        using (var g = GgufFile.Open(path))
        {
            // the offset field of the last tensor info sits 8 bytes before the padding that starts the data section
            offsetPos = FindLastTensorOffsetField(File.ReadAllBytes(path), g.GetTensor("c.weight").Offset);
        }
        AssertInvalid(Corrupt(b => BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan((int)offsetPos), 1UL << 20)), "beyond the end");
        AssertInvalid(Corrupt(b => BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan((int)offsetPos), 4)), "alignment");
        AssertInvalid(Corrupt(b => BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan((int)offsetPos), 0)), "overlap");
    }

    private static long FindLastTensorOffsetField(byte[] file, long offset)
    {
        byte[] name = System.Text.Encoding.UTF8.GetBytes("c.weight");
        int at = file.AsSpan().IndexOf(name);
        // name, n_dims (4), 2 dims (16), type (4), then the offset
        long pos = at + name.Length + 4 + 16 + 4;
        Assert.Equal((ulong)offset, BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan((int)pos)));
        return pos;
    }

    [Fact]
    public void Missing_and_empty_files_are_invalid()
    {
        string missing = Path.Combine(dir, "missing.gguf");
        AssertInvalid(missing, "not found");
        string empty = Path.Combine(dir, "empty.gguf");
        File.WriteAllBytes(empty, []);
        AssertInvalid(empty, "empty");
    }
}
