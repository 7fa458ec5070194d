// The tokenizer stored in a GGUF file's metadata, read as llama.cpp reads it: tokenizer.ggml.model (gpt2, llama,
// bert), tokens, token_type, scores, merges, pre, bos/eos/unknown ids and add_space_prefix become a
// Tokenization.VocabularyDescription, which builds the tokenizer; tokenizer.chat_template and general.architecture
// give the chat template. It lives here, above both Formats and Tokenization, because Tokenization reads no
// container format: when the library loads, this class registers itself with TokenizerLoader for files that begin
// with "GGUF", so TokenizerLoader.Load("model.gguf") works for every caller (CLI, data preparation, tests).
// Does not handle: tokenizer.huggingface.json (an HF tokenizer kept as JSON), other tokenizer.ggml.model kinds.
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using Quill.Formats.Gguf;
using Quill.Tokenization;
using Quill.Tokenization.ChatTemplates;

namespace Quill.Inference;

/// <summary>Reads tokenizers and chat templates out of GGUF metadata.</summary>
public static class GgufVocab
{
    /// <summary>Opens a GGUF file and builds its tokenizer.</summary>
    public static ITokenizer Load(string path)
    {
        using var gguf = GgufFile.Open(path);
        return FromGguf(gguf);
    }

    /// <summary>Builds the tokenizer of an open GGUF file.</summary>
    public static ITokenizer FromGguf(GgufFile gguf) => Describe(gguf).Build();

    /// <summary>The tokenizer.ggml.* metadata of an open GGUF file as a plain description.</summary>
    public static VocabularyDescription Describe(GgufFile gguf)
    {
        ArgumentNullException.ThrowIfNull(gguf);
        string path = gguf.Path;
        if (!gguf.TryGetString("tokenizer.ggml.model", out string model))
            throw new InvalidFileException($"{path}: GGUF file has no tokenizer (tokenizer.ggml.model is missing).");
        if (!gguf.ContainsKey("tokenizer.ggml.tokens"))
            throw new InvalidFileException($"{path}: GGUF file has no tokenizer.ggml.tokens.");
        byte[][] tokens = gguf.GetStringArrayBytes("tokenizer.ggml.tokens");
        int n = tokens.Length;
        var kind = model switch
        {
            "gpt2" => VocabularyKind.Gpt2Bpe,
            "llama" => VocabularyKind.SentencePieceBpe,
            "bert" => VocabularyKind.WordPiece,
            _ => throw new InvalidFileException($"{path}: tokenizer.ggml.model \"{model}\" is not supported (gpt2, llama and bert are)."),
        };
        PieceType[]? types = null;
        if (gguf.TryGetInt32Array("tokenizer.ggml.token_type", out int[] tt) && tt.Length == n)
            types = tt.Select(t => t is >= 1 and <= 6 ? (PieceType)t : PieceType.Normal).ToArray();
        if (types != null)
        {
            // llama.cpp's types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte. A vocabulary with no
            // normal token, or more byte tokens than there are bytes, cannot encode text: everything would become one id.
            if (!types.Contains(PieceType.Normal))
                throw new InvalidFileException($"{path}: tokenizer.ggml.token_type marks none of the {n} tokens as normal (type 1); the vocabulary is corrupt.");
            int bytes = types.Count(t => t == PieceType.Byte);
            if (bytes > 256)
                throw new InvalidFileException($"{path}: tokenizer.ggml.token_type marks {bytes} tokens as bytes (type 6); there are only 256 byte values, so the vocabulary is corrupt.");
        }
        string pre = gguf.TryGetString("tokenizer.ggml.pre", out string p) ? p : "default";
        if (kind == VocabularyKind.Gpt2Bpe && PreTokenizerPatterns.ForName(pre) == null)
            throw new InvalidFileException($"{path}: tokenizer.ggml.pre \"{pre}\" is not a known pre-tokenizer; Quill knows gpt2, llama-bpe, falcon, starcoder, refact, deepseek-coder, deepseek-llm, mpt and default.");
        return new VocabularyDescription
        {
            Source = path,
            Kind = kind,
            Tokens = tokens,
            TokenTypes = types,
            Scores = gguf.TryGetFloatArray("tokenizer.ggml.scores", out float[] s) && s.Length == n ? s : null,
            Merges = kind == VocabularyKind.Gpt2Bpe && gguf.TryGetStringArray("tokenizer.ggml.merges", out string[] merges) ? merges : [],
            PreTokenizer = pre,
            BosId = SpecialId(gguf, "tokenizer.ggml.bos_token_id", n) ?? -1,
            EosId = SpecialId(gguf, "tokenizer.ggml.eos_token_id", n) ?? -1,
            UnknownId = SpecialId(gguf, "tokenizer.ggml.unknown_token_id", n),
            AddSpacePrefix = !gguf.TryGetBool("tokenizer.ggml.add_space_prefix", out bool ap) || ap,
        };
    }

