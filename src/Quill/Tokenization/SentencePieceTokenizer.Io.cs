// Saving and loading a SentencePieceTokenizer as Quill's JSON tokenizer file (family "sentencepiece"): pieces,
// scores, types, the model kind, the normalizer options and its precompiled character map.
using System.Text.Json.Nodes;

namespace Quill.Tokenization;

public sealed partial class SentencePieceTokenizer
{
    public override void Save(string path)
    {
        var obj = TokenizerFile.NewObject(Family);
        obj["model"] = Kind == SentencePieceModelKind.Bpe ? "bpe" : "unigram";
        obj["pieces"] = new JsonArray(pieces.Select(p => (JsonNode?)p).ToArray());
        obj["scores"] = new JsonArray(scores.Select(s => (JsonNode?)s).ToArray());
        obj["types"] = new JsonArray(types.Select(t => (JsonNode?)(int)t).ToArray());
        obj["byte_fallback"] = ByteFallback;
        obj["unk"] = UnkId;
        obj["bos"] = BosId;
        obj["eos"] = EosId;
        obj["add_dummy_prefix"] = Normalizer.AddDummyPrefix;
        obj["remove_extra_whitespaces"] = Normalizer.RemoveExtraWhitespaces;
        obj["escape_whitespaces"] = Normalizer.EscapeWhitespaces;
        if (Normalizer.Charsmap != null) obj["precompiled_charsmap"] = Convert.ToBase64String(Normalizer.Charsmap);
        TokenizerFile.WriteAtomic(path, obj);
    }

    internal static SentencePieceTokenizer FromJson(string path, JsonObject obj)
    {
        string model = TokenizerFile.GetString(path, obj, "model");
        var kind = model switch
        {
            "bpe" => SentencePieceModelKind.Bpe,
            "unigram" => SentencePieceModelKind.Unigram,
            _ => throw new InvalidFileException($"{path}: \"model\" must be \"bpe\" or \"unigram\" (got \"{model}\")."),
        };
        var p = TokenizerFile.GetArray(path, obj, "pieces").Select(n => n!.GetValue<string>()).ToArray();
        var s = TokenizerFile.GetArray(path, obj, "scores").Select(n => n!.GetValue<float>()).ToArray();
        var t = TokenizerFile.GetArray(path, obj, "types").Select(n => (PieceType)n!.GetValue<int>()).ToArray();
        string? cm = TokenizerFile.GetOptionalString(path, obj, "precompiled_charsmap");
        var normalizer = new SentencePieceNormalizer(cm == null ? null : Convert.FromBase64String(cm),
            obj["add_dummy_prefix"]?.GetValue<bool>() ?? true, obj["remove_extra_whitespaces"]?.GetValue<bool>() ?? false,
            obj["escape_whitespaces"]?.GetValue<bool>() ?? true);
        var tok = new SentencePieceTokenizer(p, s, t, kind, normalizer, obj["byte_fallback"]?.GetValue<bool>() ?? false,
                                             TokenizerFile.GetOptionalInt(path, obj, "unk", -1))
        {
            BosId = TokenizerFile.GetOptionalInt(path, obj, "bos", -1),
            EosId = TokenizerFile.GetOptionalInt(path, obj, "eos", -1),
        };
        return tok;
    }
}
