// A tokenizer described as plain data for model files that store their vocabulary (GGUF tokenizer.ggml.*, and
// the HF tokenizer.json of a character vocabulary): the reverse of VocabularyDescription.Build.
// - BpeTokenizer (byte-level) -> Gpt2Bpe: tokens in GPT-2 byte spelling, special tokens as Control, merges "A B",
//   the pre-tokenizer as llama.cpp names it (gpt2, llama-bpe for the Llama 3 / cl100k splits, qwen2, or a
//   llama.cpp name Quill already knows).
// - SentencePieceTokenizer (BPE kind) -> SentencePieceBpe: pieces, scores, types, add_space_prefix as they are.
// - CharTokenizer -> SentencePieceBpe (llama.cpp's "llama" tokenizer, which looks every character up as a piece):
//   one piece per character, the space spelled U+2581 as SentencePiece escapes it, the end-of-text token Control,
//   no space prefix, no BOS. The unknown token is a spare id past the tokenizer when the model has one, else id 0
//   (a SentencePiece vocabulary must name one; the char tokenizer itself refuses unknown characters).
// Ids the model has beyond the tokenizer's vocabulary are padded with "[PAD{id}]" pieces typed Unused, so the
// vocabulary has exactly the model's rows (llama.cpp requires it).
// Does not handle (returns null, the caller says so): the byte tokenizer, WordPiece, unigram SentencePiece,
// tiktoken, byte-level BPE without an explicit merge list or with a pre-tokenizer regex llama.cpp has no name for.
using System.Text;

namespace Quill.Tokenization;

/// <summary>Describes tokenizers as the plain data model files keep.</summary>
public static class VocabularyExport
{
    /// <summary>The SentencePiece spelling of a space.</summary>
    public const string SpaceMark = "\u2581";

