// The loader fuzz harness's fast slice (the full 10,000-mutant run is `quill bench fuzz`), and each crash and each
// silently wrong load the hardening issue found, as a file built here that must now be refused with one line.
using System.Buffers.Binary;
using System.Text;
using Quill.Benchmarks.Fuzz;
using Quill.Formats.Gguf;
using Quill.Inference;
using Quill.Models;
using Quill.Tests.Support;
using Quill.Tokenization;
using Quill.Training;

namespace Quill.Tests.Formats;

public sealed class LoaderFuzzTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("quill-fuzz-test-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void Seeded_mutants_of_every_format_load_or_are_refused_with_one_line()
    {
        var targets = FuzzSeeds.Create(Path.Combine(dir, "seeds"), TestData.Root);
        if (TestData.Required) Assert.Equal(14, targets.Count);
        var all = new List<FuzzCase>();
        foreach (var t in targets) all.AddRange(LoaderFuzzer.Run(t, 40, seed: 7, Path.Combine(dir, "cases"), TimeSpan.FromSeconds(20)));
        var failed = all.Where(c => c.Failed).Select(c => $"{c.Target} #{c.Index} ({c.Mutation}): {c.Outcome} {c.Detail}").ToList();
        Assert.True(failed.Count == 0, string.Join("\n", failed));
        // the mutants reach past the first check: some still load, most are refused, on every target
        foreach (var g in all.GroupBy(c => c.Target)) Assert.Contains(g, c => c.Outcome == FuzzOutcome.Refused);
        Assert.True(all.Count(c => c.Outcome == FuzzOutcome.Loaded) > all.Count / 20, "too few mutants load: the mutations break the files too early to test the loaders");
    }

    [Fact]
    public void Mutants_are_reproducible_from_their_seed()
    {
        byte[] file = Encoding.UTF8.GetBytes("{\"vocab_size\": 32000, \"n_layer\": 4, \"name\": \"tiny\"}");
        for (int i = 0; i < 50; i++)
        {
            var a = Mutator.Make(file, 3, i);
            var b = Mutator.Make(file, 3, i);
            Assert.Equal(a.Bytes, b.Bytes);
            Assert.Equal(a.Description, b.Description);
        }
        Assert.NotEqual(Mutator.Make(file, 3, 0).Bytes, Mutator.Make(file, 4, 0).Bytes);
    }

    private static void AssertOneLineRefusal(Action load, string expected)
    {
        var e = Assert.ThrowsAny<QuillException>(load);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [TestDataFact("llama2c/stories260K.bin")]
    public void Llama2c_vocab_size_int_min_is_refused()
    {
        string path = Path.Combine(dir, "m.bin");
        byte[] b = File.ReadAllBytes(TestData.PathOf("llama2c/stories260K.bin"));
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(20), int.MinValue); // dim, hidden, layers, heads, kv heads, vocab
        File.WriteAllBytes(path, b);
        AssertOneLineRefusal(() => ModelLoader.Load(path, TestData.PathOf("llama2c/tok512.bin")).Dispose(), "m.bin");
    }

    private string SaveTiny(string arch, int layers)
    {
        var chars = new CharTokenizer("abcdefgh ".Select(c => (int)c));
        string folder = Path.Combine(dir, $"{arch}-{layers}");
        Checkpoint.SaveModel(folder, LanguageModel.Create(new ModelConfig { Arch = arch, VocabSize = chars.VocabSize, NLayer = layers, NHead = 2, NEmbd = 16, BlockSize = 16 }, 1), chars);
        return folder;
    }

    [Fact]
    public void Safetensors_header_with_invalid_utf8_is_refused()
    {
        string folder = SaveTiny("gpt2", 1);
        string file = Path.Combine(folder, "model.safetensors");
        byte[] b = File.ReadAllBytes(file);
        int at = Encoding.Latin1.GetString(b, 0, 2000).IndexOf("wte", StringComparison.Ordinal);
        Assert.True(at > 8);
        b[at] = 0xFF; // a tensor name that is not UTF-8, the header's length unchanged
        File.WriteAllBytes(file, b);
        AssertOneLineRefusal(() => ModelLoader.Load(folder).Dispose(), "UTF-8");
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    public void A_config_naming_other_layer_counts_than_the_weights_is_refused(string arch)
    {
        string folder = SaveTiny(arch, 4);
        string config = Path.Combine(folder, "config.json");
        string text = File.ReadAllText(config);
        Assert.Contains("\"n_layer\": 4", text, StringComparison.Ordinal);
        File.WriteAllText(config, text.Replace("\"n_layer\": 4", "\"n_layer\": 2", StringComparison.Ordinal));
        AssertOneLineRefusal(() => ModelLoader.Load(folder).Dispose(), "more layers than the 2");
        File.WriteAllText(config, text.Replace("\"n_layer\": 4", "\"n_layer\": 300000000", StringComparison.Ordinal));
        long before = GC.GetAllocatedBytesForCurrentThread();
        AssertOneLineRefusal(() => ModelLoader.Load(folder).Dispose(), "300000000 layers");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 64 << 20, "refusing the config must not allocate per claimed layer");
    }

    [Theory]
    [InlineData(300_000_000)]
    [InlineData(int.MaxValue)]
    public void Tiktoken_rank_far_past_the_listed_count_is_refused_quickly(int rank)
    {
        string path = Path.Combine(dir, "r.tiktoken");
        var lines = Enumerable.Range(0, 300).Select(i => $"{Convert.ToBase64String(i < 256 ? [(byte)i] : Encoding.ASCII.GetBytes($"t{i}"))} {i}").ToList();
        lines[280] = lines[280].Split(' ')[0] + " " + rank;
        File.WriteAllLines(path, lines[..281]);
        long before = GC.GetAllocatedBytesForCurrentThread();
        AssertOneLineRefusal(() => TokenizerLoader.Load(path), $"rank {rank}");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 64 << 20);
    }

    [Fact]
    public void Tokenizer_json_id_far_past_the_listed_count_is_refused()
    {
        var bpe = BpeTrainer.Train([string.Concat(Enumerable.Repeat("the cat sat on the mat. ", 50))], new BpeTrainerOptions { VocabSize = 280 });
        string path = Path.Combine(dir, "tokenizer.json");
        TokenizerExport.Save(bpe, path, TokenizerFormat.HuggingFace);
        var root = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!;
        var vocab = root["model"]!["vocab"]!.AsObject();
        string key = vocab.Last().Key;
        vocab[key] = 300_000_000;
        File.WriteAllText(path, root.ToJsonString());
        AssertOneLineRefusal(() => TokenizerLoader.Load(path), "token id 300000000 is out of range");
    }

    [TestDataFact("sentencepiece/test_model.model")]
    public void SentencePiece_unk_id_outside_the_pieces_is_refused()
    {
        // trainer_spec (field 2) gets a second unk_id (field 40) appended: protobuf's last value wins
        byte[] model = File.ReadAllBytes(TestData.PathOf("sentencepiece/test_model.model"));
        foreach (int unk in new[] { 5000, -1 })
        {
            var spec = new List<byte> { 40 << 3 & 0x7F | 0x80, 40 >> 4 }; // tag: field 40, wire type 0 (varint)
            ulong v = unchecked((ulong)(long)unk);
            do
            {
                byte bt = (byte)(v & 0x7F);
                v >>= 7;
                spec.Add(v != 0 ? (byte)(bt | 0x80) : bt);
            }
            while (v != 0);
            var file = new List<byte>(model) { 2 << 3 | 2, (byte)spec.Count };
            file.AddRange(spec);
            string path = Path.Combine(dir, $"unk{unk}.model");
            File.WriteAllBytes(path, [.. file]);
            AssertOneLineRefusal(() => TokenizerLoader.Load(path), $"unk_id {unk}");
        }
    }

    private const string TinyGguf = "gguf-models/llama-2-tiny-random.gguf";

    /// <summary>The tiny GGUF rewritten with some metadata values replaced.</summary>
    private string GgufWith(string name, params (string Key, GgufValue Value)[] changes)
    {
        using var source = GgufFile.Open(TestData.PathOf(TinyGguf));
        var w = new GgufWriter();
        foreach (string key in source.MetadataKeys) w.Set(key, source.Metadata[key]);
        foreach (var (key, value) in changes) w.Set(key, value);
        foreach (var t in source.Tensors) w.AddTensor(t.Name, t.Type, t.Dimensions, source.GetTensorData(t).ToArray());
        string path = Path.Combine(dir, name + ".gguf");
        w.Write(path);
        return path;
    }

    [TestDataFact(TinyGguf)]
    public void Gguf_rewritten_unchanged_still_loads()
    {
        using var m = ModelLoader.Load(GgufWith("same"));
        Assert.Equal(32000, m.Tokenizer!.VocabSize);
        Assert.NotEqual(0, m.Tokenizer.Encode("Hello world")[0]);
    }

    [TestDataFact(TinyGguf)]
    public void Gguf_token_types_that_cannot_encode_text_are_refused()
    {
        foreach (int type in new[] { 2, 6 })
        {
            string path = GgufWith($"types{type}", ("tokenizer.ggml.token_type", GgufValue.FromArray(Enumerable.Repeat(type, 32000).ToArray())));
            AssertOneLineRefusal(() => ModelLoader.Load(path).Dispose(), "tokenizer.ggml.token_type");
        }
    }

    [TestDataFact(TinyGguf)]
    public void Gguf_special_ids_outside_the_vocabulary_are_refused()
    {
        foreach (string key in new[] { "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id" })
        {
            string path = GgufWith(key, (key, GgufValue.FromUInt32(40000)));
            AssertOneLineRefusal(() => ModelLoader.Load(path).Dispose(), $"{key} is 40000");
        }
    }

    [TestDataFact(TinyGguf)]
    public void Gguf_block_count_as_int64_minus_one_is_refused()
    {
        string path = GgufWith("blocks", ("llama.block_count", GgufValue.FromInt64(-1)));
        AssertOneLineRefusal(() => ModelLoader.Load(path).Dispose(), "has -1 layers");
    }

    [TestDataFact("sentencepiece/test_model.model")]
    public void SentencePiece_charsmap_pointing_past_its_pool_is_a_one_line_error_at_encode()
    {
        var tok = (SentencePieceTokenizer)TokenizerLoader.Load(TestData.PathOf("sentencepiece/test_model.model"));
        byte[] map = tok.Normalizer.Charsmap ?? throw new InvalidOperationException("the test model has a precompiled charsmap");
        Assert.Equal("ABC▁1", tok.Normalizer.Normalize("ＡＢＣ ①", addPrefix: false)); // NFKC through the pool, space escaped
        int trieBytes = BinaryPrimitives.ReadInt32LittleEndian(map);
        var cut = new SentencePieceNormalizer(map[..(4 + trieBytes + 1)], addDummyPrefix: false, removeExtraWhitespaces: false, escapeWhitespaces: false);
        AssertOneLineRefusal(() => cut.Normalize("ＡＢＣ ①", addPrefix: false), "outside its string pool");
    }
}
