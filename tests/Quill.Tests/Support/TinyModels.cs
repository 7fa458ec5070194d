// Small in-memory models for the generation tests: a randomly initialized GPT-2 over a character vocabulary of
// printable ASCII (every reply is readable text and any ASCII prompt encodes), with its weights scaled up so that
// sampling is not uniform noise, and a one-character model that can only ever say one character.
// Does not handle: files on disk (the loading tests use the shared reference data).
using Quill.Inference;
using Quill.Models;
using Quill.Tokenization;

namespace Quill.Tests.Support;

/// <summary>Builds tiny models for generation tests.</summary>
internal static class TinyModels
{
    /// <summary>Printable ASCII and newline.</summary>
    public static CharTokenizer Tokenizer() => new(Enumerable.Range(32, 95).Append('\n'));

    /// <summary>A two-layer GPT-2 over the char tokenizer, as the inference engine runs it.</summary>
    public static InferenceModel Inference(int blockSize = 256, ulong seed = 7)
    {
        var tok = Tokenizer();
        var model = LanguageModel.Create(Config(tok.VocabSize, blockSize), seed);
        // Scale every matrix up so the random network has opinions (std 0.02 gives nearly flat logits).
        foreach (var p in model.Parameters)
        {
            if (p.Rank < 2) continue;
            var s = p.Span;
            for (int i = 0; i < s.Length; i++) s[i] *= 10f;
        }
        var inference = InferenceModel.FromLanguageModel(model);
        inference.Tokenizer = tok;
        return inference;
    }

    /// <summary>A model whose vocabulary is the one character c (a scalar value): every token it makes is c.</summary>
    public static InferenceModel OneCharacter(int c, int blockSize = 64)
    {
        var tok = new CharTokenizer([c]);
        var model = InferenceModel.FromLanguageModel(LanguageModel.Create(Config(1, blockSize), 1));
        model.Tokenizer = tok;
        return model;
    }

    private static ModelConfig Config(int vocab, int blockSize) =>
        new() { Arch = "gpt2", VocabSize = vocab, NLayer = 2, NHead = 2, NEmbd = 64, BlockSize = blockSize };
}
