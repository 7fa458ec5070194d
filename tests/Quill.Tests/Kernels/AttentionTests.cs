// Tests for Attention (fused causal self-attention): optimized kernels against the reference twin over many shapes,
// widths (512 / 256 / scalar) and thread counts; the reference backward against finite differences; both against a
// PyTorch fixture; the KV-cache decode path against the full forward.
// Glossary: B batch, T sequence length, Hq query heads, Hkv kv heads, D head size.
using System.Runtime.Intrinsics;
using System.Text.Json;
using Quill.Kernels;

namespace Quill.Tests.Kernels;

public partial class AttentionTests
{
    public static TheoryData<int, int, int, int, int, bool> Shapes => new()
    {
        // B, T, Hq, Hkv, D, fused qkv buffer
        { 1, 1, 1, 1, 8, false },
        { 2, 5, 4, 2, 8, false },
        { 1, 37, 6, 1, 16, true },
        { 2, 70, 4, 4, 64, true },
        { 1, 130, 2, 2, 20, false },
        { 1, 67, 4, 2, 33, true },
    };

    private static IEnumerable<AttentionWidth> Widths()
    {
        if (Vector512.IsHardwareAccelerated) yield return AttentionWidth.Vector512;
        if (Vector256.IsHardwareAccelerated) yield return AttentionWidth.Vector256;
        if (Vector128.IsHardwareAccelerated) yield return AttentionWidth.Vector128;
        yield return AttentionWidth.Scalar;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Optimized_matches_reference(int B, int T, int Hq, int Hkv, int D, bool fused)
    {
        var x = Inputs.Random(B, T, Hq, Hkv, D, fused, seed: B * 1000 + T * 10 + D);
        float scale = 1f / MathF.Sqrt(D);
        var oRef = new float[B * T * Hq * D];
        var lseRef = new float[B * Hq * T];
        AttentionReference.Forward(B, T, Hq, Hkv, D, scale, x.Q.Span, x.QStride, x.K.Span, x.KStride, x.V.Span, x.VStride, oRef, lseRef);
        var (dqRef, dkRef, dvRef) = x.GradBuffers();
        AttentionReference.Backward(B, T, Hq, Hkv, D, scale, x.Q.Span, x.QStride, x.K.Span, x.KStride, x.V.Span, x.VStride,
            oRef, lseRef, x.DO, dqRef.Span, dkRef.Span, dvRef.Span);

        foreach (var width in Widths())
        {
            foreach (int threads in new[] { 1, 2 })
            {
                string what = $"{width}, {threads} thread(s)";
                var o = new float[oRef.Length];
                var lse = new float[lseRef.Length];
                Attention.ForwardCore(B, T, Hq, Hkv, D, scale, x.Q.Span, x.QStride, x.K.Span, x.KStride, x.V.Span, x.VStride, o, lse, threads, width);
                AssertClose(oRef, o, 1e-4, 1e-5, "o " + what);
                AssertClose(lseRef, lse, 1e-5, 1e-5, "lse " + what);

                var (dq, dk, dv) = x.GradBuffers();
                Attention.BackwardCore(B, T, Hq, Hkv, D, scale, x.Q.Span, x.QStride, x.K.Span, x.KStride, x.V.Span, x.VStride,
                    o, lse, x.DO, dq.Span, dk.Span, dv.Span, threads, width);
                AssertClose(dqRef.Span, dq.Span, 2e-4, 2e-5, "dq " + what);
                AssertClose(dkRef.Span, dk.Span, 2e-4, 2e-5, "dk " + what);
                AssertClose(dvRef.Span, dv.Span, 2e-4, 2e-5, "dv " + what);
                x.AssertPaddingUntouched(dq, dk, dv);
            }
        }
    }

    [Fact]
    public void Reference_backward_matches_finite_differences() => CheckReferenceBackward(1, 4, 2, 1, 3, seed: 7, scale: 0.7f, mask: null);

    /// <summary>The reference backward against central differences of L = sum(o * w) (w = the inputs' dO).</summary>
    private static void CheckReferenceBackward(int B, int T, int Hq, int Hkv, int D, int seed, float scale, AttentionMask? mask)
    {
        var x = Inputs.Random(B, T, Hq, Hkv, D, fused: false, seed: seed);
        var w = x.DO;   // L = sum(o * w), so dL/do = w
        double Loss()
        {
            var o = new float[B * T * Hq * D];
            AttentionReference.Forward(B, T, Hq, Hkv, D, scale, x.Q.Span, x.QStride, x.K.Span, x.KStride, x.V.Span, x.VStride, o, new float[B * Hq * T], mask);
            double sum = 0;
            for (int i = 0; i < o.Length; i++) sum += (double)o[i] * w[i];
            return sum;
        }
        var (dq, dk, dv) = x.GradBuffers();
        AttentionReference.Backward(B, T, Hq, Hkv, D, scale, x.Q.Span, x.QStride, x.K.Span, x.KStride, x.V.Span, x.VStride,
            new float[B * T * Hq * D], new float[B * Hq * T], w, dq.Span, dk.Span, dv.Span, mask);

        const float eps = 1e-2f;
        foreach (var (input, grad, name) in new[] { (x.Q, dq, "q"), (x.K, dk, "k"), (x.V, dv, "v") })
        {
            for (int i = 0; i < input.Length; i++)
            {
                float keep = input.Span[i];
                input.Span[i] = keep + eps;
                double up = Loss();
                input.Span[i] = keep - eps;
                double down = Loss();
                input.Span[i] = keep;
                double numeric = (up - down) / (2 * eps);
                Assert.True(Math.Abs(numeric - grad.Span[i]) <= 2e-3 + 2e-2 * Math.Abs(numeric),
                    $"d{name}[{i}]: analytic {grad.Span[i]}, numeric {numeric}");
            }
        }
    }

    [Fact]
    public void Matches_pytorch_fixture()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "attention.json")));
        var root = doc.RootElement;
        int B = root.GetProperty("B").GetInt32(), T = root.GetProperty("T").GetInt32();
        int Hq = root.GetProperty("Hq").GetInt32(), Hkv = root.GetProperty("Hkv").GetInt32(), D = root.GetProperty("D").GetInt32();
        float scale = root.GetProperty("scale").GetSingle();
        float[] Get(string name) => root.GetProperty(name).EnumerateArray().Select(e => e.GetSingle()).ToArray();
        float[] q = Get("q"), k = Get("k"), v = Get("v"), dO = Get("do");
        int cq = Hq * D, ckv = Hkv * D;

        foreach (bool reference in new[] { true, false })
        {
            var o = new float[B * T * cq];
            var lse = new float[B * Hq * T];
            var dq = new float[q.Length];
            var dk = new float[k.Length];
            var dv = new float[v.Length];
            if (reference)
            {
                AttentionReference.Forward(B, T, Hq, Hkv, D, scale, q, cq, k, ckv, v, ckv, o, lse);
                AttentionReference.Backward(B, T, Hq, Hkv, D, scale, q, cq, k, ckv, v, ckv, o, lse, dO, dq, dk, dv);
            }
            else
            {
                Attention.Forward(B, T, Hq, Hkv, D, scale, q, cq, k, ckv, v, ckv, o, lse);
                Attention.Backward(B, T, Hq, Hkv, D, scale, q, cq, k, ckv, v, ckv, o, lse, dO, dq, dk, dv);
            }
            string who = reference ? "reference" : "optimized";
            AssertClose(Get("o"), o, 1e-4, 1e-5, "o " + who);
            AssertClose(Get("lse"), lse, 1e-4, 1e-5, "lse " + who);
            AssertClose(Get("dq"), dq, 1e-4, 1e-5, "dq " + who);
            AssertClose(Get("dk"), dk, 1e-4, 1e-5, "dk " + who);
            AssertClose(Get("dv"), dv, 1e-4, 1e-5, "dv " + who);
        }
    }

    [Fact]
    public void Cached_forward_matches_full_forward_and_reference()
    {
        // Prefill 10, decode 1, then a chunk of 12: the same rows as the full forward.
        CheckCached(23, 4, 2, 20, 32, seed: 11, window: 0, softcap: 0, [(0, 10), (10, 1), (11, 12)]);
    }

    [Theory]
    [InlineData(0, 0f)]
    [InlineData(7, 0f)]
    [InlineData(9, 0.5f)]
    public void Cached_forward_of_many_queries_runs_the_tiled_kernel_from_any_position(int window, float softcap)
    {
        // Chunks of CachedTiledMinRows queries or more take the training forward's tiled kernel, their queries
        // starting at pos0 (the first, third and fourth chunks here; the last runs past one key block) and their keys
        // read from the cache; with a window, the first chunk only. The second chunk is too short and runs row by row.
        int m = Attention.CachedTiledMinRows;
        CheckCached(150, 4, 2, 20, 160, seed: 12, window, softcap, [(0, m + 1), (m + 1, m - 1), (2 * m, m + 19), (3 * m + 19, 150 - 3 * m - 19)]);
    }

    /// <summary>
    /// Cached attention over chunks (pos0, count) of a T-token sequence against the reference's full forward with the
    /// same window and cap: the reference cached path and every optimized width and thread count.
    /// </summary>
    private static void CheckCached(int T, int Hq, int Hkv, int D, int maxT, int seed, int window, float softcap, (int Pos0, int Count)[] chunks)
    {
        var x = Inputs.Random(1, T, Hq, Hkv, D, fused: true, seed: seed);
        float scale = 1f / MathF.Sqrt(D);
        var full = new float[T * Hq * D];
        AttentionReference.Forward(1, T, Hq, Hkv, D, scale, x.Q.Span, x.QStride, x.K.Span, x.KStride, x.V.Span, x.VStride, full, new float[Hq * T],
            AttentionMask.Create(window, softcap));

        // Cache [Hkv, maxT, D]; positions past T stay NaN to prove they are never read.
        var kCache = new float[Hkv * maxT * D];
        var vCache = new float[Hkv * maxT * D];
        Array.Fill(kCache, float.NaN);
        Array.Fill(vCache, float.NaN);
        for (int t = 0; t < T; t++)
            for (int h = 0; h < Hkv; h++)
                for (int d = 0; d < D; d++)
                {
                    kCache[(h * maxT + t) * D + d] = x.K.Span[t * x.KStride + h * D + d];
                    vCache[(h * maxT + t) * D + d] = x.V.Span[t * x.VStride + h * D + d];
                }

        foreach (var (pos0, tq) in chunks)
        {
            var qChunk = x.Q.Span[(pos0 * x.QStride)..];
            var expect = full.AsSpan(pos0 * Hq * D, tq * Hq * D).ToArray();
            var oRef = new float[tq * Hq * D];
            AttentionReference.ForwardCached(tq, pos0, Hq, Hkv, D, scale, qChunk, x.QStride, kCache, vCache, maxT, oRef, window, softcap);
            AssertClose(expect, oRef, 1e-5, 1e-6, $"reference cached at {pos0}");
            foreach (var width in Widths())
            {
                foreach (int threads in new[] { 1, 2 })
                {
                    var o = new float[tq * Hq * D];
                    Attention.ForwardCachedCore(tq, pos0, Hq, Hkv, D, scale, qChunk, x.QStride, kCache, vCache, maxT, o, threads, width, window, softcap);
                    AssertClose(expect, o, 1e-4, 1e-5, $"cached at {pos0}, {width}, {threads} thread(s)");
                }
            }
        }
    }

    [Fact]
    public void Vector_exp_is_accurate_and_zero_for_masked_scores()
    {
        var rng = new Random(3);
        var xs = new float[4096];
        for (int i = 0; i < xs.Length; i++) xs[i] = (float)(rng.NextDouble() * 175 - 87);
        xs[0] = float.NegativeInfinity;
        xs[1] = -100f;
        xs[2] = 0f;
        for (int i = 0; i < xs.Length; i += 16)
        {
            var e512 = AttentionExp.Exp(Vector512.Create(xs, i));
            var e256 = AttentionExp.Exp(Vector256.Create(xs, i));
            for (int l = 0; l < 16; l++)
            {
                double expect = xs[i + l] < -87.3f ? 0 : Math.Exp(xs[i + l]);   // below that: denormal, flushed to 0
                float got = e512[l];
                Assert.True(Math.Abs(got - expect) <= 3e-7 * expect, $"exp({xs[i + l]}) = {got}, expected {expect}");
                if (l < 8) Assert.Equal(got, e256[l]);
            }
        }
        Assert.Equal(0f, AttentionExp.Exp(Vector512.Create(float.NegativeInfinity))[0]);
    }

    [Theory]
    [InlineData(37, 20, 0, 40)]     // ragged keys and a D that is not a multiple of 8, zero rows past the last key
    [InlineData(130, 64, 8, 256)]   // a later start (the forward packs keys as the diagonal reaches them)
    [InlineData(5, 33, 0, 16)]      // fewer keys than one group of eight
    [InlineData(64, 128, 16, 64)]
    public unsafe void Key_transpose_matches_its_scalar_twin(int rows, int D, int from, int to)
    {
        // The 8 x 8 register transpose (AVX) against the portable loop: a copy, so equal bit for bit, and neither
        // writes outside keys [from, to). The same pass asked for the padded rows too writes what Rows writes.
        int stride = 3 * D + 5, ld = AttentionPack.Stagger(to) + 3, Dp = AttentionTile.RoundUp(D, 16);
        var rng = new Random(rows * 31 + D);
        var src = new float[(rows + 16) * stride];
        for (int i = 0; i < src.Length; i++) src[i] = (float)rng.NextDouble() - 0.5f;
        var fast = new float[D * ld];
        var plain = new float[D * ld];
        var both = new float[D * ld];
        var rowsBoth = new float[to * Dp + 5];
        var rowsPlain = new float[to * Dp + 5];
        Array.Fill(fast, float.NaN);
        Array.Fill(plain, float.NaN);
        Array.Fill(both, float.NaN);
        Array.Fill(rowsBoth, float.NaN);
        Array.Fill(rowsPlain, float.NaN);
        fixed (float* ps = src, pf = fast, pp = plain, pb = both, prb = rowsBoth, prp = rowsPlain)
        {
            AttentionPack.Transposed(ps, stride, rows, D, from, to, pf, ld);
            AttentionPack.TransposedScalar(ps, stride, rows, D, from, to, pp, ld);
            AttentionPack.Transposed(ps, stride, rows, D, from, to, pb, ld, prb, Dp);
            AttentionPack.Rows(ps, stride, rows, D, 1f, from, to, prp, Dp);
        }
        Assert.Equal(fast, both);
        for (int i = 0; i < rowsPlain.Length; i++)
        {
            float expect = i >= from * Dp && i < to * Dp ? (i / Dp < rows && i % Dp < D ? src[i / Dp * stride + i % Dp] : 0f) : float.NaN;
            Assert.Equal(expect, rowsPlain[i]);
            Assert.Equal(BitConverter.SingleToInt32Bits(rowsPlain[i]), BitConverter.SingleToInt32Bits(rowsBoth[i]));
        }
        for (int d = 0; d < D; d++)
        {
            for (int j = 0; j < ld; j++)
            {
                float expect = j >= from && j < to ? (j < rows ? src[j * stride + d] : 0f) : float.NaN;
                Assert.Equal(expect, plain[d * ld + j]);
                Assert.Equal(BitConverter.SingleToInt32Bits(plain[d * ld + j]), BitConverter.SingleToInt32Bits(fast[d * ld + j]));
            }
        }
    }

    [Theory]
    [InlineData(64, false)]
    [InlineData(37, true)]
    public unsafe void Three_and_two_vector_tiles_for_16_register_machines_equal_the_four_vector_tile(int kLen, bool accumulate)
    {
        // AVX2 without AVX-512 runs Tile4's columns in blocks of three vectors and then two (16 registers): eight
        // vectors as 3 + 3 + 2. Each sum runs over t in the same order as in the four-vector block, so they agree bit
        // for bit.
        var rng = new Random(kLen);
        const int ldb = 72, ldc = 68, width = 64;
        var a = new float[4 * 70];
        var b = new float[kLen * ldb];
        var four = new float[4 * ldc];
        for (int i = 0; i < a.Length; i++) a[i] = (float)rng.NextDouble() - 0.5f;
        for (int i = 0; i < b.Length; i++) b[i] = (float)rng.NextDouble() - 0.5f;
        for (int i = 0; i < four.Length; i++) four[i] = (float)rng.NextDouble();
        var blocks = (float[])four.Clone();
        fixed (float* pa = a, pb = b, pf = four, pp = blocks)
        {
            AttentionTile.Tile4<Vec256, Vector256<float>>(pf, ldc, pa, 70, 1, pb, ldb, kLen, width, accumulate);
            AttentionTile.Tile4Triple<Vec256, Vector256<float>>(pp, ldc, pa, 70, 1, pb, ldb, kLen, accumulate);
            AttentionTile.Tile4Triple<Vec256, Vector256<float>>(pp + 24, ldc, pa, 70, 1, pb + 24, ldb, kLen, accumulate);
            AttentionTile.Tile4Pair<Vec256, Vector256<float>>(pp + 48, ldc, pa, 70, 1, pb + 48, ldb, kLen, accumulate);
        }
        Assert.Equal(four, blocks);
        Assert.NotEqual(0f, blocks[3 * ldc + 63]);
    }

    [Fact]
    public void Bad_arguments_throw()
    {
        var buf = new float[2 * 4 * 8];
        Assert.Throws<ArgumentException>(() => Attention.Forward(1, 4, 3, 2, 8, 1f, buf, 24, buf, 16, buf, 16, buf, buf));
        Assert.Throws<ArgumentException>(() => Attention.Forward(1, 4, 2, 2, 8, 1f, buf, 8, buf, 16, buf, 16, new float[64], new float[8]));
        Assert.Throws<ArgumentException>(() => Attention.Forward(2, 4, 2, 2, 8, 1f, buf, 16, buf, 16, buf, 16, new float[128], new float[16]));
        Assert.Throws<ArgumentException>(() => Attention.ForwardCached(2, 7, 1, 1, 8, 1f, buf, 8, buf, buf, 8, new float[16]));
    }

    private static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double rtol, double atol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double diff = Math.Abs((double)expected[i] - actual[i]);
            if (!(diff <= atol + rtol * Math.Abs(expected[i])))
                Assert.Fail($"{what}: element {i} is {actual[i]}, expected {expected[i]} (diff {diff:g3})");
        }
    }

    /// <summary>Random q, k, v and dO, either separate contiguous buffers or three slices of one fused buffer whose
    /// rows carry extra padding columns (to check that the gradients leave foreign columns alone).</summary>
    private sealed class Inputs
    {
        private const int Pad = 3;
        private const float Sentinel = 12345f;
        public Memory<float> Q, K, V;
        public float[] DO = [];
        public int QStride, KStride, VStride;
        private int rows, cq, ckv;
        private bool fused;

        public static Inputs Random(int B, int T, int Hq, int Hkv, int D, bool fused, int seed)
        {
            var rng = new Random(seed);
            var x = new Inputs { rows = B * T, cq = Hq * D, ckv = Hkv * D, fused = fused };
            float Next() => (float)(rng.NextDouble() * 2 - 1);
            if (fused)
            {
                int stride = x.cq + 2 * x.ckv + Pad;
                var buf = new float[x.rows * stride];
                for (int i = 0; i < buf.Length; i++) buf[i] = Next();
                x.QStride = x.KStride = x.VStride = stride;
                x.Q = buf;
                x.K = buf.AsMemory(x.cq);
                x.V = buf.AsMemory(x.cq + x.ckv);
            }
            else
            {
                x.QStride = x.cq;
                x.KStride = x.VStride = x.ckv;
                x.Q = Enumerable.Range(0, x.rows * x.cq).Select(_ => Next()).ToArray();
                x.K = Enumerable.Range(0, x.rows * x.ckv).Select(_ => Next()).ToArray();
                x.V = Enumerable.Range(0, x.rows * x.ckv).Select(_ => Next()).ToArray();
            }
            x.DO = Enumerable.Range(0, x.rows * x.cq).Select(_ => Next()).ToArray();
            return x;
        }

        /// <summary>dq, dk, dv in the same layout as q, k, v, prefilled with a sentinel.</summary>
        public (Memory<float> dq, Memory<float> dk, Memory<float> dv) GradBuffers()
        {
            if (fused)
            {
                var buf = new float[rows * QStride];
                Array.Fill(buf, Sentinel);
                return (buf, buf.AsMemory(cq), buf.AsMemory(cq + ckv));
            }
            var dq = new float[rows * cq];
            var dk = new float[rows * ckv];
            var dv = new float[rows * ckv];
            Array.Fill(dq, Sentinel);
            Array.Fill(dk, Sentinel);
            Array.Fill(dv, Sentinel);
            return (dq, dk, dv);
        }

        public void AssertPaddingUntouched(Memory<float> dq, Memory<float> dk, Memory<float> dv)
        {
            if (!fused)
            {
                Assert.DoesNotContain(Sentinel, dq.ToArray());
                Assert.DoesNotContain(Sentinel, dk.ToArray());
                Assert.DoesNotContain(Sentinel, dv.ToArray());
                return;
            }
            var buf = dq.Span;
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < QStride; c++)
                    Assert.True(c < cq + 2 * ckv ? buf[r * QStride + c] != Sentinel : buf[r * QStride + c] == Sentinel,
                        $"fused gradient row {r} column {c}");
        }
    }
}
