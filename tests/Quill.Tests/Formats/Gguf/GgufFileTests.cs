// Reads the real GGUF files of the shared reference data (a tiny random Llama and llama.cpp's vocab-only test
// files) and checks header, metadata and tensor infos against the values listed in the data README.
using Quill.Formats.Gguf;
using Quill.Quantization;
using Quill.Tests.Support;

namespace Quill.Tests.Formats.Gguf;

public class GgufFileTests
{
    private const string TinyLlama = "gguf-models/llama-2-tiny-random.gguf";

    [TestDataFact(TinyLlama)]
    public void TinyLlama_header_and_hyperparameters()
    {
        using var g = GgufFile.Open(TestData.PathOf(TinyLlama));
        Assert.Equal(3, g.Version);
        Assert.Equal(GgufFile.DefaultAlignment, g.Alignment);
        Assert.Equal("llama", g.Architecture);
        Assert.Equal(8u, g.GetUInt32("llama.embedding_length"));
        Assert.Equal(1u, g.GetUInt32("llama.block_count"));
        Assert.Equal(32u, g.GetUInt32("llama.feed_forward_length"));
        Assert.Equal(2u, g.GetUInt32("llama.attention.head_count"));
        Assert.Equal(2u, g.GetUInt32("llama.attention.head_count_kv"));
        Assert.Equal(4u, g.GetUInt32("llama.rope.dimension_count"));
        Assert.Equal(4096u, g.GetUInt32("llama.context_length"));
        Assert.Equal(1e-5f, g.GetFloat32("llama.attention.layer_norm_rms_epsilon"), 1e-9f);
        Assert.Equal(1, g.GetInt32("general.file_type"));
        Assert.Equal("llama", g.GetString("tokenizer.ggml.model"));
        Assert.Equal(1u, g.GetUInt32("tokenizer.ggml.bos_token_id"));
        Assert.Equal(2u, g.GetUInt32("tokenizer.ggml.eos_token_id"));
        string[] tokens = g.GetStringArray("tokenizer.ggml.tokens");
        Assert.Equal(32000, tokens.Length);
        Assert.Equal("<s>", tokens[1]);
        Assert.Equal("<0x0A>", tokens[3 + 0x0A]);
        Assert.Equal(32000, g.GetFloatArray("tokenizer.ggml.scores").Length);
        Assert.Equal(32000, g.GetInt32Array("tokenizer.ggml.token_type").Length);
        Assert.Equal(g.MetadataKeys.Count, g.Metadata.Count);
    }

    [TestDataFact(TinyLlama)]
    public void TinyLlama_tensor_infos()
    {
        using var g = GgufFile.Open(TestData.PathOf(TinyLlama));
        Assert.Equal(12, g.Tensors.Count);
        Assert.Equal(9, g.Tensors.Count(t => t.Type == GgmlType.F16));
        Assert.Equal(3, g.Tensors.Count(t => t.Type == GgmlType.F32));
        Assert.Equal([8L, 32000L], g.GetTensor("token_embd.weight").Dimensions);
        Assert.Equal([8L, 32000L], g.GetTensor("output.weight").Dimensions);
        Assert.Equal([8L, 8L], g.GetTensor("blk.0.attn_q.weight").Dimensions);
        Assert.Equal([8L, 32L], g.GetTensor("blk.0.ffn_gate.weight").Dimensions);
        Assert.Equal([32L, 8L], g.GetTensor("blk.0.ffn_down.weight").Dimensions);
        foreach (string n in new[] { "blk.0.attn_norm.weight", "blk.0.ffn_norm.weight", "output_norm.weight" })
            Assert.Equal(GgmlType.F32, g.GetTensor(n).Type);
        foreach (var t in g.Tensors)
        {
            Assert.Equal(0, t.Offset % g.Alignment);
            Assert.Equal(t.ElementCount * (t.Type == GgmlType.F32 ? 4 : 2), t.ByteSize);
            Assert.Equal(t.ByteSize, g.GetTensorData(t).Length);
            Assert.True(t.FileOffset + t.ByteSize <= g.FileSize);
        }
        // the norm weights of a real export are finite and not all zero
        var norm = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(g.GetTensorData("output_norm.weight"));
        Assert.Equal(8, norm.Length);
        foreach (float v in norm) Assert.True(float.IsFinite(v));
        Assert.False(g.TryGetTensor("no.such.tensor", out _));
        var e = Assert.Throws<InvalidFileException>(() => g.GetTensor("no.such.tensor"));
        Assert.Contains("no.such.tensor", e.Message, StringComparison.Ordinal);
    }

