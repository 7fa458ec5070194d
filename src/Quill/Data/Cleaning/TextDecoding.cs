// Turns raw bytes into text: sniffs a file's encoding from its first bytes (byte-order marks, UTF-16 without BOM,
// binary content), and decodes one document's bytes as UTF-8 when valid, else as Windows-1252 (the usual legacy
// encoding of Western web and text dumps; every byte sequence is valid in it, so nothing is lost).
// Does not handle: other legacy code pages (Shift-JIS, GBK, KOI8...): such text decodes as Windows-1252 gibberish.
using System.Text;
using System.Text.Unicode;

namespace Quill.Data.Cleaning;

/// <summary>What a file's first bytes say about its encoding.</summary>
public enum SniffedEncoding
{
    /// <summary>UTF-8 or a legacy 8-bit encoding (decided per document).</summary>
    Utf8OrLegacy,
    Utf8Bom,
    Utf16LE,
    Utf16BE,
    Utf32LE,
    Utf32BE,
    /// <summary>Not text (NUL bytes or many control bytes).</summary>
    Binary,
}

/// <summary>Encoding detection and decoding of document bytes.</summary>
public static class TextDecoding
{
    /// <summary>Windows-1252, available whatever the globalization mode.</summary>
    public static Encoding Windows1252 { get; } = CodePagesEncodingProvider.Instance.GetEncoding(1252)
        ?? throw new InvalidOperationException("code page 1252 unavailable");

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Inspects up to the first few KB of a file.</summary>
    public static SniffedEncoding Sniff(ReadOnlySpan<byte> prefix)
    {
        if (prefix.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xFE, 0x00, 0x00])) return SniffedEncoding.Utf32LE;
        if (prefix.StartsWith((ReadOnlySpan<byte>)[0x00, 0x00, 0xFE, 0xFF])) return SniffedEncoding.Utf32BE;
        if (prefix.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) return SniffedEncoding.Utf8Bom;
        if (prefix.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xFE])) return SniffedEncoding.Utf16LE;
        if (prefix.StartsWith((ReadOnlySpan<byte>)[0xFE, 0xFF])) return SniffedEncoding.Utf16BE;

        int n = Math.Min(prefix.Length, 8192) & ~1;
        if (n >= 8)
        {
            // UTF-16 without BOM: mostly-ASCII text has a zero in every other byte.
            int evenZero = 0, oddZero = 0;
            for (int i = 0; i < n; i += 2)
            {
                if (prefix[i] == 0) evenZero++;
                if (prefix[i + 1] == 0) oddZero++;
            }
            int pairs = n / 2;
            if (oddZero > pairs * 0.4 && evenZero < pairs * 0.05) return SniffedEncoding.Utf16LE;
            if (evenZero > pairs * 0.4 && oddZero < pairs * 0.05) return SniffedEncoding.Utf16BE;
        }
        return LooksBinary(prefix[..Math.Min(prefix.Length, 8192)]) ? SniffedEncoding.Binary : SniffedEncoding.Utf8OrLegacy;
    }

    /// <summary>True when bytes hold a NUL or more than 10% control bytes other than tab, newlines, form feed, escape.</summary>
    public static bool LooksBinary(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty) return false;
        if (bytes.Contains((byte)0)) return true;
        int control = 0;
        foreach (byte b in bytes)
        {
            if (b < 0x20 && b != (byte)'\t' && b != (byte)'\n' && b != (byte)'\r' && b != 0x0C && b != 0x1B) control++;
        }
        return control * 10 > bytes.Length;
    }

    /// <summary>The .NET encoding for a sniffed text encoding other than UTF-8/legacy (null for those and binary).</summary>
    public static Encoding? EncodingFor(SniffedEncoding sniffed) => sniffed switch
    {
        SniffedEncoding.Utf16LE => new UnicodeEncoding(bigEndian: false, byteOrderMark: true),
        SniffedEncoding.Utf16BE => new UnicodeEncoding(bigEndian: true, byteOrderMark: true),
        SniffedEncoding.Utf32LE => new UTF32Encoding(bigEndian: false, byteOrderMark: true),
        SniffedEncoding.Utf32BE => new UTF32Encoding(bigEndian: true, byteOrderMark: true),
        _ => null,
    };

    /// <summary>Decodes one document: UTF-8 when the bytes are valid UTF-8 (a BOM is dropped), else Windows-1252.</summary>
    public static string Decode(ReadOnlySpan<byte> bytes, out bool usedLegacy)
    {
        if (bytes.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) bytes = bytes[3..];
        if (Utf8.IsValid(bytes))
        {
            usedLegacy = false;
            return StrictUtf8.GetString(bytes);
        }
        usedLegacy = true;
        return Windows1252.GetString(bytes);
    }
}
