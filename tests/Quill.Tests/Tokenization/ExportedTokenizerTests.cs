// The tokenizer.json of a Hugging Face export, read by Hugging Face's own Rust tokenizers (NuGet Tokenizers.DotNet,
// test-only): the same ids as Quill's tokenizer on the tokenizer test corpus, for a byte-level BPE trained by Quill
// (GPT-2 and Llama 3 splits, with a special token) and for a char tokenizer (written SentencePiece-style).
using Quill.Inference;
using Quill.Models;
using Quill.Tests.Support;
using Quill.Tokenization;

namespace Quill.Tests.Tokenization;

public sealed class ExportedTokenizerTests
{
    private static readonly string[] Corpus =
        ["tokenizer-fixtures/tinystories_sample.txt", "tokenizer-fixtures/taylorswift.txt", "tokenizer-fixtures/german.txt", "tokenizer-fixtures/address.txt"];

    private static IEnumerable<string> Texts() => Corpus.Select(f => File.ReadAllText(TestData.PathOf(f)));

    /// <summary>Exports a tiny model carrying the tokenizer and opens the exported tokenizer.json with HF tokenizers.</summary>
    private static Tokenizers.DotNet.Tokenizer ExportAndOpen(ITokenizer tok, string dir, int spareIds = 3)
    {
        var cfg = new ModelConfig { Arch = "llama", VocabSize = tok.VocabSize + spareIds, NLayer = 1, NHead = 2, NKvHead = 2, NEmbd = 16, BlockSize = 16, MlpHidden = 32 };
        using var model = InferenceModel.FromLanguageModel(LanguageModel.Create(cfg, 1));
        model.Tokenizer = tok;
        HfExport.Write(model, dir, Quill.Formats.SafeTensors.SafeTensorDtype.F32);
        return new Tokenizers.DotNet.Tokenizer(vocabPath: Path.Combine(dir, "tokenizer.json"));
    }

    private static void AssertSameIds(ITokenizer quill, Tokenizers.DotNet.Tokenizer hf, IEnumerable<string> texts)
    {
        int checkedTexts = 0;
        foreach (string text in texts)
        {
            // line by line keeps a failure readable; every line of every file is compared
            foreach (string line in text.Split('\n').Where(l => l.Length > 0))
            {
                int[] want = quill.Encode(line, SpecialTokenSet.All); // HF matches added special tokens in any text
                int[] got = [.. hf.Encode(line).Select(x => (int)x)];
                Assert.True(want.SequenceEqual(got), $"\"{line}\"\nQuill: {string.Join(",", want)}\nHF:    {string.Join(",", got)}");
                checkedTexts++;
            }
        }
        Assert.True(checkedTexts > 50, $"only {checkedTexts} lines compared");
    }

    [TestDataTheory("tokenizer-fixtures/tinystories_sample.txt", "tokenizer-fixtures/taylorswift.txt", "tokenizer-fixtures/german.txt", "tokenizer-fixtures/address.txt")]
    [InlineData("gpt2")]
    [InlineData("llama3")]
    public void Hf_tokenizers_reads_an_exported_byte_level_bpe_with_the_same_ids(string pattern)
    {
        string dir = Directory.CreateTempSubdirectory("quill-export-tok").FullName;
        try
        {
            var tok = BpeTrainer.Train(Texts(), new BpeTrainerOptions { VocabSize = 600, Pattern = pattern, SpecialTokens = ["<|endoftext|>"], Threads = 1 });
            var hf = ExportAndOpen(tok, dir);
            AssertSameIds(tok, hf, Texts());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [TestDataFact("tokenizer-fixtures/tinystories_sample.txt", "tokenizer-fixtures/taylorswift.txt", "tokenizer-fixtures/german.txt", "tokenizer-fixtures/address.txt")]
    public void Hf_tokenizers_reads_an_exported_char_tokenizer_with_the_same_ids()
    {
        string dir = Directory.CreateTempSubdirectory("quill-export-tok").FullName;
        try
        {
            var tok = CharTokenizer.Train(Texts(), CharTokenizer.DefaultEndOfText);
            var hf = ExportAndOpen(tok, dir);
            AssertSameIds(tok, hf, Texts());
            using var back = ModelLoader.Load(dir); // and Quill reads the same file back to the same ids
            AssertSameIds(back.Tokenizer!, hf, Texts());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [TestDataFact("tokenizer-fixtures/tinystories_sample.txt", "tokenizer-fixtures/taylorswift.txt", "tokenizer-fixtures/german.txt", "tokenizer-fixtures/address.txt")]
    public void A_char_tokenizer_filling_the_vocabulary_keeps_every_character_in_tokenizer_json()
    {
        // no spare id for an <unk> piece: GGUF names id 0 (llama.cpp needs an unknown id), but tokenizer.json must
        // not, or the character at id 0 (the newline) reads back as unknown
        string dir = Directory.CreateTempSubdirectory("quill-export-tok").FullName;
        try
        {
            var tok = CharTokenizer.Train(Texts(), CharTokenizer.DefaultEndOfText);
            var hf = ExportAndOpen(tok, dir, spareIds: 0);
            AssertSameIds(tok, hf, Texts());
            using var back = ModelLoader.Load(dir);
            string text = "One day,\nthe end.\n";
            int[] ids = back.Tokenizer!.Encode(text, SpecialTokenSet.All);
            Assert.Equal(tok.Encode(text, SpecialTokenSet.All), ids);
            Assert.Equal(text, back.Tokenizer.Decode(ids));
            Assert.Equal(text, hf.Decode([.. ids.Select(i => (uint)i)]));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
