// Reads safetensors files written by hand in Python (fixtures/make_safetensors_fixture.py), round-trips tensors
// through SafeTensorsWriter in F32 / F16 / BF16, opens a sharded checkpoint, and checks that malformed headers
// and failed writes raise the right exceptions without harming an existing file.
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Quill.Formats.SafeTensors;

namespace Quill.Tests.Formats.SafeTensors;

public sealed class SafeTensorsTests : IDisposable
{
    private static readonly string FixtureDir = Path.Combine(AppContext.BaseDirectory, "fixtures", "safetensors");
    private readonly string dir = Directory.CreateTempSubdirectory("quill-st-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static Dictionary<string, float[]> Expected()
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(FixtureDir, "expected.json")));
        return doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.EnumerateArray().Select(v => (float)v.GetDouble()).ToArray());
    }

    [Fact]
    public void Reads_python_written_fixture()
    {
        var expected = Expected();
        using var f = SafeTensorsFile.Open(Path.Combine(FixtureDir, "sample.safetensors"));
        Assert.Equal(["a.f32", "b.f16", "c.bf16", "d.i64", "e.f64", "scalar"], f.Names);
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Equal(SafeTensorDtype.F32, f.GetInfo("a.f32").Dtype);
        Assert.Equal([2L, 3L], f.GetInfo("a.f32").Shape);
        Assert.Equal(SafeTensorDtype.BF16, f.GetInfo("c.bf16").Dtype);
        Assert.Empty(f.GetInfo("scalar").Shape);
        Assert.Equal(1, f.GetInfo("scalar").ElementCount);
        foreach (string name in new[] { "a.f32", "b.f16", "c.bf16", "e.f64", "scalar" })
            Assert.Equal(expected[name], f.ReadSingle(name));
        var ints = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(f.GetBytes("d.i64").ToArray());
        Assert.Equal([7L, -8L, 9L], ints.ToArray());
        Assert.Throws<InvalidFileException>(() => f.ReadSingle("d.i64"));
        Assert.Throws<InvalidConfigException>(() => f.ReadSingle("a.f32", new float[5]));
        var e = Assert.Throws<InvalidFileException>(() => f.GetInfo("nope"));
        Assert.Contains("nope", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Opens_sharded_checkpoint_by_folder_and_by_index()
    {
        var expected = Expected();
        string folder = Path.Combine(FixtureDir, "sharded");
        foreach (string p in new[] { folder, Path.Combine(folder, SafeTensorsCollection.IndexFileName) })
        {
            using var c = SafeTensorsFile.OpenSharded(p);
            Assert.Equal(2, c.Files.Count);
            Assert.Equal("36", c.Metadata["total_size"]);
            Assert.Equal(3, c.Names.Count());
            foreach (string name in new[] { "layer.0.w", "layer.1.w", "norm.w" })
                Assert.Equal(expected[name], c.ReadSingle(name));
            Assert.EndsWith("model-00002-of-00002.safetensors", c.Owner("layer.1.w").Path, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Index_naming_a_missing_tensor_is_rejected()
    {
        string folder = Path.Combine(dir, "shards");
        Directory.CreateDirectory(folder);
        foreach (string f in Directory.GetFiles(Path.Combine(FixtureDir, "sharded")))
            File.Copy(f, Path.Combine(folder, Path.GetFileName(f)));
        string index = Path.Combine(folder, SafeTensorsCollection.IndexFileName);
        File.WriteAllText(index, File.ReadAllText(index).Replace("\"norm.w\": \"model-00001", "\"norm.w\": \"model-00002", StringComparison.Ordinal));
        var e = Assert.Throws<InvalidFileException>(() => SafeTensorsFile.OpenSharded(folder).Dispose());
        Assert.Contains("norm.w", e.Message, StringComparison.Ordinal);
    }

    private static SafeTensor[] SampleTensors()
    {
        var rng = new Random(7);
        var a = new float[3 * 70];
        for (int i = 0; i < a.Length; i++) a[i] = (float)(rng.NextDouble() * 8 - 4);
        var b = new float[] { 0f, -0f, 1e-8f, 65504f, -3.5f };
        return [new("w.a", [3, 70], a), new("w.b", [5], b), new("w.empty", [0, 4], Array.Empty<float>()), new("w.s", [], new[] { 2.5f })];
    }

    [Theory]
    [InlineData(SafeTensorDtype.F32)]
    [InlineData(SafeTensorDtype.F16)]
    [InlineData(SafeTensorDtype.BF16)]
    public void Round_trip(SafeTensorDtype dtype)
    {
        var tensors = SampleTensors();
        string path = Path.Combine(dir, "rt.safetensors");
        var meta = new Dictionary<string, string> { ["step"] = "12", ["note"] = "héllo \"quoted\"" };
        SafeTensorsWriter.Write(path, tensors, meta, dtype);
        byte[] raw = File.ReadAllBytes(path);
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(raw) % 8);
        using var f = SafeTensorsFile.Open(path);
        Assert.Equal(meta, f.Metadata);
        Assert.Equal(tensors.Select(t => t.Name), f.Names);
        foreach (var t in tensors)
        {
            var info = f.GetInfo(t.Name);
            Assert.Equal(dtype, info.Dtype);
            Assert.Equal(t.Shape.Select(d => (long)d), info.Shape);
            float[] back = f.ReadSingle(t.Name);
            var src = t.Data.Span;
            for (int i = 0; i < src.Length; i++)
            {
                float want = dtype switch
                {
                    SafeTensorDtype.F32 => src[i],
                    SafeTensorDtype.F16 => (float)(Half)src[i],
                    _ => BitConverter.Int32BitsToSingle((int)(BitConverter.SingleToUInt32Bits(src[i]) + 0x7FFF + ((BitConverter.SingleToUInt32Bits(src[i]) >> 16) & 1)) & unchecked((int)0xFFFF0000)),
                };
                Assert.Equal(want, back[i]);
            }
        }
        Assert.Empty(Directory.GetFiles(dir, "*.tmp"));
    }

    [Fact]
    public void Writer_rejects_mismatched_shapes_and_duplicates()
    {
        string path = Path.Combine(dir, "bad.safetensors");
        Assert.Throws<InvalidConfigException>(() => SafeTensorsWriter.Write(path, [new("x", [2, 2], new float[3])]));
        Assert.Throws<InvalidConfigException>(() => SafeTensorsWriter.Write(path, [new("x", [1], new float[1]), new("x", [1], new float[1])]));
        Assert.Throws<InvalidConfigException>(() => SafeTensorsWriter.Write(path, [new("x", [1], new float[1])], null, SafeTensorDtype.I32));
        Assert.False(File.Exists(path));
    }

    private static IEnumerable<SafeTensor> FailingSource()
    {
        yield return new SafeTensor("ok", [1], new[] { 1f });
        throw new IOException("No space left on device");
    }

    [Fact]
    public void Failed_write_keeps_the_previous_file()
    {
        string path = Path.Combine(dir, "ckpt.safetensors");
        SafeTensorsWriter.Write(path, SampleTensors());
        byte[] before = File.ReadAllBytes(path);
        // the target is a folder: the final rename fails after all bytes were written
        string folderTarget = Path.Combine(dir, "is-a-folder");
        Directory.CreateDirectory(folderTarget);
        var e = Assert.Throws<QuillException>(() => SafeTensorsWriter.Write(folderTarget, SampleTensors()));
        Assert.Contains(folderTarget, e.Message, StringComparison.Ordinal);
        // the tensors run out of disk while being gathered: nothing is written
        Assert.Throws<IOException>(() => SafeTensorsWriter.Write(path, FailingSource()));
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Empty(Directory.GetFiles(dir, "*.tmp", SearchOption.AllDirectories));
    }

    [Fact]
    public void Io_error_while_writing_bytes_is_a_quill_exception()
    {
        string path = Path.Combine(dir, "a.gguf");
        File.WriteAllText(path, "previous");
        var e = Assert.Throws<QuillException>(() => Quill.AtomicFile.Write(path, s =>
        {
            s.WriteByte(1);
            throw new IOException("No space left on device");
        }));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Equal("previous", File.ReadAllText(path));
        Assert.Empty(Directory.GetFiles(dir, "*.tmp"));
    }

    private string WithHeader(string json, int extraData = 0)
    {
        byte[] h = Encoding.UTF8.GetBytes(json);
        var b = new byte[8 + h.Length + extraData];
        BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)h.Length);
        h.CopyTo(b, 8);
        string path = Path.Combine(dir, "h.safetensors");
        File.WriteAllBytes(path, b);
        return path;
    }

    [Theory]
    [InlineData("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, "JSON")]
    [InlineData("[1,2]", 0, "not a JSON object")]
    [InlineData("{\"x\":{\"dtype\":\"F31\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "dtype")]
    [InlineData("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "past the end")]
    [InlineData("{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "needs 12")]
    [InlineData("{\"x\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,8]}}", 8, "non-negative")]
    [InlineData("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "begin <= end")]
    [InlineData("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "overlap")]
    [InlineData("{\"x\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "dtype")]
    public void Malformed_headers_are_invalid_files(string json, int data, string fragment)
    {
        string path = WithHeader(json, data);
        var e = Assert.Throws<InvalidFileException>(() => SafeTensorsFile.Open(path).Dispose());
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains(fragment, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Header_length_past_end_or_tiny_file_is_invalid()
    {
        string path = Path.Combine(dir, "t.safetensors");
        File.WriteAllBytes(path, [1, 2, 3]);
        Assert.Throws<InvalidFileException>(() => SafeTensorsFile.Open(path).Dispose());
        var b = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(b, 1000);
        File.WriteAllBytes(path, b);
        var e = Assert.Throws<InvalidFileException>(() => SafeTensorsFile.Open(path).Dispose());
        Assert.Contains("past the end", e.Message, StringComparison.Ordinal);
    }
}
