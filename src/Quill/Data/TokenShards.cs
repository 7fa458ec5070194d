// Token shards: what `quill prepare` writes and the trainer reads. A dataset folder holds manifest.json, the
// tokenizer file, and raw little-endian token files (uint16 when the vocabulary fits in 65536 ids, else uint32),
// one or more per split. The manifest records each file's token count so a truncated file is caught on open.
// Not handled: compression, streaming from remote storage.
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Quill.Data;

/// <summary>The manifest.json of a prepared dataset.</summary>
public sealed class TokenManifest
{
    public const string FileName = "manifest.json";

    [JsonPropertyName("format")] public string Format { get; set; } = "quill-tokens";

    [JsonPropertyName("version")] public int Version { get; set; } = 1;

    /// <summary>"uint16" or "uint32".</summary>
    [JsonPropertyName("dtype")] public string Dtype { get; set; } = "uint16";

    [JsonPropertyName("vocab_size")] public int VocabSize { get; set; }

    /// <summary>Tokenizer file name, relative to the dataset folder.</summary>
    [JsonPropertyName("tokenizer")] public string Tokenizer { get; set; } = "tokenizer.json";

    [JsonPropertyName("tokenizer_family")] public string TokenizerFamily { get; set; } = "";

    [JsonPropertyName("sources")] public List<string> Sources { get; set; } = [];

    [JsonPropertyName("train")] public List<ShardInfo> Train { get; set; } = [];

    [JsonPropertyName("val")] public List<ShardInfo> Val { get; set; } = [];

    [JsonIgnore] public int BytesPerToken => Dtype == "uint16" ? 2 : 4;

    public static TokenManifest Load(string dir)
    {
        string path = Path.Combine(dir, FileName);
        if (!File.Exists(path))
            throw new InvalidFileException($"{path} not found: --data must be a folder written by `quill prepare`.");
        TokenManifest? m;
        try
        {
            m = JsonSerializer.Deserialize<TokenManifest>(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new InvalidFileException($"{path} is not a valid manifest ({e.Message}); re-run `quill prepare`.", e);
        }
        if (m == null || m.Format != "quill-tokens") throw new InvalidFileException($"{path} is not a Quill token manifest; re-run `quill prepare`.");
        if (m.Dtype != "uint16" && m.Dtype != "uint32") throw new InvalidFileException($"{path}: dtype '{m.Dtype}' must be uint16 or uint32.");
        if (m.VocabSize < 1) throw new InvalidFileException($"{path}: vocab_size must be positive.");
        return m;
    }

    public void Save(string dir) => AtomicFile.WriteAllText(Path.Combine(dir, FileName), JsonSerializer.Serialize(this, JsonOptions.Indented));
}

/// <summary>One token file of a split.</summary>
public sealed class ShardInfo
{
    [JsonPropertyName("file")] public string File { get; set; } = "";

    [JsonPropertyName("tokens")] public long Tokens { get; set; }
}

/// <summary>Shared JSON settings.</summary>
public static class JsonOptions
{
    public static JsonSerializerOptions Indented { get; } = new() { WriteIndented = true };
}

/// <summary>Writes a stream of token ids to shard files of bounded size.</summary>
public sealed class TokenShardWriter : IDisposable
{
    private readonly string dir, prefix;
    private readonly bool wide;
    private readonly long maxTokensPerShard;
    private readonly List<ShardInfo> shards;
    private FileStream? current;
    private string? currentTemp;
    private long currentTokens;
    private readonly byte[] buffer = new byte[1 << 16];
    private int buffered;

    public TokenShardWriter(string dir, string prefix, bool wide, List<ShardInfo> shards, long maxTokensPerShard = 256L << 20)
    {
        this.dir = dir;
        this.prefix = prefix;
        this.wide = wide;
        this.shards = shards ?? throw new ArgumentNullException(nameof(shards));
        this.maxTokensPerShard = maxTokensPerShard;
    }

    public long TotalTokens { get; private set; }

    public void Write(ReadOnlySpan<int> ids)
    {
        foreach (int id in ids)
        {
            if (current == null || currentTokens == maxTokensPerShard) StartShard();
            if (buffered + 4 > buffer.Length) Flush();
            if (wide)
            {
                BitConverterLE.WriteUInt32(buffer.AsSpan(buffered), (uint)id);
                buffered += 4;
            }
            else
            {
                BitConverterLE.WriteUInt16(buffer.AsSpan(buffered), (ushort)id);
                buffered += 2;
            }
            currentTokens++;
            TotalTokens++;
        }
    }

    private void StartShard()
    {
        FinishShard();
        string name = $"{prefix}-{shards.Count:D5}.bin";
        currentTemp = Path.Combine(dir, name + ".tmp");
        current = new FileStream(currentTemp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        shards.Add(new ShardInfo { File = name });
        currentTokens = 0;
    }

    private void Flush()
    {
        current!.Write(buffer, 0, buffered);
        buffered = 0;
    }

    private void FinishShard()
    {
        if (current == null) return;
        Flush();
        current.Flush(flushToDisk: true);
        current.Dispose();
        current = null;
        shards[^1].Tokens = currentTokens;
        File.Move(currentTemp!, Path.Combine(dir, shards[^1].File), overwrite: true);
    }

    /// <summary>Finishes the last shard (renaming it into place).</summary>
    public void Complete() => FinishShard();

    public void Dispose()
    {
        if (current != null)
        {
            current.Dispose();
            current = null;
            if (currentTemp != null && File.Exists(currentTemp)) File.Delete(currentTemp);
        }
    }
}

internal static class BitConverterLE
{
    public static void WriteUInt16(Span<byte> dst, ushort v) => System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(dst, v);

    public static void WriteUInt32(Span<byte> dst, uint v) => System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(dst, v);
}