    [TestDataFact(TinyLlama)]
    public void String_array_bytes_match_decoded_strings()
    {
        using var g = GgufFile.Open(TestData.PathOf(TinyLlama));
        string[] s = g.GetStringArray("tokenizer.ggml.tokens");
        byte[][] b = g.GetStringArrayBytes("tokenizer.ggml.tokens");
        Assert.Equal(s.Length, b.Length);
        for (int i = 0; i < s.Length; i += 97) Assert.Equal(System.Text.Encoding.UTF8.GetBytes(s[i]), b[i]);
    }

    [TestDataFact(TinyLlama)]
    public void Wrong_type_and_missing_key_name_the_key()
    {
        using var g = GgufFile.Open(TestData.PathOf(TinyLlama));
        var e = Assert.Throws<InvalidFileException>(() => g.GetUInt32("general.architecture"));
        Assert.Contains("general.architecture", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<InvalidFileException>(() => g.GetString("llama.missing_key"));
        Assert.Contains("llama.missing_key", e.Message, StringComparison.Ordinal);
        Assert.False(g.TryGetStringArray("general.architecture", out _));
        Assert.False(g.TryGetFloat32("general.architecture", out _));
    }

    // n_merges 0 means the file has no merges key.
    [TestDataTheory("llamacpp-vocab-tests/ggml-vocab-gpt-2.gguf")]
    [InlineData("ggml-vocab-baichuan.gguf", "baichuan", "llama", null, 64000, 0, 1, 2, null)]
    [InlineData("ggml-vocab-bert-bge.gguf", "bert", "bert", "bert-bge", 30522, 0, -1, -1, null)]
    [InlineData("ggml-vocab-deepseek-coder.gguf", "llama", "gpt2", "deepseek-coder", 32256, 31757, 32013, 32014, true)]
    [InlineData("ggml-vocab-deepseek-llm.gguf", "llama", "gpt2", "deepseek-llm", 102400, 99757, 100000, 100001, true)]
    [InlineData("ggml-vocab-falcon.gguf", "falcon", "gpt2", "falcon", 65024, 64784, 11, 11, null)]
    [InlineData("ggml-vocab-gpt-2.gguf", "gpt2", "gpt2", "gpt-2", 50257, 50000, 50256, 50256, null)]
    [InlineData("ggml-vocab-gpt-neox.gguf", "gptneox", "gpt2", null, 50432, 50009, 0, 0, null)]
    [InlineData("ggml-vocab-llama-spm.gguf", "llama", "llama", "default", 32000, 0, 1, 2, true)]
    [InlineData("ggml-vocab-mpt.gguf", "mpt", "gpt2", "mpt", 50432, 50009, 0, 0, null)]
    [InlineData("ggml-vocab-phi-3.gguf", "phi3", "llama", "default", 32064, 0, 1, 32000, true)]
    [InlineData("ggml-vocab-refact.gguf", "refact", "gpt2", "refact", 49216, 48891, 0, 0, null)]
    [InlineData("ggml-vocab-starcoder.gguf", "starcoder2", "gpt2", "starcoder", 49152, 48872, 0, 0, null)]
    public void Vocab_files_match_the_readme_table(string file, string arch, string model, string? pre, int nTokens, int nMerges, int bos, int eos, bool? addBos)
    {
        string path = TestData.PathOf("llamacpp-vocab-tests/" + file);
        using var g = GgufFile.Open(path);
        Assert.Equal(3, g.Version);
        Assert.Empty(g.Tensors);
        Assert.Equal(arch, g.Architecture);
        Assert.Equal(model, g.GetString("tokenizer.ggml.model"));
        Assert.Equal(pre, g.TryGetString("tokenizer.ggml.pre", out string p) ? p : null);
        Assert.Equal(nTokens, g.GetStringArray("tokenizer.ggml.tokens").Length);
        Assert.Equal(nMerges, g.TryGetStringArray("tokenizer.ggml.merges", out string[] m) ? m.Length : 0);
        Assert.Equal(bos, g.TryGetInt32("tokenizer.ggml.bos_token_id", out int b) ? b : -1);
        Assert.Equal(eos, g.TryGetInt32("tokenizer.ggml.eos_token_id", out int e) ? e : -1);
        Assert.Equal(addBos, g.TryGetBool("tokenizer.ggml.add_bos_token", out bool ab) ? ab : null);
    }
}
