// Opens any tokenizer file Quill understands and returns an ITokenizer. The family is detected from the file's
// content (not its name): Quill JSON, HF tokenizer.json, GPT-2 encoder.json (+ vocab.bpe beside it), vocab.bpe
// (+ encoder.json beside it), tiktoken ranks, SentencePiece .model (protobuf), llama2.c tokenizer.bin and llm.c
// gpt2_tokenizer.bin, and tokenizers kept inside other formats through readers registered by the layer that reads
// those formats (a file's first four bytes pick one: Inference.GgufVocab registers "GGUF" for tokenizer.ggml.*
// metadata when the library loads). A folder is searched for the usual file names.
// Unknown or corrupt files raise InvalidFileException with a one-line message.
// Does not handle: container formats itself (Tokenization depends on no file-format layer).
using System.Collections.Concurrent;
using System.Text;
using System.Text.Json.Nodes;

namespace Quill.Tokenization;

/// <summary>Loads tokenizers from files or by name.</summary>
public static class TokenizerLoader
{
    private static readonly ConcurrentDictionary<string, Func<string, ITokenizer>> EmbeddedReaders = new(StringComparer.Ordinal);

    private static readonly string[] FolderCandidates =
    [
        "tokenizer.quill.json", "tokenizer.json", "tokenizer.model", "encoder.json", "tokenizer.bin", "vocab.json",
    ];

    /// <summary>Builds a tokenizer that needs no file: "byte"; throws for other names.</summary>
    public static ITokenizer FromName(string name) => name switch
    {
        "byte" => new ByteTokenizer(),
        _ => throw new InvalidConfigException($"tokenizer \"{name}\" cannot be built without a file (only \"byte\" can); pass a tokenizer file path."),
    };

    /// <summary>True when the folder holds a file Load(folder) would read.</summary>
    public static bool FolderHasTokenizer(string dir) => FolderCandidates.Any(n => File.Exists(Path.Combine(dir, n)));

    /// <summary>
    /// Lets a layer that reads a container format load the tokenizer kept inside it: files whose first four bytes
    /// are magic (four ASCII letters or digits, e.g. "GGUF") go to read, which returns the tokenizer or raises a
    /// QuillException. A later registration for the same magic replaces the earlier one.
    /// </summary>
    public static void RegisterEmbeddedReader(string magic, Func<string, ITokenizer> read)
    {
        ArgumentNullException.ThrowIfNull(magic);
        ArgumentNullException.ThrowIfNull(read);
        if (magic.Length != 4 || !magic.All(char.IsAsciiLetterOrDigit))
            throw new ArgumentException($"magic must be four ASCII letters or digits (got \"{magic}\").", nameof(magic));
        EmbeddedReaders[magic] = read;
    }

    /// <summary>Loads the tokenizer stored at path (a file or a folder holding one), detecting its family.</summary>
    public static ITokenizer Load(string path) => Load(path, null);

