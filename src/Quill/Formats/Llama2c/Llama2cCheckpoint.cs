// Reads llama2.c float32 checkpoints memory-mapped and exposes the config and each weight as a zero-copy float
// span. Two layouts: the legacy one (a 7 x int32 header; vocab_size < 0 means a separate classifier; then
// token_embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, the unused freq_cis_real / imag
// tables of seq_len x head_size/2 each, then the classifier when not shared), and export version 1 (a 256-byte
// header: magic "ak42", version 1, the 7 int32, a shared-classifier byte; then rms_att, rms_ffn, rms_final,
// token_embedding, wq, wk, wv, wo, w1, w2, w3, and the classifier when not shared). Weights are row-major
// PyTorch [out, in]. Does not handle: version 2 (int8 quantized) exports, or the tokenizer.bin format.
// Glossary: C = dim, H = hidden_dim, L = layers, V = vocab, KV = kv_heads * head_size.
using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Quill.Formats.Llama2c;

/// <summary>A llama2.c checkpoint mapped into memory. Dispose to unmap; spans are invalid afterwards.</summary>
public sealed class Llama2cCheckpoint : IDisposable, IMappedFileOwner
{
    private const uint Version1Magic = 0x616b3432; // "ak42"
    private const int Version1HeaderBytes = 256;

    private readonly MappedFile file;
    private readonly Dictionary<string, (long Offset, long Count)> weights = new(StringComparer.Ordinal);
    private readonly List<string> names = [];

    /// <summary>Path the file was opened from.</summary>
    public string Path => file.Path;

    /// <summary>0 for the legacy layout, 1 for export version 1.</summary>
    public int Version { get; }

    /// <summary>The hyperparameters from the header.</summary>
    public Llama2cConfig Config { get; }

    /// <summary>Weight names in file order: token_embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, classifier.</summary>
    public IReadOnlyList<string> WeightNames => names;

    private Llama2cCheckpoint(MappedFile file)
    {
        this.file = file;
        long pos;
        int[] h = new int[7];
        bool? shared = null;
        if (file.Length >= 8 && BinaryPrimitives.ReadUInt32LittleEndian(file.Span(0, 4)) == Version1Magic)
        {
            int version = BinaryPrimitives.ReadInt32LittleEndian(file.Span(4, 4));
            if (version != 1)
                throw new InvalidFileException($"{Path}: llama2.c export version {version} is not supported (only legacy and version 1 float32); re-export with --version 1.");
            if (file.Length < Version1HeaderBytes) throw Bad($"file is {file.Length} bytes, shorter than the 256-byte header");
            for (int i = 0; i < 7; i++) h[i] = BinaryPrimitives.ReadInt32LittleEndian(file.Span(8 + 4 * i, 4));
            byte s = file.Span(36, 1)[0];
            if (s > 1) throw Bad($"shared-classifier flag is {s}, neither 0 nor 1");
            shared = s == 1;
            Version = 1;
            pos = Version1HeaderBytes;
        }
        else
        {
            if (file.Length < 28) throw Bad($"file is {file.Length} bytes, shorter than the 28-byte header");
            for (int i = 0; i < 7; i++) h[i] = BinaryPrimitives.ReadInt32LittleEndian(file.Span(4 * i, 4));
            Version = 0;
            pos = 28;
        }
        int dim = h[0], hidden = h[1], layers = h[2], heads = h[3], kvHeads = h[4], vocab = h[5], seqLen = h[6];
        if (Version == 0) shared = vocab > 0;
        // llama2.c stores an unshared classifier as a negative vocab_size; int.MinValue has no positive twin.
        if (vocab == int.MinValue) throw Bad($"vocab_size is {vocab}, not a vocabulary size");
        vocab = Math.Abs(vocab);
        if (dim <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || vocab <= 0 || seqLen <= 0)
            throw Bad($"header (dim={dim}, hidden_dim={hidden}, n_layers={layers}, n_heads={heads}, n_kv_heads={kvHeads}, vocab_size={vocab}, seq_len={seqLen}) has a non-positive value");
        if (dim % heads != 0) throw Bad($"dim {dim} is not a multiple of n_heads {heads}");
        if (heads % kvHeads != 0) throw Bad($"n_heads {heads} is not a multiple of n_kv_heads {kvHeads}");
        Config = new Llama2cConfig(dim, hidden, layers, heads, kvHeads, vocab, seqLen, shared!.Value);

        long c = dim, hd = hidden, l = layers, v = vocab, kv = Config.KvDim;
        void Add(string name, long count)
        {
            weights[name] = (pos, count);
            names.Add(name);
            pos += count * 4;
        }
        if (Version == 0)
        {
            Add("token_embedding", v * c);
            Add("rms_att", l * c);
            Add("wq", l * c * c);
            Add("wk", l * kv * c);
            Add("wv", l * kv * c);
            Add("wo", l * c * c);
            Add("rms_ffn", l * c);
            Add("w1", l * hd * c);
            Add("w2", l * c * hd);
            Add("w3", l * hd * c);
            Add("rms_final", c);
            pos += 2L * seqLen * (Config.HeadSize / 2) * 4; // freq_cis_real, freq_cis_imag: unused
        }
        else
        {
            Add("rms_att", l * c);
            Add("rms_ffn", l * c);
            Add("rms_final", c);
            Add("token_embedding", v * c);
            Add("wq", l * c * c);
            Add("wk", l * kv * c);
            Add("wv", l * kv * c);
            Add("wo", l * c * c);
            Add("w1", l * hd * c);
            Add("w2", l * c * hd);
            Add("w3", l * hd * c);
        }
        if (Config.SharedClassifier)
        {
            weights["classifier"] = weights["token_embedding"];
            names.Add("classifier");
        }
        else
        {
            Add("classifier", v * c);
        }
        if (pos != file.Length)
            throw Bad($"header implies {pos} bytes but the file has {file.Length}; it is truncated or not a float32 llama2.c checkpoint");
    }

