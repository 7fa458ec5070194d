// The named pre-tokenization regexes: OpenAI's (gpt2 = r50k/p50k, cl100k, o200k), Llama 3's, and the regex lists
// llama.cpp uses for each "tokenizer.ggml.pre" type (written to reproduce the HF tokenizers of those models).
namespace Quill.Tokenization;

/// <summary>Well-known pre-tokenization patterns by name.</summary>
public static class PreTokenizerPatterns
{
    /// <summary>GPT-2 / r50k / p50k (also HF ByteLevel's built-in regex).</summary>
    public const string Gpt2 = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    /// <summary>cl100k_base (GPT-3.5/4).</summary>
    public const string Cl100k = @"(?:'s|'S|'t|'T|'re|'rE|'Re|'RE|'ve|'vE|'Ve|'VE|'m|'M|'ll|'lL|'Ll|'LL|'d|'D)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>o200k_base (GPT-4o).</summary>
    public const string O200k = @"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?:'s|'S|'t|'T|'re|'rE|'Re|'RE|'ve|'vE|'Ve|'VE|'m|'M|'ll|'lL|'Ll|'LL|'d|'D)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?:'s|'S|'t|'T|'re|'rE|'Re|'RE|'ve|'vE|'Ve|'VE|'m|'M|'ll|'lL|'Ll|'LL|'d|'D)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>Llama 3 (same splits as cl100k, written with a case-insensitive group).</summary>
    public const string Llama3 = @"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>Qwen2 / Qwen2.5: Llama 3's splits with single digits (llama.cpp pre type "qwen2").</summary>
    public const string Qwen2 = @"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    // Written with escapes where a character has a canonical singleton (NFC would silently turn it into another).
    private const string DeepseekLetters = "A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\u1F7Dᾀ-ᾴᾶ-ᾼ\u1FBEῂ-ῄῆ-ῌῐ-\u1FD3ῖ-\u1FDBῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u2126ℨ\u212A-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ";

    private const string Cjk = "[一-龥ࠀ-一가-퟿]+";

    /// <summary>The pattern list for a name: gpt2, r50k, p50k, cl100k, o200k, llama3, or a llama.cpp pre type.</summary>
    public static string[]? ForName(string name) => name?.ToLowerInvariant() switch
    {
        "gpt2" or "gpt-2" or "r50k" or "r50k_base" or "p50k" or "p50k_base" or "mpt" or "olmo" or "jais" or "gpt-neox" => [Gpt2],
        "cl100k" or "cl100k_base" => [Cl100k],
        "o200k" or "o200k_base" => [O200k],
        "llama3" or "llama-bpe" or "llama-3" or "dbrx" or "smaug-bpe" => [Llama3],
        "qwen2" or "deepseek-r1-qwen" => [Qwen2],
        "starcoder" or "refact" or "command-r" or "smollm" or "codeshell" or "exaone" or "minerva-7b" => [@"\p{N}", Gpt2],
        "falcon" => [@"[\p{P}\$\+<=>\^~\|`]+", Gpt2, "[0-9][0-9][0-9]"],
        "deepseek-coder" => [@"[\r\n]", @"\s?\p{L}+", @"\s?\p{P}+", Cjk, @"\p{N}"],
        "deepseek-llm" => [@"[\r\n]", @"\s?[" + DeepseekLetters + "]+", @"\s?[!-/:-~！-／：-～‘-‟　-。]+", @"\s+\z", Cjk, @"\p{N}+"],
        "default" => [@"[\p{P}\$\+<=>\^~\|]+", Gpt2, @"\p{N}+", "[0-9][0-9][0-9]"],
        _ => null,
    };

    /// <summary>A pre-tokenizer for a name (see ForName) or, when the text is not a known name, for it as a regex.</summary>
    public static PreTokenizer Create(string nameOrRegex)
    {
        ArgumentNullException.ThrowIfNull(nameOrRegex);
        string[]? named = ForName(nameOrRegex);
        return named != null ? new PreTokenizer(named, nameOrRegex.ToLowerInvariant()) : new PreTokenizer([nameOrRegex]);
    }
}
