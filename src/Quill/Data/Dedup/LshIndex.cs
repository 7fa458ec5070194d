// Locality-sensitive hashing over MinHash signatures: the P slots are cut into B bands of R = P / B rows; two
// documents become candidates when any band matches exactly, which happens with probability 1 - (1 - J^R)^B for
// Jaccard similarity J (an S-curve whose steep part sits near (1/B)^(1/R)). Each candidate is then confirmed by
// the fraction of equal slots against the threshold, so the threshold, not the banding, decides what is removed;
// the banding only decides what is compared. Per kept document the index stores, per band, the first document
// with that band key, and a 16-bit fingerprint of each slot (b-bit MinHash: two different 32-bit minima agree in
// their low 16 bits with probability 2^-16, a negligible bias). Memory: about P * 2 + B * 28 bytes per document
// (about 0.7 KB with the defaults).
// Glossary: P = permutations, B = bands, R = rows per band, J = Jaccard similarity.
// Does not handle: removal of documents from the index, or persistence (a resumed run rebuilds it).
namespace Quill.Data.Dedup;

/// <summary>An LSH index of kept documents' MinHash signatures.</summary>
public sealed class LshIndex
{
    private readonly int permutations;
    private readonly int bands;
    private readonly int rows;
    private readonly Dictionary<ulong, int>[] tables;
    private ushort[] fingerprints = new ushort[4096]; // [documents, P]

    public LshIndex(int numPermutations, int bands)
    {
        if (bands < 1 || numPermutations % bands != 0) throw new InvalidConfigException($"dedup.bands ({bands}) must divide dedup.num_permutations ({numPermutations}).");
        permutations = numPermutations;
        this.bands = bands;
        rows = numPermutations / bands;
        tables = new Dictionary<ulong, int>[bands];
        for (int i = 0; i < bands; i++) tables[i] = [];
    }

    /// <summary>Documents added.</summary>
    public int Count { get; private set; }

    /// <summary>Probability that two documents with Jaccard similarity j share at least one band.</summary>
    public double CandidateProbability(double j) => 1 - Math.Pow(1 - Math.Pow(j, rows), bands);

    /// <summary>
    /// Looks for an added document whose estimated similarity to <paramref name="signature"/> is at least
    /// <paramref name="threshold"/>. Returns its index (in order of Add) or -1, and the best similarity seen.
    /// </summary>
    public int FindSimilar(ReadOnlySpan<uint> signature, double threshold, out double similarity)
    {
        CheckLength(signature);
        similarity = 0;
        int found = -1;
        Span<int> checkedDocs = stackalloc int[bands];
        int nChecked = 0;
        for (int band = 0; band < bands; band++)
        {
            if (!tables[band].TryGetValue(BandKey(signature, band), out int doc)) continue;
            if (checkedDocs[..nChecked].Contains(doc)) continue;
            checkedDocs[nChecked++] = doc;
            double s = Estimate(signature, doc);
            if (s > similarity) similarity = s;
            if (s >= threshold && found < 0) found = doc;
            if (found >= 0 && s >= 1.0) break;
        }
        return found;
    }

    /// <summary>Adds a kept document; returns its index.</summary>
    public int Add(ReadOnlySpan<uint> signature)
    {
        CheckLength(signature);
        int doc = Count;
        if ((long)(doc + 1) * permutations > fingerprints.Length)
        {
            long grow = Math.Max((long)fingerprints.Length * 2, (long)(doc + 1) * permutations);
            Array.Resize(ref fingerprints, (int)Math.Min(grow, Array.MaxLength));
        }
        Span<ushort> fp = fingerprints.AsSpan(doc * permutations, permutations);
        for (int k = 0; k < permutations; k++) fp[k] = (ushort)signature[k];
        for (int band = 0; band < bands; band++) tables[band].TryAdd(BandKey(signature, band), doc);
        Count++;
        return doc;
    }

    private double Estimate(ReadOnlySpan<uint> signature, int doc)
    {
        ReadOnlySpan<ushort> fp = fingerprints.AsSpan(doc * permutations, permutations);
        int eq = 0;
        for (int k = 0; k < permutations; k++)
        {
            if ((ushort)signature[k] == fp[k]) eq++;
        }
        return (double)eq / permutations;
    }

    private ulong BandKey(ReadOnlySpan<uint> signature, int band)
    {
        ReadOnlySpan<uint> slice = signature.Slice(band * rows, rows);
        ulong h = 0x9E3779B97F4A7C15UL * (ulong)(band + 1);
        foreach (uint v in slice)
        {
            h ^= v;
            h *= 0xFF51AFD7ED558CCDUL;
            h ^= h >> 32;
        }
        return h;
    }

    private void CheckLength(ReadOnlySpan<uint> signature)
    {
        if (signature.Length != permutations) throw new ArgumentException($"signature must have {permutations} slots (got {signature.Length})");
    }
}
