using System.Text.Json.Nodes;
using Quill.Tests.Support;
using Quill.Tokenization;

namespace Quill.Tests.Tokenization;

public class BpeReferenceTests
{
    [TestDataFact("tiktoken/tiktoken_test_cases.json", "tiktoken/cl100k_base.tiktoken", "tiktoken/r50k_base.tiktoken")]
    public void Tiktoken_Cases_Match()
    {
        var root = JsonNode.Parse(File.ReadAllText(TestData.PathOf("tiktoken/tiktoken_test_cases.json")))!;
        int n = 0;
        foreach (var c in root["cases"]!.AsArray())
        {
            string enc = c!["encoding"]!.GetValue<string>();
            var tok = TokenizerFixtures.Get(enc switch { "gpt2" => "r50k", "cl100k_base" => "cl100k", "o200k_base" => "o200k", "p50k_base" => "p50k", "r50k_base" => "r50k", _ => enc });
            int[] expected = c["ids"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray();
            if (c["bytes_hex"] is JsonNode hex)
            {
                byte[] raw = Convert.FromHexString(hex.GetValue<string>());
                Assert.Equal(expected, ((BpeTokenizer)tok).EncodeBytes(raw));
                Assert.Equal(raw, tok.DecodeBytes(expected));
                continue;
            }
            string text = c["text"]!.GetValue<string>();
            bool all = c["allowed_special"]?.GetValue<string>() == "all";
            Assert.Equal(expected, tok.Encode(text, all ? SpecialTokenSet.All : null));
            Assert.Equal(text, tok.Decode(expected));
            n++;
        }
        Assert.True(n >= 30);
    }

    [TestDataFact("tokenizer-fixtures/gpt2_reference_ids.json", "gpt2-tokenizer/encoder.json")]
    public void Gpt2_Cs336Fixtures_Match_ForEncoderJson_AndRanks_AndLlmc()
    {
        var root = JsonNode.Parse(File.ReadAllText(TestData.PathOf("tokenizer-fixtures/gpt2_reference_ids.json")))!;
        foreach (string name in new[] { "gpt2", "r50k", "llmc" })
        {
            var tok = TokenizerFixtures.Get(name);
            foreach (var c in root["cases"]!.AsArray())
            {
                string text = c!["text"] is JsonNode t ? t.GetValue<string>() : ReadFixture(c["file"]!.GetValue<string>());
                int[] special = c["special_all"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray();
                Assert.Equal(special, tok.Encode(text, SpecialTokenSet.All));
                if (c["ordinary"] is JsonArray ord)
                    Assert.Equal(ord.Select(x => x!.GetValue<int>()).ToArray(), tok.Encode(text));
                Assert.Equal(text, tok.Decode(special));
            }
        }
    }

    [TestDataFact("tokenizer-fixtures/minbpe_cl100k_reference_ids.json", "tiktoken/cl100k_base.tiktoken")]
    public void Cl100k_MinbpeFixtures_Match()
    {
        var root = JsonNode.Parse(File.ReadAllText(TestData.PathOf("tokenizer-fixtures/minbpe_cl100k_reference_ids.json")))!;
        var tok = TokenizerFixtures.Get("cl100k");
        foreach (var c in root["cl100k_cases"]!.AsArray())
        {
            string text = c!["text"] is JsonNode t ? t.GetValue<string>() : ReadFixture(c["file"]!.GetValue<string>());
            bool all = c["allowed_special"]?.GetValue<string>() == "all";
            int[] expected = c["ids"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray();
            Assert.Equal(expected, tok.Encode(text, all ? SpecialTokenSet.All : null));
        }
    }

    [TestDataFact("llama3-tokenizer/llama3_test_cases.json", "llama3-tokenizer/encoder.json")]
    public void Llama3_OllamaCases_Match()
    {
        var root = JsonNode.Parse(File.ReadAllText(TestData.PathOf("llama3-tokenizer/llama3_test_cases.json")))!;
        var tok = TokenizerFixtures.Get("llama3");
        foreach (var c in root["encode_cases"]!.AsArray())
        {
            string text = c!["text"]!.GetValue<string>();
            int[] expected = c["ids"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray();
            Assert.Equal(expected, tok.Encode(text, SpecialTokenSet.All));
        }
        foreach (var t in root["roundtrip_texts"]!.AsArray())
        {
            string text = t!.GetValue<string>();
            Assert.Equal(text, tok.Decode(tok.Encode(text)));
        }
        var pre = ((BpeTokenizer)tok).PreTokenizer;
        foreach (var c in root["pretokenizer_split_cases"]!.AsArray())
        {
            var pieces = c!["pieces"]!.AsArray().Select(x => x!.GetValue<string>()).ToList();
            Assert.Equal(pieces, pre.SplitToStrings(c["text"]!.GetValue<string>()));
        }
    }

    [TestDataFact("llamacpp-vocab-tests/ggml-vocab-gpt-2.gguf.inp", "gpt2-tokenizer/encoder.json")]
    public void LlamaCpp_Gpt2Cases_Match_WithEncoderJson()
    {
        Assert.Empty(TokenizerFixtures.Mismatches(TokenizerFixtures.Get("gpt2"), TokenizerFixtures.LlamaCppCases("gpt-2")));
    }

    [TestDataFact("llamacpp-vocab-tests/ggml-vocab-llama-bpe.gguf.inp", "llama3-tokenizer/encoder.json")]
    public void LlamaCpp_LlamaBpeCases_Match_WithLlama3Tokenizer()
    {
        Assert.Empty(TokenizerFixtures.Mismatches(TokenizerFixtures.Get("llama3"), TokenizerFixtures.LlamaCppCases("llama-bpe")));
    }

    [TestDataFact("tiktoken/o200k_base.tiktoken")]
    public void O200k_RoundTrips_AndSplitsCamelCase()
    {
        var tok = TokenizerFixtures.Get("o200k");
        string text = "HelloWorld isn't JSONParser\r\n\r\n  🚀 x/y/z 12345";
        Assert.Equal(text, tok.Decode(tok.Encode(text)));
        var pre = ((BpeTokenizer)tok).PreTokenizer;
        Assert.Equal(["Hello", "World"], pre.SplitToStrings("HelloWorld"));
    }

    private static string ReadFixture(string file)
    {
        string p = TestData.PathOf("tokenizer-fixtures/" + file);
        if (!File.Exists(p)) p = TestData.PathOf("bpe-train-reference/" + file);
        return File.ReadAllText(p);
    }
}

public class BpeParallelTests
{
    [TestDataFact("tiktoken/cl100k_base.tiktoken", "corpora/tinyshakespeare.txt")]
    public void EncodeParallel_EqualsEncode()
    {
        var tok = (BpeTokenizer)TokenizerFixtures.Get("cl100k");
        string text = File.ReadAllText(TestData.PathOf("corpora/tinyshakespeare.txt"))[..300_000];
        Assert.Equal(tok.Encode(text), tok.EncodeParallel(text, 3));
    }
}
