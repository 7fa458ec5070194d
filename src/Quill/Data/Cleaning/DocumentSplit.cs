// Deterministic train / validation split: a document goes to validation when a hash of its key (its id or its
// text) falls below the fraction. The same key always lands on the same side, whatever the order, the machine or
// the number of threads, so a re-run or a grown corpus keeps the old validation documents in validation.
// Does not handle: stratification or exact split sizes (the validation share is the fraction on average).
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Quill.Data.Cleaning;

/// <summary>Hash-based train / validation assignment.</summary>
public static class DocumentSplit
{
    /// <summary>True when the document with this key belongs to the validation split.</summary>
    /// <param name="key">A document id or its text.</param>
    /// <param name="validationFraction">Share of documents in validation, in [0, 1].</param>
    public static bool IsValidation(string key, double validationFraction)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (double.IsNaN(validationFraction) || validationFraction < 0 || validationFraction > 1)
        {
            throw new InvalidConfigException($"validation fraction must be between 0 and 1 (got {validationFraction}).");
        }
        return UnitHash(key) < validationFraction;
    }

    /// <summary>The key's position in [0, 1), uniform over keys.</summary>
    public static double UnitHash(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(MemoryMarshal.AsBytes(key.AsSpan()), digest);
        ulong v = System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(digest);
        return (v >> 11) * (1.0 / (1UL << 53));
    }
}