    /// <summary>Loads a tokenizer; pattern (a name such as "llama3" or a regex) overrides the pre-tokenizer of
    /// formats that do not store one (tiktoken ranks, encoder.json + vocab.bpe).</summary>
    public static ITokenizer Load(string path, string? pattern)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path))
        {
            foreach (string name in FolderCandidates)
            {
                string candidate = Path.Combine(path, name);
                if (File.Exists(candidate)) return Load(candidate, pattern);
            }
            throw new InvalidFileException($"{path}: folder holds no tokenizer file (looked for {string.Join(", ", FolderCandidates)}).");
        }
        if (!File.Exists(path)) throw new InvalidFileException($"{path}: tokenizer file not found; check the path.");
        byte[] head = ReadHead(path, 64);
        if (head.Length == 0) throw new InvalidFileException($"{path}: tokenizer file is empty.");
        try
        {
            return Detect(path, head, pattern);
        }
        catch (QuillException)
        {
            throw;
        }
        catch (Exception ex) when (ex is FormatException or EndOfStreamException or ArgumentException or OverflowException
                                       or IndexOutOfRangeException or InvalidCastException or KeyNotFoundException
                                       or InvalidOperationException or System.Text.Json.JsonException)
        {
            throw new InvalidFileException($"{path}: corrupt tokenizer file ({ex.GetType().Name}: {ex.Message.Split('\n')[0]}).", ex);
        }
    }

    /// <summary>Picks the reader from the file's first bytes (and first line for text formats).</summary>
    private static ITokenizer Detect(string path, byte[] head, string? pattern)
    {
        if (head.Length >= 4 && EmbeddedReaders.TryGetValue(Encoding.Latin1.GetString(head, 0, 4), out var embedded))
            return embedded(path);
        int first = 0;
        if (head.Length >= 3 && head[0] == 0xEF && head[1] == 0xBB && head[2] == 0xBF) first = 3;
        while (first < head.Length && head[first] is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n') first++;
        if (first < head.Length && head[first] == '{') return LoadJson(path, pattern);
        if (head.Length >= 8 && BitConverter.ToInt32(head, 0) == 20240328) return LlmcTokenizerFile.Load(path);
        if (LooksLikeText(head))
        {
            string firstLine = FirstLine(path);
            if (firstLine.StartsWith("#version", StringComparison.Ordinal) || IsMergeLine(firstLine))
            {
                string encoder = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "encoder.json");
                if (!File.Exists(encoder)) encoder = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "vocab.json");
                if (!File.Exists(encoder))
                    throw new InvalidFileException($"{path}: looks like a GPT-2 merges file but no encoder.json or vocab.json lies beside it.");
                return Gpt2Files.Load(encoder, path, pattern);
            }
            if (TiktokenFile.LooksLikeTiktoken(firstLine)) return TiktokenFile.Load(path, pattern);
        }
        if (head[0] == 0x0A) return SentencePieceModelFile.Load(path);
        if (Llama2cTokenizerFile.LooksLike(head)) return Llama2cTokenizerFile.Load(path);
        throw new InvalidFileException($"{path}: unknown tokenizer format (expected Quill JSON, tokenizer.json, encoder.json + vocab.bpe, tiktoken ranks, SentencePiece .model, GGUF or llama2.c tokenizer.bin).");
    }

    private static ITokenizer LoadJson(string path, string? pattern)
    {
        string text = File.ReadAllText(path, Encoding.UTF8);
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(text);
        }
        catch (System.Text.Json.JsonException ex)
        {
            throw new InvalidFileException($"{path}: not valid JSON ({ex.Message.Split('\n')[0]}).", ex);
        }
        if (node is not JsonObject obj) throw new InvalidFileException($"{path}: JSON tokenizer file must hold an object.");
        if (obj["quill_tokenizer"] is not null) return LoadQuill(path, text);
        if (obj["model"] is JsonObject) return HfTokenizerJson.Load(path, obj);
        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        foreach (string merges in new[] { "vocab.bpe", "merges.txt" })
        {
            string m = Path.Combine(dir, merges);
            if (File.Exists(m)) return Gpt2Files.Load(path, m, pattern);
        }
        throw new InvalidFileException($"{path}: JSON file is neither a Quill tokenizer, a HF tokenizer.json, nor an encoder.json with vocab.bpe beside it.");
    }

    private static ITokenizer LoadQuill(string path, string text)
    {
        JsonObject obj = TokenizerFile.Parse(path, text);
        string family = TokenizerFile.GetString(path, obj, "family");
        return family switch
        {
            "char" => CharTokenizer.FromJson(path, obj),
            "byte" => new ByteTokenizer(),
            "bpe" => BpeTokenizer.FromJson(path, obj),
            "sentencepiece" => SentencePieceTokenizer.FromJson(path, obj),
            "wordpiece" => WordPieceTokenizer.FromJson(path, obj),
            _ => throw new InvalidFileException($"{path}: unknown tokenizer family \"{family}\" (expected char, byte, bpe, sentencepiece or wordpiece)."),
        };
    }

    internal static byte[] ReadHead(string path, int n)
    {
        using var fs = File.OpenRead(path);
        var buf = new byte[Math.Min(n, (int)Math.Min(int.MaxValue, fs.Length))];
        fs.ReadExactly(buf);
        return buf;
    }

    private static bool LooksLikeText(byte[] head)
    {
        foreach (byte b in head)
        {
            if (b < 0x09 || (b > 0x0D && b < 0x20)) return false;
        }
        return true;
    }

    private static string FirstLine(string path)
    {
        using var reader = new StreamReader(path, Encoding.UTF8);
        return reader.ReadLine() ?? "";
    }

    private static bool IsMergeLine(string line)
    {
        string[] parts = line.Split(' ');
        return parts.Length == 2 && parts[0].Length > 0 && parts[1].Length > 0 && !int.TryParse(parts[1], out _);
    }
}