    /// <summary>
    /// The tokenizer as a vocabulary of exactly <paramref name="modelVocab"/> tokens, or null with the reason in
    /// <paramref name="why"/> when the tokenizer has no such form.
    /// </summary>
    public static VocabularyDescription? Describe(ITokenizer tokenizer, int modelVocab, string source, out string why)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        why = "";
        if (tokenizer.VocabSize > modelVocab)
        {
            why = $"the tokenizer has {tokenizer.VocabSize} tokens but the model only {modelVocab}";
            return null;
        }
        switch (tokenizer)
        {
            case BpeTokenizer bpe: return DescribeBpe(bpe, modelVocab, source, out why);
            case SentencePieceTokenizer sp when sp.Kind == SentencePieceModelKind.Bpe: return DescribeSentencePiece(sp, modelVocab, source);
            case CharTokenizer ch: return DescribeChars(ch, modelVocab, source);
            default:
                why = $"a {tokenizer.Family} tokenizer has no GGUF form (byte-level BPE, SentencePiece BPE and char tokenizers do)";
                return null;
        }
    }

    /// <summary>llama.cpp's tokenizer.ggml.pre name for a pre-tokenizer, or null when llama.cpp has none for it.</summary>
    public static string? LlamaCppPreName(PreTokenizer pre)
    {
        ArgumentNullException.ThrowIfNull(pre);
        if (pre.Patterns.Count == 1)
        {
            string p = pre.Patterns[0];
            if (p == PreTokenizerPatterns.Gpt2) return "gpt2";
            if (p == PreTokenizerPatterns.Llama3 || p == PreTokenizerPatterns.Cl100k) return "llama-bpe";
            if (p == PreTokenizerPatterns.Qwen2) return "qwen2";
        }
        foreach (string name in new[] { "starcoder", "refact", "falcon", "deepseek-coder", "deepseek-llm", "default" })
        {
            if (PreTokenizerPatterns.ForName(name)!.SequenceEqual(pre.Patterns)) return name;
        }
        return null;
    }

    private static VocabularyDescription? DescribeBpe(BpeTokenizer bpe, int modelVocab, string source, out string why)
    {
        why = "";
        if (!bpe.HasMergeList)
        {
            why = "the BPE tokenizer has no explicit merge list (a tiktoken rank file); llama.cpp needs merges";
            return null;
        }
        string? pre = LlamaCppPreName(bpe.PreTokenizer);
        if (pre == null)
        {
            why = "the BPE tokenizer's pre-tokenizer regex has no llama.cpp name (gpt2, llama-bpe, qwen2, ...)";
            return null;
        }
        var tokens = new byte[modelVocab][];
        var types = new PieceType[modelVocab];
        var spelled = new string[modelVocab];
        for (int id = 0; id < modelVocab; id++)
        {
            if (id < bpe.VocabSize && bpe.IsSpecial(id))
            {
                string text = bpe.SpecialTokens.First(p => p.Value == id).Key;
                (spelled[id], types[id]) = (text, PieceType.Control);
            }
            else if (id < bpe.VocabSize && bpe.TokenBytes(id) is { Length: > 0 } b)
            {
                (spelled[id], types[id]) = (ByteLevel.Encode(b), PieceType.Normal);
            }
            else
            {
                (spelled[id], types[id]) = (Pad(id), PieceType.Unused);
            }
            tokens[id] = Encoding.UTF8.GetBytes(spelled[id]);
        }
        return new VocabularyDescription
        {
            Source = source,
            Kind = VocabularyKind.Gpt2Bpe,
            Tokens = tokens,
            TokenTypes = types,
            Merges = bpe.Merges.Select(m => spelled[m.Left] + " " + spelled[m.Right]).ToArray(),
            PreTokenizer = pre,
            BosId = bpe.BosId,
            EosId = bpe.EosId,
        };
    }

    private static VocabularyDescription DescribeSentencePiece(SentencePieceTokenizer sp, int modelVocab, string source)
    {
        var tokens = new byte[modelVocab][];
        var types = new PieceType[modelVocab];
        var scores = new float[modelVocab];
        for (int id = 0; id < modelVocab; id++)
        {
            bool real = id < sp.VocabSize;
            tokens[id] = Encoding.UTF8.GetBytes(real ? sp.Piece(id) : Pad(id));
            types[id] = real ? sp.Type(id) : PieceType.Unused;
            scores[id] = real ? sp.Score(id) : -1e9f;
        }
        return new VocabularyDescription
        {
            Source = source,
            Kind = VocabularyKind.SentencePieceBpe,
            Tokens = tokens,
            TokenTypes = types,
            Scores = scores,
            BosId = sp.BosId,
            EosId = sp.EosId,
            UnknownId = sp.UnkId >= 0 ? sp.UnkId : null,
            AddSpacePrefix = sp.Normalizer.AddDummyPrefix,
        };
    }

    private static VocabularyDescription DescribeChars(CharTokenizer ch, int modelVocab, string source)
    {
        var tokens = new byte[modelVocab][];
        var types = new PieceType[modelVocab];
        int n = ch.VocabSize;
        int unk = n < modelVocab ? n : 0;
        for (int id = 0; id < modelVocab; id++)
        {
            string text;
            if (id == ch.EosId) (text, types[id]) = (ch[id], PieceType.Control);
            else if (id < n) (text, types[id]) = (ch[id] == " " ? SpaceMark : ch[id], PieceType.Normal);
            else if (id == unk) (text, types[id]) = ("<unk>", PieceType.Unknown);
            else (text, types[id]) = (Pad(id), PieceType.Unused);
            tokens[id] = Encoding.UTF8.GetBytes(text);
        }
        return new VocabularyDescription
        {
            Source = source,
            Kind = VocabularyKind.SentencePieceBpe,
            Tokens = tokens,
            TokenTypes = types,
            Scores = new float[modelVocab],
            EosId = ch.EosId,
            UnknownId = unk,
            AddSpacePrefix = false,
        };
    }

    private static string Pad(int id) => $"[PAD{id}]";
}