    /// <summary>
    /// Writes a vocabulary as tokenizer.ggml.* keys, as llama.cpp reads them (the reverse of Describe): model,
    /// tokens, token_type, scores (SentencePiece), merges and pre (gpt2), special ids, add_bos_token,
    /// add_space_prefix (SentencePiece).
    /// </summary>
    public static void Write(GgufWriter writer, VocabularyDescription d, bool addBos)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(d);
        string model = d.Kind switch
        {
            VocabularyKind.Gpt2Bpe => "gpt2",
            VocabularyKind.SentencePieceBpe => "llama",
            _ => throw new InvalidConfigException($"{d.Source}: a {d.Kind} vocabulary is not written to GGUF."),
        };
        writer.SetString("tokenizer.ggml.model", model);
        writer.Set("tokenizer.ggml.tokens", GgufValue.FromArray(d.Tokens.Select(t => System.Text.Encoding.UTF8.GetString(t)).ToArray()));
        writer.SetInt32Array("tokenizer.ggml.token_type", (d.TokenTypes ?? []).Select(t => (int)t).ToArray());
        if (d.Kind == VocabularyKind.Gpt2Bpe)
        {
            writer.SetString("tokenizer.ggml.pre", d.PreTokenizer);
            writer.SetStringArray("tokenizer.ggml.merges", [.. d.Merges]);
        }
        else
        {
            writer.SetFloatArray("tokenizer.ggml.scores", d.Scores?.ToArray() ?? new float[d.Tokens.Count]);
            writer.SetBool("tokenizer.ggml.add_space_prefix", d.AddSpacePrefix);
        }
        if (d.BosId >= 0) writer.SetUInt32("tokenizer.ggml.bos_token_id", (uint)d.BosId);
        if (d.EosId >= 0) writer.SetUInt32("tokenizer.ggml.eos_token_id", (uint)d.EosId);
        if (d.UnknownId is int u && u >= 0) writer.SetUInt32("tokenizer.ggml.unknown_token_id", (uint)u);
        writer.SetBool("tokenizer.ggml.add_bos_token", addBos && d.BosId >= 0);
        writer.SetBool("tokenizer.ggml.add_eos_token", false);
    }

    /// <summary>True when a GGUF file says it carries no vocabulary (tokenizer.ggml.model none / no_vocab, as llama.cpp reads it).</summary>
    public static bool HasNoVocabulary(GgufFile gguf) =>
        gguf?.TryGetString("tokenizer.ggml.model", out string m) == true && m is "none" or "no_vocab";

    /// <summary>A special token id from the metadata, null when absent; an id outside the vocabulary is an error.</summary>
    private static int? SpecialId(GgufFile gguf, string key, int vocab)
    {
        if (!gguf.TryGetInt32(key, out int id)) return null;
        if (id < 0 || id >= vocab)
            throw new InvalidFileException($"{gguf.Path}: {key} is {id}, outside the {vocab} tokens of tokenizer.ggml.tokens; the file is corrupt.");
        return id;
    }

    /// <summary>The template a GGUF file's metadata implies (tokenizer.chat_template, general.architecture), or null.</summary>
    public static ChatTemplate? ChatTemplateOf(GgufFile gguf)
    {
        ArgumentNullException.ThrowIfNull(gguf);
        return ChatTemplate.FromMetadata(gguf.TryGetString("tokenizer.chat_template", out string t) ? t : null, gguf.Architecture);
    }

    /// <summary>Lets TokenizerLoader open GGUF files (Tokenization may not see Formats; see the header).</summary>
    [ModuleInitializer]
    [SuppressMessage("Usage", "CA2255:The 'ModuleInitializer' attribute should not be used in libraries",
        Justification = "The layers share one assembly: the upper layer registers its GGUF reader when it loads so that TokenizerLoader.Load keeps reading GGUF for every caller.")]
    internal static void RegisterWithTokenizerLoader() => TokenizerLoader.RegisterEmbeddedReader("GGUF", Load);
}
