// Reading a tokenizer out of GGUF metadata (Inference.GgufVocab, the layer above Formats and Tokenization): a GGUF
// file written here loads through TokenizerLoader.Load (the reader registers itself for the "GGUF" magic) and gives
// the same tokenizer as GgufVocab.Describe(...).Build(); its chat template is found; bad metadata names the key.
using Quill.Formats.Gguf;
using Quill.Inference;
using Quill.Tokenization;

namespace Quill.Tests.Inference;

public sealed class GgufTokenizerMetadataTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("quill-gguf-vocab-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private string Write(string name, Action<GgufWriter> fill)
    {
        var w = new GgufWriter();
        w.SetString("general.architecture", "llama");
        fill(w);
        string path = Path.Combine(dir, name);
        w.Write(path);
        return path;
    }

    private static void WordPiece(GgufWriter w) => w
        .SetString("tokenizer.ggml.model", "bert")
        .SetStringArray("tokenizer.ggml.tokens", ["[UNK]", "[CLS]", "\u2581hello", "\u2581world", "s"])
        .SetInt32Array("tokenizer.ggml.token_type", [2, 3, 1, 1, 1])
        .SetInt32("tokenizer.ggml.bos_token_id", 1)
        .SetString("tokenizer.chat_template", "{% for message in messages %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{% endfor %}");

    [Fact]
    public void Tokenizer_loader_reads_a_gguf_tokenizer_through_the_registered_reader()
    {
        string path = Write("wp.gguf", WordPiece);
        var loaded = TokenizerLoader.Load(path);
        using var gguf = GgufFile.Open(path);
        var description = GgufVocab.Describe(gguf);
        var built = description.Build();
        Assert.Equal(VocabularyKind.WordPiece, description.Kind);
        Assert.Equal("wordpiece", loaded.Family);
        Assert.Equal([2, 3, 4], loaded.Encode("hello worlds"));
        Assert.Equal(loaded.Encode("hello worlds"), built.Encode("hello worlds"));
        Assert.Equal(1, loaded.BosId);
        Assert.Equal("chatml", GgufVocab.ChatTemplateOf(gguf)?.Name);
    }

    [Fact]
    public void Bad_tokenizer_metadata_names_the_key()
    {
        string pre = Write("pre.gguf", w => w.SetString("tokenizer.ggml.model", "gpt2").SetStringArray("tokenizer.ggml.tokens", ["a"]).SetString("tokenizer.ggml.pre", "nonesuch"));
        Assert.Contains("tokenizer.ggml.pre \"nonesuch\" is not a known pre-tokenizer", Assert.Throws<InvalidFileException>(() => TokenizerLoader.Load(pre)).Message, StringComparison.Ordinal);
        string kind = Write("kind.gguf", w => w.SetString("tokenizer.ggml.model", "rwkv").SetStringArray("tokenizer.ggml.tokens", ["a"]));
        Assert.Contains("tokenizer.ggml.model \"rwkv\" is not supported", Assert.Throws<InvalidFileException>(() => TokenizerLoader.Load(kind)).Message, StringComparison.Ordinal);
        string none = Write("none.gguf", _ => { });
        Assert.Contains("GGUF file has no tokenizer", Assert.Throws<InvalidFileException>(() => TokenizerLoader.Load(none)).Message, StringComparison.Ordinal);
    }
}
