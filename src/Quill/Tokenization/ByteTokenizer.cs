// Byte-level tokenizer: id = the byte value of the text's UTF-8 encoding (256 ids), no merges, no BOS/EOS.
// Decoding replaces invalid UTF-8 (a sequence cut in the middle) with U+FFFD, as every byte-level decoder does.
using System.Text;

namespace Quill.Tokenization;

/// <summary>256 ids, one per byte of the UTF-8 text.</summary>
public sealed class ByteTokenizer : ITokenizer
{
    public int VocabSize => 256;

    public string Family => "byte";

    public int BosId => -1;

    public int EosId => -1;

    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        byte[] bytes = TokenizerErrors.ToUtf8(text);
        var ids = new int[bytes.Length];
        for (int i = 0; i < bytes.Length; i++) ids[i] = bytes[i];
        return ids;
    }

    public string Decode(ReadOnlySpan<int> ids) => Encoding.UTF8.GetString(DecodeBytes(ids));

    /// <summary>The raw bytes of the ids.</summary>
    public byte[] DecodeBytes(ReadOnlySpan<int> ids)
    {
        var bytes = new byte[ids.Length];
        for (int i = 0; i < ids.Length; i++)
        {
            TokenizerErrors.CheckId(ids[i], 256, i);
            bytes[i] = (byte)ids[i];
        }
        return bytes;
    }

    public void Save(string path) => TokenizerFile.WriteAtomic(path, TokenizerFile.NewObject(Family));
}
