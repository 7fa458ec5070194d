// Repairs mojibake: UTF-8 text that was once decoded as Windows-1252 / Latin-1, so that "é" reads "Ã©" and "’"
// reads "â€™". A run of characters is rewritten only when it is unambiguous: every character maps back to one
// byte, the bytes form exactly one well-formed multi-byte UTF-8 sequence (lead byte C2..F4 then the right number
// of continuation bytes), and the decoded character is not itself in the Windows-1252 control range. Double
// encoding is undone by repeating the pass (at most three times).
// Does not handle: mojibake through other code pages (e.g. UTF-8 read as KOI8-R or Shift-JIS), or text whose
// broken bytes were replaced by U+FFFD (the information is gone).
using System.Text;

namespace Quill.Data.Cleaning;

/// <summary>Undoes UTF-8-read-as-Windows-1252 mojibake where the repair is unambiguous.</summary>
public static class MojibakeRepair
{
    // char -> byte for the 256 bytes of Windows-1252 (bytes undefined there map to the Latin-1 C1 control char).
    private static readonly Dictionary<char, byte> CharToByte = BuildCharToByte();

    /// <summary>Returns the repaired text and how many sequences were fixed (0: the same instance).</summary>
    public static string Repair(string text, out int repairs)
    {
        ArgumentNullException.ThrowIfNull(text);
        repairs = 0;
        for (int pass = 0; pass < 3; pass++)
        {
            string next = RepairOnce(text, out int n);
            if (n == 0) break;
            repairs += n;
            text = next;
        }
        return text;
    }

    private static string RepairOnce(string text, out int repairs)
    {
        repairs = 0;
        int first = IndexOfCandidate(text, 0);
        if (first < 0) return text;
        StringBuilder? sb = null;
        int copied = 0;
        Span<byte> buf = stackalloc byte[4];
        for (int i = first; i >= 0 && i < text.Length; i = IndexOfCandidate(text, i))
        {
            int len = TryDecodeAt(text, i, buf, out int codePoint);
            if (len == 0)
            {
                i++;
                continue;
            }
            sb ??= new StringBuilder(text.Length);
            sb.Append(text, copied, i - copied);
            sb.Append(char.ConvertFromUtf32(codePoint));
            repairs++;
            i += len;
            copied = i;
        }
        if (sb == null) return text;
        sb.Append(text, copied, text.Length - copied);
        return sb.ToString();
    }

    private static int IndexOfCandidate(string text, int start)
    {
        for (int i = start; i < text.Length; i++)
        {
            char c = text[i];
            if (c >= '\u00C2' && c <= '\u00F4') return i;
        }
        return -1;
    }

    // Length in chars of a mojibake sequence starting at i (0 when there is none), and the character it stands for.
    private static int TryDecodeAt(string text, int i, Span<byte> buf, out int codePoint)
    {
        codePoint = 0;
        byte lead = (byte)text[i];
        int need = lead <= 0xDF ? 1 : lead <= 0xEF ? 2 : 3;
        if (i + need >= text.Length) return 0;
        buf[0] = lead;
        for (int k = 1; k <= need; k++)
        {
            if (i + k >= text.Length) return 0;
            if (!CharToByte.TryGetValue(text[i + k], out byte b) || b < 0x80 || b > 0xBF) return 0;
            buf[k] = b;
        }
        if (Rune.DecodeFromUtf8(buf[..(need + 1)], out Rune rune, out int consumed) != System.Buffers.OperationStatus.Done
            || consumed != need + 1)
        {
            return 0;
        }
        if (rune.Value is >= 0x80 and <= 0x9F) return 0;
        codePoint = rune.Value;
        return need + 1;
    }

    private static Dictionary<char, byte> BuildCharToByte()
    {
        var map = new Dictionary<char, byte>(256);
        var bytes = new byte[1];
        for (int b = 0x80; b <= 0xFF; b++)
        {
            bytes[0] = (byte)b;
            string s = TextDecoding.Windows1252.GetString(bytes);
            char c = s.Length == 1 && s[0] != '\uFFFD' && s[0] != '?' ? s[0] : (char)b;
            map.TryAdd(c, (byte)b);
            map.TryAdd((char)b, (byte)b);
        }
        return map;
    }
}
