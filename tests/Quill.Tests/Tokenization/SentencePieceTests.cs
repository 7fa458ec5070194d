using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Quill.Tests.Support;
using Quill.Tokenization;

namespace Quill.Tests.Tokenization;

public class SentencePieceTests
{
    private static JsonNode Reference() =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "tokenization", "spm_reference.json")))!;

    [TestDataFact("llamacpp-vocab-tests/ggml-vocab-llama-spm.gguf.inp", "llama2c/tokenizer.model")]
    public void LlamaCpp_LlamaSpmCases_Match_WithTokenizerModel()
    {
        Assert.Empty(TokenizerFixtures.Mismatches(TokenizerFixtures.Get("llama2-model"), TokenizerFixtures.LlamaCppCases("llama-spm")));
    }

    [TestDataFact("llamacpp-vocab-tests/ggml-vocab-llama-spm.gguf.inp", "llama2c/tokenizer.bin")]
    public void LlamaCpp_LlamaSpmCases_Match_WithLlama2cBin()
    {
        Assert.Empty(TokenizerFixtures.Mismatches(TokenizerFixtures.Get("llama2-bin"), TokenizerFixtures.LlamaCppCases("llama-spm")));
    }

    [TestDataFact("llama2c/expected_outputs.json", "llama2c/tokenizer.bin")]
    public void Llama2c_TestPrompts_Match()
    {
        var root = JsonNode.Parse(File.ReadAllText(TestData.PathOf("llama2c/expected_outputs.json")))!;
        var tok = TokenizerFixtures.Get("llama2-bin");
        int n = 0;
        foreach (var c in root["llama2_tokenizer_bin_encode"]!["cases"]!.AsArray())
        {
            string text = c!["text"]!.GetValue<string>();
            int[] ids = c["ids"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray();
            var got = new List<int> { tok.BosId };
            got.AddRange(tok.Encode(text));
            Assert.Equal(ids, got.ToArray());
            n++;
        }
        Assert.True(n >= 5, $"found {n} prompt cases");
    }

    [TestDataFact("llama2c/expected_outputs.json", "llama2c/tok512.bin")]
    public void Tok512_DecodesStories260KGeneration()
    {
        var root = JsonNode.Parse(File.ReadAllText(TestData.PathOf("llama2c/expected_outputs.json")))!;
        var tok = TokenizerLoader.Load(TestData.PathOf("llama2c/tok512.bin"));
        var gen = root["stories260K_generation"]![0]!;
        int[] ids = gen["derived_token_ids"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray();
        Assert.Equal(1, ids[0]);
        Assert.Equal(gen["expected"]!.GetValue<string>(), tok.Decode(ids));
        var stream = new StreamingDecoder(tok);
        string streamed = string.Concat(ids.Select(stream.Push)) + stream.Flush();
        Assert.Equal(gen["expected"]!.GetValue<string>(), streamed);
    }

    [TestDataFact("llama2c/tokenizer.model")]
    public void Llama2_PythonSentencePieceCases_Match_AndDecode()
    {
        var tok = TokenizerFixtures.Get("llama2-model");
        foreach (var c in Reference()["llama2"]!.AsArray())
        {
            string text = c!["text"]!.GetValue<string>();
            int[] ids = c["ids"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray();
            Assert.Equal(ids, tok.Encode(text));
            Assert.Equal(text, tok.Decode(ids));
        }
    }

    [TestDataFact("sentencepiece/test_model.model", "sentencepiece/botchan.txt")]
    public void Unigram_Botchan_MatchesPythonSentencePiece()
    {
        var tok = TokenizerFixtures.Get("spm-unigram");
        var reference = Reference()["botchan"]!;
        string[] lines = Encoding.UTF8.GetString(File.ReadAllBytes(TestData.PathOf("sentencepiece/botchan.txt")))
            .Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n'); // as Python's text mode reads it
        Assert.Equal(reference["lines"]!.GetValue<int>(), lines.Length);
        var first = reference["first_lines"]!.AsArray();
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long total = 0;
        for (int i = 0; i < lines.Length; i++)
        {
            int[] ids = tok.Encode(lines[i]);
            total += ids.Length;
            if (i < first.Count) Assert.Equal(first[i]!["ids"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray(), ids);
            sha.AppendData(Encoding.UTF8.GetBytes(string.Join(' ', ids) + "\n"));
        }
        Assert.Equal(reference["total_ids"]!.GetValue<long>(), total);
        Assert.Equal(reference["sha256"]!.GetValue<string>(), Convert.ToHexStringLower(sha.GetHashAndReset()));
    }

    [TestDataFact("sentencepiece/test_model.model", "sentencepiece/spm_test_cases.json")]
    public void Unigram_UpstreamFacts_Hold()
    {
        var tok = (SentencePieceTokenizer)TokenizerFixtures.Get("spm-unigram");
        Assert.Equal(1000, tok.VocabSize);
        Assert.Equal(["▁he", "ll", "o", "▁world"], tok.EncodeAsPieces(" hello  world "));
        Assert.Equal("▁KADOKAWAABC", tok.Normalizer.Normalize("ＫＡＤＯＫＡＷＡABC"));
        Assert.Equal("▁平成", tok.Normalizer.Normalize("㍻"));
        Assert.Equal(0, tok.UnkId);
        Assert.Equal(1, tok.BosId);
        Assert.Equal(2, tok.EosId);
        const string text = "I saw a girl with a telescope.";
        Assert.Equal(text, tok.Decode(tok.Encode(text)));
    }

    [TestDataFact("llama2c/tokenizer.model")]
    public void SaveLoad_QuillJson_RoundTrips()
    {
        var tok = TokenizerFixtures.Get("llama2-model");
        string path = Path.Combine(Path.GetTempPath(), $"quill-spm-{Guid.NewGuid():N}.json");
        try
        {
            tok.Save(path);
            var loaded = TokenizerLoader.Load(path);
            Assert.Equal("sentencepiece", loaded.Family);
            const string text = "Hello 🦙 world\n  with  spaces";
            Assert.Equal(tok.Encode(text), loaded.Encode(text));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
