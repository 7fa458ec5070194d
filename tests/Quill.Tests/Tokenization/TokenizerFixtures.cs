// Loads each reference tokenizer once per test run (they take a few hundred milliseconds each) and reads the
// llama.cpp .inp/.out case files.
using System.Text;
using Quill.Tests.Support;
using Quill.Tokenization;

namespace Quill.Tests.Tokenization;

internal static class TokenizerFixtures
{
    private static readonly Dictionary<string, Lazy<ITokenizer>> Cache = new()
    {
        ["gpt2"] = new(() => TokenizerLoader.Load(TestData.PathOf("gpt2-tokenizer/encoder.json"))),
        ["r50k"] = new(() => TokenizerLoader.Load(TestData.PathOf("tiktoken/r50k_base.tiktoken"))),
        ["p50k"] = new(() => TokenizerLoader.Load(TestData.PathOf("tiktoken/p50k_base.tiktoken"))),
        ["cl100k"] = new(() => TokenizerLoader.Load(TestData.PathOf("tiktoken/cl100k_base.tiktoken"))),
        ["o200k"] = new(() => TokenizerLoader.Load(TestData.PathOf("tiktoken/o200k_base.tiktoken"))),
        ["llama3"] = new(() => LoadLlama3()),
        ["llmc"] = new(() => TokenizerLoader.Load(TestData.PathOf("llmc/gpt2_tokenizer.bin"))),
        ["llama2-model"] = new(() => TokenizerLoader.Load(TestData.PathOf("llama2c/tokenizer.model"))),
        ["llama2-bin"] = new(() => TokenizerLoader.Load(TestData.PathOf("llama2c/tokenizer.bin"))),
        ["spm-unigram"] = new(() => TokenizerLoader.Load(TestData.PathOf("sentencepiece/test_model.model"))),
    };

    private static readonly object Gate = new();

    public static ITokenizer Get(string name)
    {
        lock (Gate) return Cache[name].Value;
    }

    private static ITokenizer LoadLlama3()
    {
        var tok = (BpeTokenizer)TokenizerLoader.Load(TestData.PathOf("llama3-tokenizer/encoder.json"), "llama3");
        tok.AddSpecialToken("<|begin_of_text|>", 128000);
        tok.AddSpecialToken("<|end_of_text|>", 128001);
        return tok;
    }

    /// <summary>The llama.cpp test cases of a vocab name: (input, expected ids).</summary>
    public static List<(string Text, int[] Ids)> LlamaCppCases(string vocab)
    {
        string inp = Encoding.UTF8.GetString(File.ReadAllBytes(TestData.PathOf($"llamacpp-vocab-tests/ggml-vocab-{vocab}.gguf.inp")));
        string[] outLines = Encoding.UTF8.GetString(File.ReadAllBytes(TestData.PathOf($"llamacpp-vocab-tests/ggml-vocab-{vocab}.gguf.out"))).Split('\n');
        string[] texts = inp.Split("\n__ggml_vocab_test__\n");
        var cases = new List<(string, int[])>();
        for (int i = 0; i < texts.Length - 1; i++)
        {
            int[] ids = outLines[i].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray();
            cases.Add((texts[i], ids));
        }
        return cases;
    }

    /// <summary>Runs every case and returns a readable list of mismatches (empty when all pass).</summary>
    public static List<string> Mismatches(ITokenizer tok, IEnumerable<(string Text, int[] Ids)> cases)
    {
        var bad = new List<string>();
        foreach (var (text, ids) in cases)
        {
            int[] got = tok.Encode(text);
            if (!got.AsSpan().SequenceEqual(ids))
                bad.Add($"[{Escape(text)}] expected [{string.Join(' ', ids)}] got [{string.Join(' ', got)}]");
        }
        return bad;
    }

    private static string Escape(string s) => s.Replace("\n", "\\n", StringComparison.Ordinal).Replace("\r", "\\r", StringComparison.Ordinal).Replace("\t", "\\t", StringComparison.Ordinal);
}
