// Small models for the server tests: a randomly initialized GPT-2 over a character vocabulary of printable ASCII
// (so every reply is readable text and any ASCII prompt encodes), built in memory in milliseconds, and the same
// saved as a Quill checkpoint for the loading path.
using Quill.Inference;
using Quill.Models;
using Quill.Server;
using Quill.Inference.Batching;
using Quill.Tokenization;
using Quill.Training;

namespace Quill.Server.Tests.Support;

internal static class TinyModels
{
    /// <summary>Printable ASCII and newline.</summary>
    public static CharTokenizer Tokenizer() => new(Enumerable.Range(32, 95).Append('\n'));

    public static ModelConfig Config(int vocab, int blockSize = 256) =>
        new() { Arch = "gpt2", VocabSize = vocab, NLayer = 2, NHead = 2, NEmbd = 64, BlockSize = blockSize };

    /// <summary>A language model whose logits are sharp enough that sampling is not uniform noise.</summary>
    public static LanguageModel Model(int vocab, int blockSize = 256, ulong seed = 7)
    {
        var model = LanguageModel.Create(Config(vocab, blockSize), seed);
        // Scale every matrix up so the random network has opinions (std 0.02 gives nearly flat logits).
        foreach (var p in model.Parameters)
        {
            if (p.Rank >= 2)
            {
                var s = p.Span;
                for (int i = 0; i < s.Length; i++) s[i] *= 10f;
            }
        }
        return model;
    }

    /// <summary>The model as the inference engine runs it, with the char tokenizer attached.</summary>
    public static InferenceModel Inference(int blockSize = 256)
    {
        var tok = Tokenizer();
        var model = InferenceModel.FromLanguageModel(Model(tok.VocabSize, blockSize));
        model.Tokenizer = tok;
        return model;
    }

    /// <summary>A served model named name with its own scheduler.</summary>
    public static ServedModel Served(string name = "tiny", int maxBatch = 16, int maxQueue = 64, int blockSize = 256) =>
        ServedModel.FromInferenceModel(name, Inference(blockSize), new SchedulerOptions(maxBatch, maxQueue));

    /// <summary>Writes dir/checkpoint as `quill train` would (random weights, char tokenizer).</summary>
    public static void SaveCheckpoint(string dir, ulong seed = 7)
    {
        var tok = Tokenizer();
        string tokPath = Path.Combine(dir, "tok.json");
        Directory.CreateDirectory(dir);
        tok.Save(tokPath);
        var config = new RunConfig { Model = Config(tok.VocabSize) };
        Checkpoint.Save(dir, config, Model(tok.VocabSize, seed: seed), null, new TrainState(), tokPath);
    }
}
