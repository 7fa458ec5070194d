// MinHash signatures over word shingles, for near-duplicate detection (Broder 1997).
// A document's words (whitespace-separated, case-folded) are grouped into overlapping shingles of ShingleSize
// words, each shingle hashed to 64 bits. Permutation k maps a shingle hash x to (a_k * x + b_k) mod 2^64 (a_k odd,
// multiply-add-shift hashing) and keeps the high 32 bits of the minimum: the signature is one uint per permutation.
// Two signatures agree in a slot with probability equal to the Jaccard similarity of the shingle sets.
// ComputeSignature uses Vector512/Vector256 (8/4 permutations per instruction); ComputeSignatureReference is the
// plain twin it is tested against. Documents shorter than ShingleSize form a single shingle.
// Glossary: P = number of permutations, S = number of shingles.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Quill.Data.Dedup;

/// <summary>Computes MinHash signatures of texts (thread-safe: holds only read-only parameters).</summary>
public sealed class MinHasher
{
    private readonly ulong[] a; // [P] odd multipliers
    private readonly ulong[] b; // [P] offsets

    public MinHasher(int numPermutations, int shingleSize, ulong seed)
    {
        if (numPermutations < 8 || numPermutations % 8 != 0) throw new InvalidConfigException($"dedup.num_permutations must be a positive multiple of 8 (got {numPermutations}).");
        if (shingleSize < 1) throw new InvalidConfigException($"dedup.shingle_size must be at least 1 (got {shingleSize}).");
        NumPermutations = numPermutations;
        ShingleSize = shingleSize;
        a = new ulong[numPermutations];
        b = new ulong[numPermutations];
        ulong state = seed ^ 0x5DEECE66DUL;
        for (int k = 0; k < numPermutations; k++)
        {
            a[k] = SplitMix(ref state) | 1;
            b[k] = SplitMix(ref state);
        }
    }

    // Odd constants weighting the words of a shingle by position (up to 32 words).
    private static readonly ulong[] PositionMultipliers = BuildPositionMultipliers();

    private static ulong[] BuildPositionMultipliers()
    {
        var m = new ulong[32];
        ulong state = 0x1234567UL;
        for (int k = 0; k < m.Length; k++) m[k] = SplitMix(ref state) | 1;
        return m;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsWhiteSpace(char c) => c <= ' ' ? c == ' ' || (c >= '\t' && c <= '\r') : c > '\u007F' && char.IsWhiteSpace(c);

    public int NumPermutations { get; }

    public int ShingleSize { get; }

    /// <summary>Hashes of the word shingles of <paramref name="text"/> (appended to <paramref name="shingles"/>).</summary>
    public void Shingles(ReadOnlySpan<char> text, List<ulong> shingles, List<ulong> wordScratch)
    {
        ArgumentNullException.ThrowIfNull(shingles);
        ArgumentNullException.ThrowIfNull(wordScratch);
        wordScratch.Clear();
        int i = 0;
        while (i < text.Length)
        {
            while (i < text.Length && IsWhiteSpace(text[i])) i++;
            if (i >= text.Length) break;
            ulong h = 0xCBF29CE484222325UL;
            while (i < text.Length && !IsWhiteSpace(text[i]))
            {
                char c = text[i];
                if (c < 128) c = (char)(c | ((uint)(c - 'A') <= 'Z' - 'A' ? 0x20 : 0));
                else c = char.ToLowerInvariant(c);
                h = (h ^ c) * 0x100000001B3UL;
                i++;
            }
            wordScratch.Add(h);
        }
        int n = wordScratch.Count;
        if (n == 0) return;
        int w = Math.Min(ShingleSize, n);
        // A shingle's hash: its word hashes times position-specific odd constants, summed, then mixed once.
        ReadOnlySpan<ulong> wordHashes = CollectionsMarshal.AsSpan(wordScratch);
        for (int s = 0; s + w <= n; s++)
        {
            ulong h = 0x243F6A8885A308D3UL;
            for (int k = 0; k < w; k++) h += wordHashes[s + k] * PositionMultipliers[k];
            shingles.Add(Mix(h));
        }
    }

    /// <summary>Signature of a text: [P] uints. Empty text gives all uint.MaxValue.</summary>
    public uint[] Signature(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var shingles = new List<ulong>();
        Shingles(text, shingles, new List<ulong>());
        var sig = new uint[NumPermutations];
        ComputeSignature(CollectionsMarshal.AsSpan(shingles), sig);
        return sig;
    }

    /// <summary>Signature from shingle hashes (SIMD).</summary>
    public void ComputeSignature(ReadOnlySpan<ulong> shingles, Span<uint> signature)
    {
        if (signature.Length != NumPermutations) throw new ArgumentException($"signature must have {NumPermutations} slots", nameof(signature));
        if (Vector512.IsHardwareAccelerated)
        {
            for (int p = 0; p < NumPermutations; p += 8)
            {
                var va = Vector512.Create(a.AsSpan(p, 8));
                var vb = Vector512.Create(b.AsSpan(p, 8));
                var min = Vector512<ulong>.AllBitsSet;
                foreach (ulong x in shingles) min = Vector512.Min(min, va * Vector512.Create(x) + vb);
                for (int k = 0; k < 8; k++) signature[p + k] = (uint)(min.GetElement(k) >> 32);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (int p = 0; p < NumPermutations; p += 4)
            {
                var va = Vector256.Create(a.AsSpan(p, 4));
                var vb = Vector256.Create(b.AsSpan(p, 4));
                var min = Vector256<ulong>.AllBitsSet;
                foreach (ulong x in shingles) min = Vector256.Min(min, va * Vector256.Create(x) + vb);
                for (int k = 0; k < 4; k++) signature[p + k] = (uint)(min.GetElement(k) >> 32);
            }
        }
        else
        {
            ComputeSignatureReference(shingles, signature);
        }
    }

    /// <summary>Plain scalar twin of ComputeSignature.</summary>
    public void ComputeSignatureReference(ReadOnlySpan<ulong> shingles, Span<uint> signature)
    {
        if (signature.Length != NumPermutations) throw new ArgumentException($"signature must have {NumPermutations} slots", nameof(signature));
        for (int p = 0; p < NumPermutations; p++)
        {
            ulong min = ulong.MaxValue;
            foreach (ulong x in shingles)
            {
                ulong v = unchecked(a[p] * x + b[p]);
                if (v < min) min = v;
            }
            signature[p] = (uint)(min >> 32);
        }
    }

    /// <summary>Fraction of equal slots: an estimate of the Jaccard similarity.</summary>
    public static double Similarity(ReadOnlySpan<uint> x, ReadOnlySpan<uint> y)
    {
        if (x.Length != y.Length || x.Length == 0) throw new ArgumentException("signatures must have the same nonzero length");
        int eq = 0;
        for (int k = 0; k < x.Length; k++)
        {
            if (x[k] == y[k]) eq++;
        }
        return (double)eq / x.Length;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static ulong SplitMix(ref ulong state)
    {
        state += 0x9E3779B97F4A7C15UL;
        return Mix(state);
    }
}
