// Saving a tokenizer in a chosen format: Quill's JSON (every family), tiktoken ranks and HF tokenizer.json
// (byte-level BPE only). The format is named, or guessed from the file name (*.tiktoken, tokenizer.json / *.hf.json).
namespace Quill.Tokenization;

/// <summary>Output formats for tokenizers.</summary>
public enum TokenizerFormat
{
    /// <summary>Quill's JSON tokenizer file (all families).</summary>
    Quill,

    /// <summary>tiktoken rank file (byte-level BPE whose ids are ranks).</summary>
    Tiktoken,

    /// <summary>Hugging Face tokenizer.json (byte-level BPE).</summary>
    HuggingFace,
}

/// <summary>Writes tokenizers in the supported formats.</summary>
public static class TokenizerExport
{
    /// <summary>The format a file name suggests: *.tiktoken, tokenizer.json or *.hf.json, else Quill.</summary>
    public static TokenizerFormat GuessFormat(string path)
    {
        string name = Path.GetFileName(path ?? "").ToLowerInvariant();
        if (name.EndsWith(".tiktoken", StringComparison.Ordinal)) return TokenizerFormat.Tiktoken;
        if (name == "tokenizer.json" || name.EndsWith(".hf.json", StringComparison.Ordinal)) return TokenizerFormat.HuggingFace;
        return TokenizerFormat.Quill;
    }

    /// <summary>Parses "quill", "tiktoken" or "hf".</summary>
    public static TokenizerFormat ParseFormat(string name) => name?.ToLowerInvariant() switch
    {
        "quill" => TokenizerFormat.Quill,
        "tiktoken" => TokenizerFormat.Tiktoken,
        "hf" or "huggingface" or "tokenizer.json" => TokenizerFormat.HuggingFace,
        _ => throw new InvalidConfigException($"--format \"{name}\" is unknown; use quill, tiktoken or hf."),
    };

    /// <summary>Saves the tokenizer to path in the format.</summary>
    public static void Save(ITokenizer tokenizer, string path, TokenizerFormat format)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        switch (format)
        {
            case TokenizerFormat.Quill:
                tokenizer.Save(path);
                break;
            case TokenizerFormat.Tiktoken:
                TiktokenFile.Save(tokenizer as BpeTokenizer ?? throw NotBpe("tiktoken"), path);
                break;
            case TokenizerFormat.HuggingFace:
                HfTokenizerJson.Save(tokenizer as BpeTokenizer ?? throw NotBpe("tokenizer.json"), path);
                break;
        }
    }

    private static InvalidConfigException NotBpe(string what) =>
        new($"only byte-level BPE tokenizers can be saved as {what}; save as Quill JSON instead.");
}
