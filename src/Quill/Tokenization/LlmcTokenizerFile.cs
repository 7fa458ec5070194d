// llm.c's gpt2_tokenizer.bin: a 256 x int32 header [20240328, version, vocab size, eot id (version 2), ...], then
// per token a uint8 length and the bytes. The table is GPT-2's, whose ids equal tiktoken r50k ranks, so it loads
// as a rank-based BPE with GPT-2's regex; the last token (<|endoftext|>) is the special end-of-text token.
namespace Quill.Tokenization;

/// <summary>Reads llm.c tokenizer files.</summary>
public static class LlmcTokenizerFile
{
    public const int Magic = 20240328;

    public static BpeTokenizer Load(string path)
    {
        byte[] data = File.ReadAllBytes(path);
        if (data.Length < 1024 || BitConverter.ToInt32(data, 0) != Magic)
            throw new InvalidFileException($"{path}: not an llm.c tokenizer file (bad magic or short header).");
        int version = BitConverter.ToInt32(data, 4);
        int vocab = BitConverter.ToInt32(data, 8);
        if (version is not (1 or 2) || vocab < 257)
            throw new InvalidFileException($"{path}: llm.c tokenizer version {version} with {vocab} tokens is not supported (expected version 1 or 2).");
        int eot = version == 2 ? BitConverter.ToInt32(data, 12) : vocab - 1;
        var tokens = new byte[]?[vocab];
        int pos = 1024;
        for (int i = 0; i < vocab; i++)
        {
            if (pos >= data.Length) throw new InvalidFileException($"{path}: truncated at token {i} of {vocab}.");
            int len = data[pos++];
            if (pos + len > data.Length) throw new InvalidFileException($"{path}: truncated at token {i} of {vocab}.");
            tokens[i] = data.AsSpan(pos, len).ToArray();
            pos += len;
        }
        string eotText = System.Text.Encoding.UTF8.GetString(tokens[eot]!);
        var specials = new Dictionary<string, int> { [eotText] = eot };
        var tok = BpeTokenizer.FromRanks(tokens, PreTokenizerPatterns.Create("gpt2"), specials);
        tok.EosId = eot;
        return tok;
    }
}
