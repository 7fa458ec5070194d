using Quill.Data.Dedup;

namespace Quill.Tests.Data.Dedup;

public class MinHashTests
{
    private static string Words(IEnumerable<int> ids) => string.Join(' ', ids.Select(i => "w" + i));

    [Fact]
    public void Simd_signature_equals_reference()
    {
        var rng = new Random(3);
        foreach (int perms in new[] { 8, 64, 128, 256 })
        {
            var h = new MinHasher(perms, 5, 42);
            var shingles = Enumerable.Range(0, 500).Select(_ => (ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 40)).ToArray();
            var fast = new uint[perms];
            var slow = new uint[perms];
            h.ComputeSignature(shingles, fast);
            h.ComputeSignatureReference(shingles, slow);
            Assert.Equal(slow, fast);
        }
    }

    [Theory]
    [InlineData(0.9)]
    [InlineData(0.7)]
    [InlineData(0.5)]
    [InlineData(0.2)]
    public void Similarity_estimates_word_jaccard(double jaccard)
    {
        // Shingle size 1: the shingle sets are the word sets, so the true Jaccard is known exactly.
        var h = new MinHasher(256, 1, 7);
        // |A| = |B| = 200: A = [0, 200), B shares `s` words. J = s / (400 - s).
        int s = (int)Math.Round(400 * jaccard / (1 + jaccard));
        double truth = s / (400.0 - s);
        string a = Words(Enumerable.Range(0, 200));
        string b = Words(Enumerable.Range(200 - s, 200));
        double est = MinHasher.Similarity(h.Signature(a), h.Signature(b));
        Assert.InRange(est, truth - 0.1, truth + 0.1);
    }

    [Fact]
    public void Text_case_and_spacing_do_not_matter_but_word_order_does_for_shingles()
    {
        var h = new MinHasher(64, 3, 1);
        Assert.Equal(h.Signature("The quick brown fox jumps"), h.Signature("the  QUICK brown\nfox jumps"));
        Assert.NotEqual(h.Signature("the quick brown fox jumps"), h.Signature("jumps fox brown quick the"));
    }

    // Pairs with a known word-set Jaccard J against thresholds on either side, margins >= 0.1.
    [Theory]
    [InlineData(0.95, 0.8, true)]
    [InlineData(0.95, 1.0, false)]
    [InlineData(0.82, 0.7, true)]
    [InlineData(0.82, 0.95, false)]
    [InlineData(0.6, 0.45, true)]
    [InlineData(0.6, 0.75, false)]
    [InlineData(0.3, 0.5, false)]
    public void Lsh_finds_a_pair_exactly_when_its_similarity_clears_the_threshold(double jaccard, double threshold, bool found)
    {
        var h = new MinHasher(256, 1, 11);
        var index = new LshIndex(256, 64); // 4 rows per band: candidates even at J = 0.45
        int s = (int)Math.Round(600 * jaccard / (1 + jaccard));
        for (int other = 0; other < 50; other++) index.Add(h.Signature(Words(Enumerable.Range(10_000 + other * 300, 300))));
        index.Add(h.Signature(Words(Enumerable.Range(0, 300))));
        int match = index.FindSimilar(h.Signature(Words(Enumerable.Range(300 - s, 300))), threshold, out double sim);
        Assert.Equal(found, match == 50);
        if (!found) Assert.Equal(-1, match);
        Assert.True(found ? sim >= threshold : sim < threshold);
    }

    [Fact]
    public void Banding_controls_what_is_compared()
    {
        var strict = new LshIndex(128, 4);  // 32 rows per band: J = 0.6 almost never collides
        var loose = new LshIndex(128, 32);  // 4 rows per band: J = 0.6 collides almost always
        Assert.True(strict.CandidateProbability(0.6) < 0.001);
        Assert.True(loose.CandidateProbability(0.6) > 0.98);
        var h = new MinHasher(128, 1, 5);
        uint[] a = h.Signature(Words(Enumerable.Range(0, 300)));
        uint[] b = h.Signature(Words(Enumerable.Range(75, 300))); // J = 225 / 375 = 0.6
        strict.Add(a);
        loose.Add(a);
        Assert.Equal(-1, strict.FindSimilar(b, 0.5, out _));
        Assert.Equal(0, loose.FindSimilar(b, 0.5, out _));
    }

    [Fact]
    public void Content_hash_is_stable_and_distinguishes_texts()
    {
        Assert.Equal(ContentHash.Of("abc"), ContentHash.Of(new string("abc".ToCharArray())));
        Assert.NotEqual(ContentHash.Of("abc"), ContentHash.Of("abd"));
        Assert.Equal(16, ContentHash.ShortId(ContentHash.Of("abc")).Length);
    }
}
