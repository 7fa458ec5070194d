// llama2.c tokenizer.bin (and tok512.bin): int32 max_token_length, then per token a float32 score, an int32 byte
// length and the bytes. It is a SentencePiece BPE vocabulary exported with U+2581 turned into ' ', BOS/EOS written
// as "\n<s>\n" / "\n</s>\n" and byte pieces kept as "<0xXX>". Loaded back as a SentencePieceTokenizer (BPE, byte
// fallback, dummy prefix) so it encodes exactly like llama2.c's encode() and llama.cpp's SPM tokenizer.
using System.Buffers.Binary;
using System.Text;

namespace Quill.Tokenization;

/// <summary>Reads llama2.c tokenizer.bin files.</summary>
public static class Llama2cTokenizerFile
{
    /// <summary>A cheap content check: plausible max_token_length, then a plausible first entry.</summary>
    public static bool LooksLike(byte[] head)
    {
        ArgumentNullException.ThrowIfNull(head);
        if (head.Length < 12) return false;
        int maxLen = BinaryPrimitives.ReadInt32LittleEndian(head);
        float score = BinaryPrimitives.ReadSingleLittleEndian(head.AsSpan(4));
        int len = BinaryPrimitives.ReadInt32LittleEndian(head.AsSpan(8));
        return maxLen is > 0 and < 4096 && float.IsFinite(score) && len >= 0 && len <= maxLen;
    }

    public static SentencePieceTokenizer Load(string path)
    {
        byte[] data = File.ReadAllBytes(path);
        if (data.Length < 4) throw new InvalidFileException($"{path}: too short for a llama2.c tokenizer.");
        int maxLen = BinaryPrimitives.ReadInt32LittleEndian(data);
        var pieces = new List<string>();
        var scores = new List<float>();
        var types = new List<PieceType>();
        int pos = 4;
        while (pos < data.Length)
        {
            if (pos + 8 > data.Length) throw new InvalidFileException($"{path}: truncated at token {pieces.Count}.");
            float score = BinaryPrimitives.ReadSingleLittleEndian(data.AsSpan(pos));
            int len = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(pos + 4));
            pos += 8;
            if (len < 0 || len > maxLen || pos + len > data.Length)
                throw new InvalidFileException($"{path}: token {pieces.Count} has an invalid length {len} (max_token_length {maxLen}).");
            string text = Encoding.UTF8.GetString(data, pos, len);
            pos += len;
            int id = pieces.Count;
            PieceType type = PieceType.Normal;
            if (id == 0) type = PieceType.Unknown;
            else if (text is "\n<s>\n" or "\n</s>\n")
            {
                type = PieceType.Control;
                text = text.Trim('\n');
            }
            else if (SentencePieceTokenizer.TryParseBytePiece(text, out _)) type = PieceType.Byte;
            pieces.Add(type == PieceType.Normal ? text.Replace(' ', SentencePieceNormalizer.Space) : text);
            scores.Add(score);
            types.Add(type);
        }
        if (pieces.Count < 3) throw new InvalidFileException($"{path}: llama2.c tokenizer holds only {pieces.Count} tokens.");
        bool hasBytes = types.Count(t => t == PieceType.Byte) == 256;
        var tok = new SentencePieceTokenizer(pieces, scores, types, SentencePieceModelKind.Bpe,
                                             new SentencePieceNormalizer(null, true, false, true), hasBytes, 0);
        tok.BosId = pieces.IndexOf("<s>");
        tok.EosId = pieces.IndexOf("</s>");
        return tok;
    }
}
