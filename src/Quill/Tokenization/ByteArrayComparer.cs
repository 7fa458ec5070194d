// Equality on byte arrays by content, with a ReadOnlySpan<byte> alternate key so hot loops look tokens up
// without allocating. The hash reads 8 bytes at a time and mixes with multiply/rotate (tokens are short).
using System.Buffers.Binary;
using System.Numerics;

namespace Quill.Tokenization;

internal sealed class ByteArrayComparer : IEqualityComparer<byte[]>, IAlternateEqualityComparer<ReadOnlySpan<byte>, byte[]>
{
    public static readonly ByteArrayComparer Instance = new();

    public bool Equals(byte[]? x, byte[]? y) => x is null ? y is null : y is not null && x.AsSpan().SequenceEqual(y);

    public int GetHashCode(byte[] obj) => Hash(obj);

    public int GetHashCode(ReadOnlySpan<byte> alternate) => Hash(alternate);

    public bool Equals(ReadOnlySpan<byte> alternate, byte[] other) => alternate.SequenceEqual(other);

    public byte[] Create(ReadOnlySpan<byte> alternate) => alternate.ToArray();

    /// <summary>A fast non-cryptographic hash of a short byte string.</summary>
    public static int Hash(ReadOnlySpan<byte> s)
    {
        const ulong K = 0x9E3779B97F4A7C15UL;
        ulong h = (ulong)s.Length * K;
        int i = 0;
        for (; i + 8 <= s.Length; i += 8)
        {
            h = BitOperations.RotateLeft((h ^ BinaryPrimitives.ReadUInt64LittleEndian(s[i..])) * K, 29);
        }
        ulong tail = 0;
        for (int j = s.Length - 1; j >= i; j--) tail = (tail << 8) | s[j];
        h = (h ^ tail) * K;
        h ^= h >> 32;
        return (int)h;
    }
}
