// A printable summary of a tokenizer for `quill tokenizer inspect`: family, vocabulary size, BOS/EOS, special
// tokens, the pre-tokenization pattern (BPE) or model details (SentencePiece, WordPiece).
using System.Text;

namespace Quill.Tokenization;

/// <summary>Describes a tokenizer in a few lines of text.</summary>
public static class TokenizerInfo
{
    /// <summary>Lines "key: value" describing the tokenizer.</summary>
    public static IReadOnlyList<string> Describe(ITokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var lines = new List<string>
        {
            $"family: {tokenizer.Family}",
            $"vocab size: {tokenizer.VocabSize}",
            $"bos id: {tokenizer.BosId}",
            $"eos id: {tokenizer.EosId}",
        };
        var specials = tokenizer.SpecialTokens;
        lines.Add($"special tokens ({specials.Count}): " + string.Join(", ", specials.OrderBy(p => p.Value).Take(32).Select(p => $"{Printable(p.Key)}={p.Value}"))
                  + (specials.Count > 32 ? ", ..." : ""));
        switch (tokenizer)
        {
            case BpeTokenizer bpe:
                lines.Add($"pattern: {bpe.PreTokenizer.Name ?? "custom"}");
                for (int i = 0; i < bpe.PreTokenizer.Patterns.Count; i++) lines.Add($"regex {i + 1}: {bpe.PreTokenizer.Patterns[i]}");
                lines.Add($"merges: {(bpe.HasMergeList ? bpe.Merges.Count.ToString(System.Globalization.CultureInfo.InvariantCulture) : "from ranks (tiktoken)")}");
                lines.Add($"ignore merges: {bpe.IgnoreMerges}");
                break;
            case SentencePieceTokenizer spm:
                lines.Add($"model: {spm.Kind}");
                lines.Add($"byte fallback: {spm.ByteFallback}");
                lines.Add($"normalizer: charsmap={(spm.Normalizer.Charsmap != null)}, add_dummy_prefix={spm.Normalizer.AddDummyPrefix}, remove_extra_whitespaces={spm.Normalizer.RemoveExtraWhitespaces}");
                break;
            case WordPieceTokenizer wp:
                lines.Add($"style: {wp.VocabStyle}, lowercase: {wp.Lowercase}, unk id: {wp.UnkId}");
                break;
        }
        return lines;
    }

    private static string Printable(string s)
    {
        var sb = new StringBuilder();
        foreach (char c in s) sb.Append(c < ' ' ? $"\\x{(int)c:X2}" : c.ToString());
        return sb.ToString();
    }
}
