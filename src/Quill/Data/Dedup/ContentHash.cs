// The exact-duplicate key of a document: the first 128 bits of SHA-256 over its final (cleaned) text as UTF-16
// code units. At 2^-64 odds of a collision among four billion documents, equal keys mean equal texts.
// Does not handle: near duplicates (MinHasher / LshIndex do).
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Quill.Data.Dedup;

/// <summary>128-bit content hash for exact deduplication, and the short hex id derived from it.</summary>
public static class ContentHash
{
    /// <summary>The 128-bit hash of a text.</summary>
    public static UInt128 Of(ReadOnlySpan<char> text)
    {
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(MemoryMarshal.AsBytes(text), digest);
        ulong hi = System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(digest);
        ulong lo = System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(digest[8..]);
        return new UInt128(hi, lo);
    }

    /// <summary>16 hex digits naming a document by its content.</summary>
    public static string ShortId(UInt128 hash) => ((ulong)(hash >> 64)).ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
}
