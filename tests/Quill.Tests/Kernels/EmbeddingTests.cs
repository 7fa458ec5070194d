// Embedding: optimized vs reference (repeated ids, 1 and 2 threads), PyTorch fixture, out-of-range ids.
using Quill.Kernels;
using static Quill.Tests.Kernels.KernelTestUtil;

namespace Quill.Tests.Kernels;

[Collection(KernelThreadsCollection.Name)]
public class EmbeddingTests
{
    [Theory]
    [InlineData(1, 9, 11, 6)]
    [InlineData(1, 300, 50, 257)]
    [InlineData(2, 300, 50, 257)]
    [InlineData(2, 2000, 7, 33)]
    public void Matches_reference(int threads, int n, int v, int c)
    {
        var rnd = new Random(n + v + c);
        int[] tokens = Enumerable.Range(0, n).Select(_ => rnd.Next(v)).ToArray();
        float[] table = Random(rnd, v * c), dy = Random(rnd, n * c), y = new float[n * c], yr = new float[n * c];
        float[] dtable = Random(rnd, v * c), dtableR = (float[])dtable.Clone();
        using (Threads(threads))
        {
            Embedding.Forward(tokens, table, y, c);
            Embedding.Backward(tokens, dy, dtable, c);
        }
        EmbeddingReference.Forward(tokens, table, yr, c);
        EmbeddingReference.Backward(tokens, dy, dtableR, c);
        Assert.Equal(yr, y);
        Assert.Equal(dtableR, dtable);
    }

    [Fact]
    public void Matches_pytorch()
    {
        var f = KernelFixtures.Get("embedding");
        int v = f.Int("v"), c = f.Int("c");
        int[] tokens = f.Ints("tokens");
        float[] y = new float[tokens.Length * c], dtable = new float[v * c];
        Embedding.Forward(tokens, f.Floats("table"), y, c);
        Embedding.Backward(tokens, f.Floats("dy"), dtable, c);
        AssertClose(f.Floats("y"), y, 0, 0, "y");
        AssertClose(f.Floats("dtable"), dtable, 1e-6, 1e-6, "dtable");
    }

    [Theory]
    [InlineData(10)]
    [InlineData(-1)]
    public void Out_of_range_ids_throw_quill_exception(int badId)
    {
        int[] tokens = [1, 2, badId, 3];
        float[] table = new float[10 * 4], y = new float[tokens.Length * 4];
        var e = Assert.Throws<QuillException>(() => Embedding.Forward(tokens, table, y, 4));
        Assert.Contains($"Token id {badId} at position 2", e.Message, StringComparison.Ordinal);
        Assert.Contains("10 tokens", e.Message, StringComparison.Ordinal);
        Assert.Throws<QuillException>(() => Embedding.Backward(tokens, y, table, 4));
    }
}
