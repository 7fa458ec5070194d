// Hugging Face tokenizer.json, read and written. Reading maps the pipeline onto Quill's tokenizers:
// - BPE with a ByteLevel pre-tokenizer or decoder (GPT-2, Llama 3, Qwen, ...): BpeTokenizer; the regexes come from
//   Split (Regex or String patterns), Digits (\p{N} or \p{N}+), Punctuation and ByteLevel(use_regex) in order.
// - BPE without ByteLevel (Llama 2 / Mistral: Prepend+Replace normalizer or Metaspace, byte_fallback):
//   SentencePieceTokenizer in BPE mode, each token scored by minus the rank of the merge that makes it.
// - WordPiece (BERT): WordPieceTokenizer; Unigram: SentencePieceTokenizer in unigram mode (Precompiled charsmap).
// added_tokens with "special": true are special tokens (allow-list); the others are always matched.
// Writing covers byte-level BPE (what BpeTrainer makes), in a shape HF's library loads.
// Not handled: offsets, truncation/padding, post-processors (templates are ignored), ByteLevel add_prefix_space.
using System.Text;
using System.Text.Json.Nodes;

namespace Quill.Tokenization;

/// <summary>Reads and writes HF tokenizer.json files.</summary>
public static class HfTokenizerJson
{
    /// <summary>Loads a tokenizer.json file.</summary>
    public static ITokenizer Load(string path)
    {
        var node = JsonNode.Parse(File.ReadAllText(path, Encoding.UTF8)) as JsonObject
                   ?? throw new InvalidFileException($"{path}: tokenizer.json must hold a JSON object.");
        return Load(path, node);
    }

    internal static ITokenizer Load(string path, JsonObject root)
    {
        var model = root["model"] as JsonObject ?? throw new InvalidFileException($"{path}: tokenizer.json has no \"model\" object.");
        string type = model["type"]?.GetValue<string>() ?? (model["merges"] != null ? "BPE" : model["vocab"] is JsonArray ? "Unigram" : "WordPiece");
        var added = ReadAdded(root);
        TokenizerBase tok = type switch
        {
            "BPE" when UsesByteLevel(root) => LoadByteLevelBpe(path, root, model, added),
            "BPE" => LoadSpmBpe(path, root, model),
            "WordPiece" => LoadWordPiece(path, root, model, added),
            "Unigram" => LoadUnigram(path, root, model),
            _ => throw new InvalidFileException($"{path}: tokenizer.json model type \"{type}\" is not supported (BPE, WordPiece and Unigram are)."),
        };
        foreach (var (content, id, special) in added)
        {
            if (id < tok.VocabSize || tok is BpeTokenizer) tok.AddSpecialToken(content, id, alwaysMatch: !special);
        }
        return tok;
    }

    private static List<(string Content, int Id, bool Special)> ReadAdded(JsonObject root)
    {
        var list = new List<(string, int, bool)>();
        if (root["added_tokens"] is JsonArray arr)
        {
            foreach (var a in arr)
            {
                if (a is not JsonObject o || o["content"] is null || o["id"] is null) continue;
                list.Add((o["content"]!.GetValue<string>(), o["id"]!.GetValue<int>(), o["special"]?.GetValue<bool>() ?? true));
            }
        }
        return list;
    }

    private static bool UsesByteLevel(JsonObject root) =>
        Types(root["pre_tokenizer"]).Contains("ByteLevel") || Types(root["decoder"]).Contains("ByteLevel");

    private static List<string> Types(JsonNode? node)
    {
        var list = new List<string>();
        if (node is not JsonObject o) return list;
        if (o["type"]?.GetValue<string>() is string t) list.Add(t);
        foreach (string key in new[] { "pretokenizers", "decoders", "normalizers" })
        {
            if (o[key] is JsonArray a)
            {
                foreach (var c in a) list.AddRange(Types(c));
            }
        }
        return list;
    }

    private static List<JsonObject> Flatten(JsonNode? node, string listKey)
    {
        var list = new List<JsonObject>();
        if (node is not JsonObject o) return list;
        if (o[listKey] is JsonArray a)
        {
            foreach (var c in a) list.AddRange(Flatten(c, listKey));
        }
        else
        {
            list.Add(o);
        }
        return list;
    }

