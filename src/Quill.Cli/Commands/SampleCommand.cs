// `quill sample`: print a continuation of a prompt from a checkpoint.
using System.CommandLine;
using Quill.Inference;
using Quill.Tokenization;
using Quill.Training;

namespace Quill.Cli.Commands;

internal static class SampleCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "Run folder or its checkpoint/ folder", Required = true };
        var prompt = new Option<string>("--prompt") { Description = "Text to continue", DefaultValueFactory = _ => "" };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Tokens to generate", DefaultValueFactory = _ => 200 };
        var temperature = new Option<float>("--temperature") { Description = "0 = greedy", DefaultValueFactory = _ => 0.8f };
        var topK = new Option<int>("--top-k") { Description = "Sample among the K most likely tokens (0 = all)", DefaultValueFactory = _ => 200 };
        var seed = new Option<ulong>("--seed") { Description = "Random seed", DefaultValueFactory = _ => 1337UL };
        var cmd = new Command("sample", "Continue a prompt with a trained checkpoint.") { checkpoint, prompt, maxTokens, temperature, topK, seed };
        cmd.SetAction(r =>
        {
            string text = Sample(r.GetValue(checkpoint)!, r.GetValue(prompt)!, new SampleOptions(r.GetValue(maxTokens), r.GetValue(temperature), r.GetValue(topK), r.GetValue(seed)));
            Console.WriteLine(text);
        });
        return cmd;
    }

    /// <summary>Loads a checkpoint with its tokenizer and returns the continuation text.</summary>
    public static string Sample(string dir, string prompt, SampleOptions options)
    {
        var model = Checkpoint.LoadModel(dir, out _);
        string ckpt = Checkpoint.Locate(dir)!;
        string tokPath = Path.Combine(ckpt, Checkpoint.TokenizerFile);
        if (!File.Exists(tokPath)) throw new InvalidFileException($"{tokPath} not found: the checkpoint carries no tokenizer.");
        var tokenizer = TokenizerLoader.Load(tokPath);
        var ids = tokenizer.Encode(prompt);
        var output = SimpleSampler.Generate(model, ids, options, tokenizer.EosId, tokenizer.VocabSize);
        return tokenizer.Decode(output.ToArray());
    }
}
