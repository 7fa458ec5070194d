// GPT-2's byte <-> printable-character table: files that store byte-level BPE tokens as text (encoder.json,
// vocab.bpe, tokenizer.json, GGUF "gpt2" vocabularies) spell each byte as one printable Unicode character so
// that spaces and control bytes survive. Printable Latin-1 bytes map to themselves; the other 68 bytes map to
// U+0100 upwards in byte order.
namespace Quill.Tokenization;

/// <summary>The GPT-2 byte-to-unicode mapping and its inverse.</summary>
public static class ByteLevel
{
    private static readonly char[] ByteToChar = BuildTable();
    private static readonly Dictionary<char, byte> CharToByte = BuildInverse();

    /// <summary>The printable character that stands for a byte.</summary>
    public static char Encode(byte b) => ByteToChar[b];

    /// <summary>The byte-level spelling of a byte string.</summary>
    public static string Encode(ReadOnlySpan<byte> bytes)
    {
        var chars = new char[bytes.Length];
        for (int i = 0; i < bytes.Length; i++) chars[i] = ByteToChar[bytes[i]];
        return new string(chars);
    }

    /// <summary>Decodes a byte-level spelling back to bytes; returns null when a character is not in the table.</summary>
    public static byte[]? TryDecode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var bytes = new byte[text.Length];
        for (int i = 0; i < text.Length; i++)
        {
            if (!CharToByte.TryGetValue(text[i], out byte b)) return null;
            bytes[i] = b;
        }
        return bytes;
    }

    private static char[] BuildTable()
    {
        var table = new char[256];
        var direct = new bool[256];
        for (int b = '!'; b <= '~'; b++) direct[b] = true;
        for (int b = 0xA1; b <= 0xAC; b++) direct[b] = true;
        for (int b = 0xAE; b <= 0xFF; b++) direct[b] = true;
        int next = 0;
        for (int b = 0; b < 256; b++) table[b] = direct[b] ? (char)b : (char)(256 + next++);
        return table;
    }

    private static Dictionary<char, byte> BuildInverse()
    {
        var d = new Dictionary<char, byte>(256);
        for (int b = 0; b < 256; b++) d[ByteToChar[b]] = (byte)b;
        return d;
    }
}