    private static Dictionary<string, int> ReadVocab(string path, JsonObject model)
    {
        if (model["vocab"] is not JsonObject v) throw new InvalidFileException($"{path}: model.vocab must be an object {{token: id}}.");
        var d = new Dictionary<string, int>(v.Count, StringComparer.Ordinal);
        foreach (var (k, id) in v) d[k] = id!.GetValue<int>();
        return d;
    }

    private static List<(string A, string B)> ReadMergeStrings(string path, JsonObject model)
    {
        var list = new List<(string, string)>();
        if (model["merges"] is not JsonArray m) return list;
        foreach (var e in m)
        {
            if (e is JsonArray pair && pair.Count == 2) list.Add((pair[0]!.GetValue<string>(), pair[1]!.GetValue<string>()));
            else if (e is JsonValue s && s.GetValue<string>() is string line && line.IndexOf(' ', StringComparison.Ordinal) is int sp and > 0)
                list.Add((line[..sp], line[(sp + 1)..]));
            else throw new InvalidFileException($"{path}: each merge must be \"A B\" or [\"A\", \"B\"].");
        }
        return list;
    }

    private static BpeTokenizer LoadByteLevelBpe(string path, JsonObject root, JsonObject model, List<(string, int, bool)> added)
    {
        var vocab = ReadVocab(path, model);
        foreach (var (content, id, _) in added) vocab.TryAdd(content, id);
        var tokens = Gpt2Files.TokensFromVocab(vocab, path);
        foreach (var (content, id, _) in added) tokens[id] = Encoding.UTF8.GetBytes(content);
        var merges = new List<(int, int)>();
        int lineNo = 0;
        foreach (var (a, b) in ReadMergeStrings(path, model))
        {
            lineNo++;
            merges.Add(Gpt2Files.ResolveMerge(a + " " + b, vocab, path, lineNo));
        }
        var patterns = new List<string>();
        foreach (var p in Flatten(root["pre_tokenizer"], "pretokenizers"))
        {
            switch (p["type"]?.GetValue<string>())
            {
                case "Split":
                    string? regex = p["pattern"]?["Regex"]?.GetValue<string>();
                    string? literal = p["pattern"]?["String"]?.GetValue<string>();
                    if (regex == null && literal == null) throw new InvalidFileException($"{path}: Split pre-tokenizer without a pattern.");
                    string behavior = p["behavior"]?.GetValue<string>() ?? "Isolated";
                    if (behavior != "Isolated" || (p["invert"]?.GetValue<bool>() ?? false))
                        throw new InvalidFileException($"{path}: Split behavior \"{behavior}\" (or invert) is not supported; only Isolated.");
                    // Rust's $ is end of text; .NET's also matches before a final '\n'.
                    patterns.Add(regex != null ? System.Text.RegularExpressions.Regex.Replace(regex, @"(?<!\\)\$", @"\z") : System.Text.RegularExpressions.Regex.Escape(literal!));
                    break;
                case "Digits":
                    patterns.Add(p["individual_digits"]?.GetValue<bool>() ?? false ? @"\p{N}" : @"\p{N}+");
                    break;
                case "Punctuation":
                    patterns.Add(@"[\p{P}\$\+<=>\^~\|`]+");
                    break;
                case "ByteLevel":
                    if (p["add_prefix_space"]?.GetValue<bool>() ?? false)
                        throw new InvalidFileException($"{path}: ByteLevel add_prefix_space is not supported.");
                    if (p["use_regex"]?.GetValue<bool>() ?? true) patterns.Add(PreTokenizerPatterns.Gpt2);
                    break;
                case null:
                    break;
                default:
                    throw new InvalidFileException($"{path}: pre-tokenizer \"{p["type"]}\" is not supported with byte-level BPE.");
            }
        }
        if (patterns.Count == 0) patterns.Add(@"[\s\S]+");
        string? name = patterns.Count == 1 && patterns[0] == PreTokenizerPatterns.Gpt2 ? "gpt2" : null;
        if (patterns.Count == 1 && IsLlama3(patterns[0])) name = "llama3";
        var specials = added.Where(a => a.Item3).ToDictionary(a => a.Item1, a => a.Item2, StringComparer.Ordinal);
        var tok = BpeTokenizer.FromMerges(tokens, merges, new PreTokenizer(patterns, name), specials, model["ignore_merges"]?.GetValue<bool>() ?? false);
        return tok;
    }

