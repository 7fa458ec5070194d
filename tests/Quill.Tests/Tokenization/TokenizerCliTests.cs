using System.CommandLine;
using Quill.Cli;
using Quill.Cli.Commands;
using Quill.Tests.Support;

namespace Quill.Tests.Tokenization;

/// <summary>Tests that redirect Console.Out run alone (no other test may print meanwhile).</summary>
[CollectionDefinition("Console", DisableParallelization = true)]
public sealed class ConsoleCollection
{
}

[Collection("Console")]
public sealed class TokenizerCliTests : IDisposable
{
    private readonly string dir = Path.Combine(Path.GetTempPath(), $"quill-tokcli-{Guid.NewGuid():N}");

    public TokenizerCliTests() => Directory.CreateDirectory(dir);

    public void Dispose() => Directory.Delete(dir, true);

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var root = new RootCommand("test");
        root.Add(TokenizerCommand.Create());
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        Console.SetOut(stdout);
        Console.SetError(stderr);
        try
        {
            return (CliRunner.Run(root, args), stdout.ToString(), stderr.ToString());
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
    }

    [TestDataFact("bpe-train-reference/corpus.en")]
    public void Train_Encode_Inspect_AndErrors()
    {
        string corpus = TestData.PathOf("bpe-train-reference/corpus.en");
        string tok = Path.Combine(dir, "tok.json");
        var (code, _, err) = Run("tokenizer", "train", "--input", corpus, "--vocab-size", "300", "--special", "<|endoftext|>", "--out", tok);
        Assert.True(code == 0, err);
        string input = Path.Combine(dir, "in.txt");
        File.WriteAllText(input, "the cat<|endoftext|>");
        var enc = Run("tokenizer", "encode", "--tokenizer", tok, "--file", input);
        Assert.Equal(0, enc.Code);
        int[] ids = enc.Out.Trim().Split(' ').Select(int.Parse).ToArray();
        Assert.DoesNotContain(299, ids);
        var special = Run("tokenizer", "encode", "--tokenizer", tok, "--file", input, "--allow-special");
        Assert.EndsWith(" 299", special.Out.Trim(), StringComparison.Ordinal);
        var inspect = Run("tokenizer", "inspect", tok);
        Assert.Contains("vocab size: 300", inspect.Out, StringComparison.Ordinal);
        Assert.Contains("<|endoftext|>=299", inspect.Out, StringComparison.Ordinal);

        File.WriteAllBytes(input, [0x61, 0xFF, 0x62]);
        var bad = Run("tokenizer", "encode", "--tokenizer", tok, "--file", input);
        Assert.Equal(CliRunner.UserError, bad.Code);
        Assert.Contains("invalid UTF-8 at byte offset 1", bad.Err, StringComparison.Ordinal);
        var small = Run("tokenizer", "train", "--input", corpus, "--vocab-size", "200", "--out", tok);
        Assert.Equal(CliRunner.UserError, small.Code);
        Assert.Single(small.Err.Trim().Split('\n'));
    }

    [TestDataTheory("tiktoken/cl100k_base.tiktoken")]
    [InlineData("tiktoken/cl100k_base.tiktoken")]
    [InlineData("llama2c/tokenizer.model")]
    [InlineData("llamacpp-vocab-tests/ggml-vocab-gpt-2.gguf")]
    [InlineData("llama2c/tokenizer.bin")]
    public void TruncatedFiles_AreOneLineInvalidFileErrors(string file)
    {
        byte[] data = File.ReadAllBytes(TestData.PathOf(file));
        string path = Path.Combine(dir, Path.GetFileName(file));
        File.WriteAllBytes(path, data.AsSpan(0, data.Length / 3 + 7).ToArray());
        var ex = Assert.ThrowsAny<QuillException>(() => Quill.Tokenization.TokenizerLoader.Load(path));
        Assert.DoesNotContain('\n', ex.Message);
    }
}
