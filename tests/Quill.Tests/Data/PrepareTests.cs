using Quill.Data;
using Quill.Tensors;

namespace Quill.Tests.Data;

public class PrepareTests
{
    private static string TempDir() => Directory.CreateTempSubdirectory("quill-prep").FullName;

    [Fact]
    public void Char_prepare_splits_by_position_and_round_trips_through_the_dataset()
    {
        string dir = TempDir();
        string input = Path.Combine(dir, "in.txt");
        string text = string.Concat(Enumerable.Range(0, 400).Select(i => $"line {i} of some text\n"));
        File.WriteAllText(input, text);
        var result = DatasetPreparer.Prepare(new PrepareOptions([input], "char", Path.Combine(dir, "out"), 0.25));
        Assert.Equal("uint16", result.Manifest.Dtype);
        Assert.Equal(text.Length, result.TrainTokens + result.ValTokens);
        Assert.InRange(result.ValTokens, text.Length / 4 - 100, text.Length / 4 + 100);
        var tok = Quill.Tokenization.TokenizerLoader.Load(Path.Combine(dir, "out", "tokenizer.json"));
        using var train = new TokenDataset(Path.Combine(dir, "out"), "train");
        int[] x = new int[3 * 16], y = new int[3 * 16];
        train.SampleBatch(new Rng(1), 3, 16, x, y, tok.VocabSize);
        // targets are the inputs shifted by one, and the window decodes to a substring of the training text
        for (int i = 0; i < 3; i++)
        {
            for (int j = 0; j < 15; j++) Assert.Equal(x[i * 16 + j + 1], y[i * 16 + j]);
            Assert.Contains(tok.Decode(x.AsSpan(i * 16, 16)), text);
        }
    }

    [Fact]
    public void Byte_prepare_of_jsonl_splits_by_document_and_adds_nothing_foreign()
    {
        string dir = TempDir();
        string input = Path.Combine(dir, "docs.jsonl");
        File.WriteAllLines(input, Enumerable.Range(0, 200).Select(i => $"{{\"id\": {i}, \"text\": \"document number {i}\"}}"));
        var result = DatasetPreparer.Prepare(new PrepareOptions([input], "byte", Path.Combine(dir, "out"), 0.2));
        long expected = Enumerable.Range(0, 200).Sum(i => (long)$"document number {i}".Length);
        Assert.Equal(expected, result.TrainTokens + result.ValTokens);
        Assert.InRange(result.ValTokens, expected / 10, expected * 3 / 10);
    }

    [Fact]
    public void Truncated_shards_and_foreign_ids_are_reported_with_the_file()
    {
        string dir = TempDir();
        string input = Path.Combine(dir, "in.txt");
        File.WriteAllText(input, string.Concat(Enumerable.Repeat("abcdefgh\n", 200)));
        string outDir = Path.Combine(dir, "out");
        var result = DatasetPreparer.Prepare(new PrepareOptions([input], "char", outDir, 0.1));
        string shard = Path.Combine(outDir, result.Manifest.Train[0].File);
        // an id outside a smaller model's vocabulary
        using (var ds = new TokenDataset(outDir, "train"))
        {
            var e = Assert.Throws<InvalidFileException>(() => ds.SampleBatch(new Rng(1), 2, 8, new int[16], new int[16], 3));
            Assert.Contains(shard, e.Message);
            Assert.Contains("outside the model's vocabulary", e.Message);
        }
        using (var fs = new FileStream(shard, FileMode.Open)) fs.SetLength(fs.Length - 3);
        var e2 = Assert.Throws<InvalidFileException>(() => new TokenDataset(outDir, "train"));
        Assert.Contains("truncated", e2.Message);
        Assert.Throws<InvalidFileException>(() => new TokenDataset(Path.Combine(dir, "nowhere"), "train"));
    }

    [Fact]
    public void Missing_input_and_invalid_utf8_are_one_line_errors()
    {
        string dir = TempDir();
        var e = Assert.Throws<InvalidFileException>(() => DatasetPreparer.Prepare(new PrepareOptions([Path.Combine(dir, "nope.txt")], "char", Path.Combine(dir, "o"))));
        Assert.Contains("nope.txt", e.Message);
        string bad = Path.Combine(dir, "bad.txt");
        File.WriteAllBytes(bad, [0x61, 0x62, 0xff, 0xfe, 0x0a]);
        var e2 = Assert.Throws<InvalidFileException>(() => DatasetPreparer.Prepare(new PrepareOptions([bad], "byte", Path.Combine(dir, "o"))));
        Assert.Contains("UTF-8", e2.Message);
    }

    [Fact]
    public void Jsonl_documents_are_separated_by_the_char_tokenizers_end_of_text_token()
    {
        string dir = TempDir();
        string input = Path.Combine(dir, "docs.jsonl");
        File.WriteAllLines(input, Enumerable.Range(0, 50).Select(i => $"{{\"id\": \"d{i}\", \"text\": \"story {i}.\"}}"));
        string tokPath = Path.Combine(dir, "tokenizer.json");
        Quill.Tokenization.CharTokenizer.Train(["story 0123456789."], Quill.Tokenization.CharTokenizer.DefaultEndOfText).Save(tokPath);
        var result = DatasetPreparer.Prepare(new PrepareOptions([input], tokPath, Path.Combine(dir, "out"), 0));
        var tok = Quill.Tokenization.TokenizerLoader.Load(Path.Combine(dir, "out", "tokenizer.json"));
        Assert.True(tok.EosId >= 0);
        Assert.Equal(tok.VocabSize, result.Manifest.VocabSize);
        long textTokens = Enumerable.Range(0, 50).Sum(i => (long)$"story {i}.".Length);
        Assert.Equal(textTokens + 50, result.TrainTokens);
        using var train = new TokenDataset(Path.Combine(dir, "out"), "train");
        int t = (int)result.TrainTokens - 1;
        int[] x = new int[t], y = new int[t];
        train.SampleBatch(new Rng(1), 1, t, x, y, tok.VocabSize);
        string all = tok.Decode([x[0], .. y]);
        Assert.Equal(50, all.Split("<|endoftext|>").Length - 1);
        Assert.EndsWith(".<|endoftext|>", all, StringComparison.Ordinal);
    }

    [Fact]
    public void Story_corpus_is_deterministic_and_varied()
    {
        string a = StoryCorpus.Generate(20_000, 1), b = StoryCorpus.Generate(20_000, 1), c = StoryCorpus.Generate(20_000, 2);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        var stories = a.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.True(stories.Distinct().Count() > stories.Length * 9 / 10);
    }
}