    private static bool IsLlama3(string p) => p.StartsWith("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}", StringComparison.Ordinal);

    private static SentencePieceTokenizer LoadSpmBpe(string path, JsonObject root, JsonObject model)
    {
        var vocab = ReadVocab(path, model);
        int n = TokenizerErrors.MaxFileId(path, vocab.Values, vocab.Count) + 1;
        var pieces = new string[n];
        var types = new PieceType[n];
        var scores = new float[n];
        Array.Fill(pieces, "");
        Array.Fill(types, PieceType.Unused);
        foreach (var (k, id) in vocab)
        {
            pieces[id] = k;
            types[id] = SentencePieceTokenizer.TryParseBytePiece(k, out _) ? PieceType.Byte : PieceType.Normal;
        }
        int rank = 0;
        foreach (var (a, b) in ReadMergeStrings(path, model))
        {
            if (vocab.TryGetValue(a + b, out int id) && scores[id] == 0) scores[id] = -(++rank);
        }
        string? unk = model["unk_token"]?.GetValue<string>();
        int unkId = unk != null && vocab.TryGetValue(unk, out int u) ? u : -1;
        if (unkId >= 0) types[unkId] = PieceType.Unknown;
        foreach (var a in ReadAdded(root))
        {
            if (a.Id < n && a.Special) types[a.Id] = PieceType.Control;
        }
        var (prefix, escape) = SpmWhitespace(root);
        var normalizer = new SentencePieceNormalizer(null, prefix, false, escape);
        return new SentencePieceTokenizer(pieces, scores, types, SentencePieceModelKind.Bpe, normalizer,
                                          model["byte_fallback"]?.GetValue<bool>() ?? false, unkId);
    }

    private static (bool Prefix, bool Escape) SpmWhitespace(JsonObject root)
    {
        bool prefix = false, escape = false;
        foreach (var nrm in Flatten(root["normalizer"], "normalizers"))
        {
            string? t = nrm["type"]?.GetValue<string>();
            if (t == "Prepend" && nrm["prepend"]?.GetValue<string>() == "\u2581") prefix = true;
            if (t == "Replace" && nrm["content"]?.GetValue<string>() == "\u2581") escape = true;
        }
        foreach (var p in Flatten(root["pre_tokenizer"], "pretokenizers"))
        {
            if (p["type"]?.GetValue<string>() != "Metaspace") continue;
            escape = true;
            string scheme = p["prepend_scheme"]?.GetValue<string>() ?? ((p["add_prefix_space"]?.GetValue<bool>() ?? true) ? "always" : "never");
            prefix = scheme != "never";
        }
        return (prefix, escape);
    }

    private static WordPieceTokenizer LoadWordPiece(string path, JsonObject root, JsonObject model, List<(string, int, bool)> added)
    {
        var vocab = ReadVocab(path, model);
        var pieces = new string[TokenizerErrors.MaxFileId(path, vocab.Values, vocab.Count) + 1];
        Array.Fill(pieces, "");
        foreach (var (k, id) in vocab) pieces[id] = k;
        string unk = model["unk_token"]?.GetValue<string>() ?? "[UNK]";
        if (!vocab.TryGetValue(unk, out int unkId)) throw new InvalidFileException($"{path}: WordPiece unk_token \"{unk}\" is not in the vocabulary.");
        string prefix = model["continuing_subword_prefix"]?.GetValue<string>() ?? "##";
        if (prefix != "##") throw new InvalidFileException($"{path}: WordPiece continuing_subword_prefix \"{prefix}\" is not supported (only ##).");
        bool lowercase = Flatten(root["normalizer"], "normalizers").Any(n => n["type"]?.GetValue<string>() == "BertNormalizer" && (n["lowercase"]?.GetValue<bool>() ?? true));
        var specials = added.Where(a => a.Item3).ToDictionary(a => a.Item1, a => a.Item2, StringComparer.Ordinal);
        return new WordPieceTokenizer(pieces, unkId, specials, WordPieceTokenizer.Style.Hash, lowercase);
    }

