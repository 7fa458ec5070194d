using Quill.Tests.Support;
using Quill.Tokenization;

namespace Quill.Tests.Tokenization;

public class GgufVocabTests
{
    [TestDataTheory("llamacpp-vocab-tests/ggml-vocab-gpt-2.gguf")]
    [InlineData("gpt-2")]
    [InlineData("llama-spm")]
    [InlineData("phi-3")]
    [InlineData("mpt")]
    [InlineData("falcon")]
    [InlineData("starcoder")]
    [InlineData("refact")]
    [InlineData("deepseek-coder")]
    [InlineData("deepseek-llm")]
    [InlineData("bert-bge")]
    public void LlamaCppSuite_EveryCasePasses(string vocab)
    {
        var tok = TokenizerLoader.Load(TestData.PathOf($"llamacpp-vocab-tests/ggml-vocab-{vocab}.gguf"));
        Assert.Empty(TokenizerFixtures.Mismatches(tok, TokenizerFixtures.LlamaCppCases(vocab)));
    }

    [TestDataTheory("llamacpp-vocab-tests/ggml-vocab-gpt-neox.gguf")]
    [InlineData("gpt-neox", "bpe")]
    [InlineData("baichuan", "sentencepiece")]
    public void VocabWithoutCases_LoadsAndRoundTrips(string vocab, string family)
    {
        var tok = TokenizerLoader.Load(TestData.PathOf($"llamacpp-vocab-tests/ggml-vocab-{vocab}.gguf"));
        Assert.Equal(family, tok.Family);
        const string text = "Hello world, 123 ünïcødé 🚀";
        Assert.Equal(text, tok.Decode(tok.Encode(text)));
    }
}
