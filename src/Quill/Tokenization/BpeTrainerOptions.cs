// Settings for BpeTrainer: target vocabulary size (256 bytes + merges + special tokens), pre-tokenization pattern,
// special tokens (removed from the training text and appended to the vocabulary), minimum pair frequency, threads.
namespace Quill.Tokenization;

/// <summary>Options for training a byte-level BPE tokenizer.</summary>
public sealed class BpeTrainerOptions
{
    /// <summary>Total vocabulary size: 256 byte tokens + merges + special tokens.</summary>
    public int VocabSize { get; set; } = 4096;

    /// <summary>Pre-tokenization: "gpt2", "cl100k", "o200k", "llama3" or a regex.</summary>
    public string Pattern { get; set; } = "gpt2";

    /// <summary>Special tokens: split out of the training text (never merged) and given the last ids.</summary>
    public IReadOnlyList<string> SpecialTokens { get; set; } = [];

    /// <summary>A pair seen fewer times than this is never merged (training stops early).</summary>
    public int MinFrequency { get; set; } = 1;

    /// <summary>Threads for counting chunks (default: all processors).</summary>
    public int Threads { get; set; } = Environment.ProcessorCount;

    /// <summary>Characters of text handed to a counting thread at a time.</summary>
    public int BlockChars { get; set; } = 1 << 20;

    internal void Validate()
    {
        if (SpecialTokens.Any(string.IsNullOrEmpty)) throw new InvalidConfigException("--special: special tokens must not be empty.");
        if (SpecialTokens.Distinct(StringComparer.Ordinal).Count() != SpecialTokens.Count) throw new InvalidConfigException("--special: a special token is listed twice.");
        int min = 256 + SpecialTokens.Count;
        if (VocabSize < min)
            throw new InvalidConfigException($"--vocab-size {VocabSize} is too small: it must be at least 256 bytes + {SpecialTokens.Count} special tokens = {min}.");
        if (MinFrequency < 1) throw new InvalidConfigException($"--min-frequency must be at least 1 (got {MinFrequency}).");
        if (Threads < 1) throw new InvalidConfigException($"--threads must be at least 1 (got {Threads}).");
        if (BlockChars < 1024) throw new InvalidConfigException($"block size must be at least 1024 characters (got {BlockChars}).");
    }
}