    private static SentencePieceTokenizer LoadUnigram(string path, JsonObject root, JsonObject model)
    {
        if (model["vocab"] is not JsonArray v) throw new InvalidFileException($"{path}: Unigram model.vocab must be an array of [piece, score].");
        var pieces = new string[v.Count];
        var scores = new float[v.Count];
        var types = new PieceType[v.Count];
        for (int i = 0; i < v.Count; i++)
        {
            var e = v[i] as JsonArray ?? throw new InvalidFileException($"{path}: Unigram vocab entry {i} must be [piece, score].");
            pieces[i] = e[0]!.GetValue<string>();
            scores[i] = (float)e[1]!.GetValue<double>();
            types[i] = SentencePieceTokenizer.TryParseBytePiece(pieces[i], out _) ? PieceType.Byte : PieceType.Normal;
        }
        int unkId = model["unk_id"]?.GetValue<int>() ?? -1;
        if (unkId >= 0) types[unkId] = PieceType.Unknown;
        foreach (var a in ReadAdded(root))
        {
            if (a.Id < pieces.Length && a.Special && a.Id != unkId) types[a.Id] = PieceType.Control;
        }
        byte[]? charsmap = null;
        foreach (var nrm in Flatten(root["normalizer"], "normalizers"))
        {
            if (nrm["type"]?.GetValue<string>() == "Precompiled" && nrm["precompiled_charsmap"]?.GetValue<string>() is string b64 && b64.Length > 0)
                charsmap = Convert.FromBase64String(b64);
        }
        var (prefix, escape) = SpmWhitespace(root);
        return new SentencePieceTokenizer(pieces, scores, types, SentencePieceModelKind.Unigram,
                                          new SentencePieceNormalizer(charsmap, prefix, false, escape),
                                          model["byte_fallback"]?.GetValue<bool>() ?? false, unkId);
    }

