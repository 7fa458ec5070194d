// A checkpoint made of one or more .safetensors files: a HF model.safetensors.index.json ("weight_map" from
// tensor name to shard file, optional "metadata"), a folder holding such an index or a single model.safetensors,
// or one .safetensors file. Opens every shard memory-mapped and routes each tensor name to its shard. Checks that
// every name the index lists is in the shard it names and that no tensor appears in two shards.
using System.Text.Json;

namespace Quill.Formats.SafeTensors;

/// <summary>One or more safetensors files seen as one set of named tensors.</summary>
public sealed class SafeTensorsCollection : IDisposable, IMappedFileOwner
{
    /// <summary>The index file name Hugging Face uses for sharded checkpoints.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    private readonly List<SafeTensorsFile> files;
    private readonly Dictionary<string, SafeTensorsFile> owner;

    /// <summary>The shards, in the order they were opened.</summary>
    public IReadOnlyList<SafeTensorsFile> Files => files;

    /// <summary>The index's "metadata" values as text (or the single file's __metadata__).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>All tensor names (shard order, then header order).</summary>
    public IEnumerable<string> Names => files.SelectMany(f => f.Names);

    private SafeTensorsCollection(List<SafeTensorsFile> files, IReadOnlyDictionary<string, string> metadata)
    {
        this.files = files;
        Metadata = metadata;
        owner = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
        foreach (var f in files)
        {
            foreach (var t in f.Tensors)
            {
                if (!owner.TryAdd(t.Name, f))
                    throw new InvalidFileException($"{f.Path}: tensor '{t.Name}' is also in {owner[t.Name].Path}; the shards overlap.");
            }
        }
    }

    /// <summary>Opens a .safetensors file, an index JSON, or a folder holding an index or model.safetensors.</summary>
    public static SafeTensorsCollection Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path))
        {
            string index = System.IO.Path.Combine(path, IndexFileName);
            string single = System.IO.Path.Combine(path, "model.safetensors");
            if (File.Exists(index)) return OpenIndex(index);
            if (File.Exists(single)) return OpenSingle(single);
            throw new InvalidFileException($"{path}: folder holds neither {IndexFileName} nor model.safetensors; point at the checkpoint folder or file.");
        }
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return OpenIndex(path);
        return OpenSingle(path);
    }

    private static SafeTensorsCollection OpenSingle(string path)
    {
        var f = SafeTensorsFile.Open(path);
        try
        {
            return new SafeTensorsCollection([f], f.Metadata);
        }
        catch
        {
            f.Dispose();
            throw;
        }
    }

    private static SafeTensorsCollection OpenIndex(string indexPath)
    {
        if (!File.Exists(indexPath)) throw new InvalidFileException($"{indexPath}: index file not found; check the path.");
        var weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(indexPath));
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out JsonElement wm) || wm.ValueKind != JsonValueKind.Object)
                throw new InvalidFileException($"{indexPath}: no \"weight_map\" object; not a safetensors index.");
            foreach (JsonProperty p in wm.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.String)
                    throw new InvalidFileException($"{indexPath}: weight_map entry '{p.Name}' is not a file name.");
                weightMap[p.Name] = p.Value.GetString()!;
            }
            if (doc.RootElement.TryGetProperty("metadata", out JsonElement md) && md.ValueKind == JsonValueKind.Object)
            {
                foreach (JsonProperty p in md.EnumerateObject())
                    metadata[p.Name] = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText();
            }
        }
        catch (JsonException e)
        {
            throw new InvalidFileException($"{indexPath}: not valid JSON ({e.Message}); re-download the index.", e);
        }

        string dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(indexPath))!;
        var opened = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
        var files = new List<SafeTensorsFile>();
        try
        {
            foreach (string shard in weightMap.Values.Distinct(StringComparer.Ordinal))
            {
                if (shard.Contains('/', StringComparison.Ordinal) || shard.Contains('\\', StringComparison.Ordinal) || shard == "..")
                    throw new InvalidFileException($"{indexPath}: shard name '{shard}' must be a plain file name in the same folder.");
                var f = SafeTensorsFile.Open(System.IO.Path.Combine(dir, shard));
                opened[shard] = f;
                files.Add(f);
            }
            foreach (var (name, shard) in weightMap)
            {
                if (!opened[shard].Contains(name))
                    throw new InvalidFileException($"{indexPath}: tensor '{name}' is mapped to {shard}, which does not hold it; the index and shards do not match.");
            }
            return new SafeTensorsCollection(files, metadata);
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
    }

    public bool Contains(string name) => owner.ContainsKey(name);

    public bool TryGetInfo(string name, out SafeTensorInfo info)
    {
        info = null!;
        return owner.TryGetValue(name, out var f) && f.TryGetInfo(name, out info);
    }

    public SafeTensorInfo GetInfo(string name) => Owner(name).GetInfo(name);

    /// <summary>The shard holding <paramref name="name"/>.</summary>
    public SafeTensorsFile Owner(string name) =>
        owner.TryGetValue(name, out var f) ? f
        : throw new InvalidFileException($"{files.FirstOrDefault()?.Path ?? "checkpoint"}: tensor '{name}' not found in any of {files.Count} shard(s); is this the right checkpoint?");

    public ReadOnlySpan<byte> GetBytes(string name) => Owner(name).GetBytes(name);

    public void ReadSingle(string name, Span<float> dst) => Owner(name).ReadSingle(name, dst);

    public float[] ReadSingle(string name) => Owner(name).ReadSingle(name);

    /// <summary>Drops the resident pages of every shard from this process (see MappedFile.ReleaseResident).</summary>
    void IMappedFileOwner.ReleaseResident()
    {
        foreach (IMappedFileOwner f in files) f.ReleaseResident();
    }

    public void Dispose()
    {
        foreach (var f in files) f.Dispose();
    }
}
