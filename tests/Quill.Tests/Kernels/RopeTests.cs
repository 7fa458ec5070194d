// Rope: tables vs reference and PyTorch, Apply vs reference (both styles, partial rotary, strided rows, 1 and 2
// threads), inverse undoes forward, PyTorch fixtures for both styles, and the out-of-table error.
using Quill.Kernels;
using static Quill.Tests.Kernels.KernelTestUtil;

namespace Quill.Tests.Kernels;

[Collection(KernelThreadsCollection.Name)]
public class RopeTests
{
    [Fact]
    public void Tables_match_reference()
    {
        int maxT = 50, dim = 38;
        float[] c = new float[maxT * dim / 2], s = new float[c.Length], cr = new float[c.Length], sr = new float[c.Length];
        Rope.Tables(maxT, dim, 10000.0, c, s);
        RopeReference.Tables(maxT, dim, 10000.0, cr, sr);
        AssertClose(cr, c, 1e-6, 1e-6, "cos");
        AssertClose(sr, s, 1e-6, 1e-6, "sin");
    }

    [Theory]
    [InlineData(1, RopeStyle.Interleaved, 2, 5, 3, 8, 8, 0)]
    [InlineData(1, RopeStyle.Half, 2, 5, 3, 8, 8, 0)]
    [InlineData(1, RopeStyle.Half, 1, 3, 2, 70, 70, 4)]
    [InlineData(2, RopeStyle.Half, 2, 7, 4, 40, 24, 11)]
    [InlineData(2, RopeStyle.Interleaved, 2, 7, 4, 40, 24, 11)]
    [InlineData(1, RopeStyle.Interleaved, 2, 64, 8, 64, 64, 3)]
    [InlineData(2, RopeStyle.Half, 2, 64, 8, 66, 66, 3)]
    public void Apply_matches_reference(int threads, RopeStyle style, int b, int t, int h, int d, int rotaryDim, int posOffset)
    {
        int half = rotaryDim / 2, maxT = posOffset + t + 1, rowStride = h * d + 5;
        float[] cos = new float[maxT * half], sin = new float[maxT * half];
        Rope.Tables(maxT, rotaryDim, 10000.0, cos, sin);
        var rnd = new Random(b * t * d + rotaryDim);
        float[] x = Random(rnd, b * t * rowStride), xr = (float[])x.Clone();
        foreach (bool inverse in new[] { false, true })
        {
            using (Threads(threads)) Rope.Apply(x, b, t, h, d, rowStride, rotaryDim, posOffset, cos, sin, style, inverse);
            RopeReference.Apply(xr, b, t, h, d, rowStride, rotaryDim, posOffset, cos, sin, style, inverse);
            AssertClose(xr, x, 1e-5, 1e-6, inverse ? "inverse" : "forward");
        }
    }

    [Theory]
    [InlineData(RopeStyle.Interleaved)]
    [InlineData(RopeStyle.Half)]
    public void Inverse_undoes_forward_and_leaves_the_rest_alone(RopeStyle style)
    {
        int b = 1, t = 6, h = 2, d = 20, rotaryDim = 12, rowStride = 3 * h * d;
        float[] cos = new float[t * rotaryDim / 2], sin = new float[cos.Length];
        Rope.Tables(t, rotaryDim, 500.0, cos, sin);
        float[] x = Random(new Random(4), b * t * rowStride), original = (float[])x.Clone();
        Rope.Apply(x, b, t, h, d, rowStride, rotaryDim, 0, cos, sin, style, inverse: false);
        for (int r = 0; r < t; r++)
        {
            for (int k = 0; k < rowStride; k++)
            {
                bool rotated = k < h * d && k % d < rotaryDim;
                if (!rotated) Assert.Equal(original[r * rowStride + k], x[r * rowStride + k]);
            }
        }
        Assert.NotEqual(original[rowStride + 1], x[rowStride + 1]);
        Rope.Apply(x, b, t, h, d, rowStride, rotaryDim, 0, cos, sin, style, inverse: true);
        AssertClose(original, x, 1e-5, 1e-6, "round trip");
    }

    [Theory]
    [InlineData("rope_interleaved")]
    [InlineData("rope_half")]
    public void Matches_pytorch(string name)
    {
        var f = KernelFixtures.Get(name);
        int b = f.Int("b"), t = f.Int("t"), h = f.Int("h"), d = f.Int("d"), rotaryDim = f.Int("rotaryDim");
        int posOffset = f.Int("posOffset"), maxT = f.Int("maxT");
        var style = f.GetProperty("style").GetString() == "half" ? RopeStyle.Half : RopeStyle.Interleaved;
        float[] cos = new float[maxT * rotaryDim / 2], sin = new float[cos.Length];
        Rope.Tables(maxT, rotaryDim, f.Double("theta"), cos, sin);
        AssertClose(f.Floats("cos"), cos, 1e-6, 1e-6, "cos");
        AssertClose(f.Floats("sin"), sin, 1e-6, 1e-6, "sin");
        float[] x = f.Floats("x"), dy = f.Floats("dy");
        Rope.Apply(x, b, t, h, d, h * d, rotaryDim, posOffset, cos, sin, style, inverse: false);
        AssertClose(f.Floats("y"), x, 1e-4, 1e-5, "y");
        Rope.Apply(dy, b, t, h, d, h * d, rotaryDim, posOffset, cos, sin, style, inverse: true);
        AssertClose(f.Floats("dx"), dy, 1e-4, 1e-5, "dx");
    }

    [Fact]
    public void Positions_beyond_the_table_throw_quill_exception()
    {
        float[] cos = new float[4 * 4], sin = new float[16];
        Rope.Tables(4, 8, 10000.0, cos, sin);
        var x = new float[3 * 8];
        var e = Assert.Throws<QuillException>(() => Rope.Apply(x, 1, 3, 1, 8, 8, 8, 2, cos, sin, RopeStyle.Half, false));
        Assert.Contains("Position 4", e.Message, StringComparison.Ordinal);
        Assert.Contains("4 positions", e.Message, StringComparison.Ordinal);
    }
}