    /// <summary>Writes a byte-level BPE tokenizer as tokenizer.json (BPE model, Split + ByteLevel pre-tokenizer).</summary>
    public static void Save(BpeTokenizer tokenizer, string path)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (!tokenizer.HasMergeList) throw new InvalidConfigException("tokenizer.json export needs an explicit merge list (train with BpeTrainer or load encoder.json/vocab.bpe).");
        var vocab = new JsonObject();
        var spelled = new string?[tokenizer.VocabSize];
        for (int id = 0; id < tokenizer.VocabSize; id++)
        {
            if (tokenizer.IsSpecial(id) || tokenizer.TokenBytes(id) is not byte[] b) continue;
            spelled[id] = ByteLevel.Encode(b);
            vocab[spelled[id]!] = id;
        }
        var merges = new JsonArray();
        foreach (var (l, r) in tokenizer.Merges) merges.Add(new JsonArray(spelled[l], spelled[r]));
        var added = new JsonArray();
        foreach (var (text, id) in tokenizer.SpecialTokens.OrderBy(p => p.Value))
        {
            added.Add(new JsonObject
            {
                ["id"] = id, ["content"] = text, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
                ["normalized"] = false, ["special"] = true,
            });
        }
        var pres = new JsonArray();
        foreach (string p in tokenizer.PreTokenizer.Patterns)
        {
            pres.Add(new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = p }, ["behavior"] = "Isolated", ["invert"] = false });
        }
        pres.Add(new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = false });
        var root = new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "Sequence", ["pretokenizers"] = pres },
            ["post_processor"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null, ["fuse_unk"] = false, ["byte_fallback"] = false,
                ["ignore_merges"] = tokenizer.IgnoreMerges, ["vocab"] = vocab, ["merges"] = merges,
            },
        };
        TokenizerFile.WriteAtomic(path, Encoding.UTF8.GetBytes(root.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true })));
    }

    /// <summary>
    /// Writes a SentencePiece-BPE vocabulary (a SentencePiece model, or a char tokenizer described as one by
    /// VocabularyExport) as tokenizer.json the way Hugging Face writes Llama's: a BPE model over the pieces with
    /// merges made from the pieces (every split of a piece into two pieces, ranked by the piece's score), byte
    /// fallback when all 256 byte pieces exist, spaces replaced by U+2581 (and prepended when AddSpacePrefix),
    /// Control / Unknown pieces as special added tokens.
    /// </summary>
    public static void Save(VocabularyDescription d, string path)
    {
        ArgumentNullException.ThrowIfNull(d);
        if (d.Kind != VocabularyKind.SentencePieceBpe) throw new InvalidConfigException($"{d.Source}: only SentencePiece-BPE vocabularies are written this way.");
        var types = d.TokenTypes?.ToArray() ?? Enumerable.Repeat(PieceType.Normal, d.Tokens.Count).ToArray();
        var pieces = d.Tokens.Select(t => Encoding.UTF8.GetString(t)).ToArray();
        var vocab = new JsonObject();
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < pieces.Length; i++)
        {
            if (ids.TryAdd(pieces[i], i)) vocab[pieces[i]] = i;
        }
        var merges = new List<(float Score, int Id, string A, string B)>();
        for (int i = 0; i < pieces.Length; i++)
        {
            if (types[i] != PieceType.Normal) continue;
            var cuts = System.Globalization.StringInfo.ParseCombiningCharacters(pieces[i]);
            for (int c = 1; c < cuts.Length; c++)
            {
                string a = pieces[i][..cuts[c]], b = pieces[i][cuts[c]..];
                if (ids.ContainsKey(a) && ids.ContainsKey(b)) merges.Add((d.Scores?[i] ?? 0, i, a, b));
            }
        }
        var mergeArray = new JsonArray();
        foreach (var m in merges.OrderByDescending(m => m.Score).ThenBy(m => m.Id)) mergeArray.Add(new JsonArray(m.A, m.B));
        var added = new JsonArray();
        for (int i = 0; i < pieces.Length; i++)
        {
            if (types[i] is not (PieceType.Control or PieceType.Unknown)) continue;
            added.Add(new JsonObject
            {
                ["id"] = i, ["content"] = pieces[i], ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
                ["normalized"] = false, ["special"] = true,
            });
        }
        var normalizers = new JsonArray();
        if (d.AddSpacePrefix) normalizers.Add(new JsonObject { ["type"] = "Prepend", ["prepend"] = "\u2581" });
        normalizers.Add(new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = " " }, ["content"] = "\u2581" });
        var decoders = new JsonArray
        {
            new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = "\u2581" }, ["content"] = " " },
            new JsonObject { ["type"] = "ByteFallback" },
            new JsonObject { ["type"] = "Fuse" },
        };
        if (d.AddSpacePrefix) decoders.Add(new JsonObject { ["type"] = "Strip", ["content"] = " ", ["start"] = 1, ["stop"] = 0 });
        // the unknown piece only when it is one: a char vocabulary that fills the model's rows names a real character
        // (id 0) as GGUF's unknown id, which here would make that character read back as unknown
        int unk = d.UnknownId is int u && u >= 0 && u < types.Length && types[u] == PieceType.Unknown ? u : Array.IndexOf(types, PieceType.Unknown);
        var root = new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = new JsonObject { ["type"] = "Sequence", ["normalizers"] = normalizers },
            ["pre_tokenizer"] = null,
            ["post_processor"] = null,
            ["decoder"] = new JsonObject { ["type"] = "Sequence", ["decoders"] = decoders },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = unk >= 0 ? pieces[unk] : null, ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null, ["fuse_unk"] = true, ["byte_fallback"] = types.Count(t => t == PieceType.Byte) == 256,
                ["ignore_merges"] = false, ["vocab"] = vocab, ["merges"] = mergeArray,
            },
        };
        TokenizerFile.WriteAtomic(path, Encoding.UTF8.GetBytes(root.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true })));
    }
}