    private InvalidFileException Bad(string what) => new($"{file.Path}: {what}; not a valid llama2.c checkpoint, re-export it.");

    /// <summary>Opens and validates a llama2.c checkpoint (legacy or export version 1).</summary>
    public static Llama2cCheckpoint Open(string path)
    {
        var f = MappedFile.Open(path, "llama2.c checkpoint");
        try
        {
            return new Llama2cCheckpoint(f);
        }
        catch
        {
            f.Dispose();
            throw;
        }
    }

    /// <summary>A whole weight array by name (all layers for per-layer weights), zero-copy.</summary>
    public ReadOnlySpan<float> GetWeight(string name)
    {
        if (!weights.TryGetValue(name, out var w))
            throw new ArgumentException($"unknown llama2.c weight '{name}'; known: {string.Join(", ", names)}.", nameof(name));
        return MemoryMarshal.Cast<byte, float>(file.Span(w.Offset, w.Count * 4));
    }

    private ReadOnlySpan<float> Layer(string name, int layer)
    {
        if ((uint)layer >= (uint)Config.Layers) throw new ArgumentOutOfRangeException(nameof(layer), $"layer {layer} not in [0, {Config.Layers}).");
        var all = GetWeight(name);
        int per = all.Length / Config.Layers;
        return all.Slice(layer * per, per);
    }

    /// <summary>[V, C]</summary>
    public ReadOnlySpan<float> TokenEmbedding => GetWeight("token_embedding");

    /// <summary>[C]</summary>
    public ReadOnlySpan<float> RmsAtt(int layer) => Layer("rms_att", layer);

    /// <summary>[C, C]</summary>
    public ReadOnlySpan<float> Wq(int layer) => Layer("wq", layer);

    /// <summary>[KV, C]</summary>
    public ReadOnlySpan<float> Wk(int layer) => Layer("wk", layer);

    /// <summary>[KV, C]</summary>
    public ReadOnlySpan<float> Wv(int layer) => Layer("wv", layer);

    /// <summary>[C, C]</summary>
    public ReadOnlySpan<float> Wo(int layer) => Layer("wo", layer);

    /// <summary>[C]</summary>
    public ReadOnlySpan<float> RmsFfn(int layer) => Layer("rms_ffn", layer);

    /// <summary>[H, C] (gate)</summary>
    public ReadOnlySpan<float> W1(int layer) => Layer("w1", layer);

    /// <summary>[C, H] (down)</summary>
    public ReadOnlySpan<float> W2(int layer) => Layer("w2", layer);

    /// <summary>[H, C] (up)</summary>
    public ReadOnlySpan<float> W3(int layer) => Layer("w3", layer);

    /// <summary>[C]</summary>
    public ReadOnlySpan<float> RmsFinal => GetWeight("rms_final");

    /// <summary>[V, C]; the token embedding itself when <see cref="Llama2cConfig.SharedClassifier"/>.</summary>
    public ReadOnlySpan<float> Classifier => GetWeight("classifier");

    /// <summary>Drops the file's resident pages from this process (see MappedFile.ReleaseResident).</summary>
    void IMappedFileOwner.ReleaseResident() => file.ReleaseResident();

    public void Dispose() => file.Dispose();
}
