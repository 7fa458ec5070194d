// Holds every Gemm path this machine can run (packed and thin, each in AVX-512, AVX2 and scalar) against
// its reference twin over ragged shapes, all four transpose combinations, strides wider than the matrices, and
// alpha / beta, with an error bound from float rounding; and checks the edge cases (beta = 0 over NaN, k = 0,
// bitwise agreement across thread counts, argument checks). The twin itself is checked against double sums.
// Glossary: M, N, K = rows of C, columns of C, shared dimension.
using Quill.Kernels;

namespace Quill.Tests.Kernels;

public class GemmTests
{
    /// <summary>Shapes chosen to cross every tile and block edge of the kernels (MR 4/6/12, NR 4/16/32, KC 256, the thin path's row groups and its 1,024-deep strips).</summary>
    private static readonly (int M, int N, int K)[] Shapes =
    [
        (1, 1, 1), (1, 37, 19), (2, 64, 9), (3, 33, 40), (4, 100, 257), (5, 7, 3), (6, 16, 8), (11, 31, 64),
        (12, 32, 256), (13, 33, 257), (25, 49, 100), (37, 65, 513), (150, 20, 30), (20, 150, 31), (7, 2100, 3),
        (3, 10, 0), (13, 40, 0), (9, 70, 2100), (16, 64, 1030),
    ];

    public static TheoryData<string> Paths()
    {
        var data = new TheoryData<string>();
        foreach (GemmPath path in Enum.GetValues<GemmPath>())
            if (path != GemmPath.Auto && Gemm.IsSupported(path)) data.Add(path.ToString());
        return data;
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void Path_MatchesReference_AcrossShapesLayoutsAndScalars(string pathName)
    {
        var path = Enum.Parse<GemmPath>(pathName);
        var random = new Random(1234);
        foreach (var (m, n, k) in Shapes)
        {
            if (pathName.StartsWith("Thin", StringComparison.Ordinal) && m > Gemm.ThinRows) continue;
            foreach (bool transA in new[] { false, true })
            {
                foreach (bool transB in new[] { false, true })
                {
                    // Strides wider than the rows, so a kernel that ignores them reads the wrong floats.
                    int lda = (transA ? m : k) + 3, ldb = (transB ? k : n) + 5, ldc = n + 2;
                    float alpha = random.Next(3) switch { 0 => 1f, 1 => -0.5f, _ => 1.75f };
                    float beta = random.Next(3) switch { 0 => 0f, 1 => 1f, _ => -0.25f };
                    var a = RandomMatrix(random, (transA ? k : m) * lda);
                    var b = RandomMatrix(random, (transB ? n : k) * ldb);
                    var c = RandomMatrix(random, m * ldc);
                    var expected = (float[])c.Clone();
                    GemmReference.Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, expected, ldc);
                    var actual = (float[])c.Clone();
                    Gemm.Run(path, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, actual, ldc, 0);

                    string where = $"{path} M={m} N={n} K={k} transA={transA} transB={transB} alpha={alpha} beta={beta}";
                    for (int i = 0; i < m; i++)
                    {
                        for (int j = 0; j < n; j++)
                        {
                            double bound = Bound(transA, transB, i, j, k, alpha, a, lda, b, ldb, beta, c[i * ldc + j]);
                            double error = Math.Abs(actual[i * ldc + j] - expected[i * ldc + j]);
                            Assert.True(error <= bound, $"{where}: C[{i},{j}] = {actual[i * ldc + j]}, reference {expected[i * ldc + j]}");
                        }
                        for (int j = n; j < ldc && i * ldc + j < c.Length; j++)
                            Assert.True(actual[i * ldc + j] == c[i * ldc + j], $"{where}: wrote the stride padding at C[{i},{j}]");
                    }
                }
            }
        }
    }

    [Fact]
    public void Reference_MatchesDoublePrecisionSums()
    {
        var random = new Random(7);
        foreach (var (m, n, k) in new[] { (3, 5, 7), (9, 4, 130) })
        {
            foreach (bool transA in new[] { false, true })
            {
                foreach (bool transB in new[] { false, true })
                {
                    int lda = transA ? m : k, ldb = transB ? k : n;
                    var a = RandomMatrix(random, m * k);
                    var b = RandomMatrix(random, k * n);
                    var c = RandomMatrix(random, m * n);
                    var actual = (float[])c.Clone();
                    GemmReference.Sgemm(transA, transB, m, n, k, 0.5f, a, lda, b, ldb, 2f, actual, n);
                    for (int i = 0; i < m; i++)
                    {
                        for (int j = 0; j < n; j++)
                        {
                            double exact = 2.0 * c[i * n + j];
                            for (int p = 0; p < k; p++)
                                exact += 0.5 * At(a, lda, transA, i, p) * At(b, ldb, !transB, j, p);
                            double bound = Bound(transA, transB, i, j, k, 0.5f, a, lda, b, ldb, 2f, c[i * n + j]) / 2;
                            Assert.True(Math.Abs(actual[i * n + j] - exact) <= bound, $"C[{i},{j}] = {actual[i * n + j]}, exact {exact}");
                        }
                    }
                }
            }
        }
    }

    [Fact]
    public void Reference_SmallProduct_MatchesHandComputation()
    {
        // [[1, 2, 3], [4, 5, 6]] · [[7, 8], [9, 10], [11, 12]] = [[58, 64], [139, 154]]
        float[] a = [1, 2, 3, 4, 5, 6], b = [7, 8, 9, 10, 11, 12], c = new float[4];
        GemmReference.Sgemm(false, false, 2, 2, 3, 1f, a, 3, b, 2, 0f, c, 2);
        Assert.Equal(new float[] { 58, 64, 139, 154 }, c);
    }

    [Theory]
    [InlineData(3, 40, 50)]
    [InlineData(200, 70, 300)]
    public void BetaZero_OverwritesNaNInC(int m, int n, int k)
    {
        var random = new Random(3);
        var a = RandomMatrix(random, m * k);
        var b = RandomMatrix(random, k * n);
        var c = new float[m * n];
        Array.Fill(c, float.NaN);
        Gemm.Sgemm(false, false, m, n, k, 1f, a, k, b, n, 0f, c, n);
        Assert.All(c, x => Assert.True(float.IsFinite(x)));
    }

    [Fact]
    public void EmptyProduct_ScalesCByBeta()
    {
        var c = new float[] { 1, 2, 3, 4, float.NaN, 6 };
        Gemm.Sgemm(false, false, 2, 2, 0, 1f, [], 1, [], 2, 3f, c, 3);
        Assert.Equal(new float[] { 3, 6, 3, 12, float.NaN, 6 }, c);
        var d = new float[] { float.NaN, 2, 3, 4 };
        Gemm.Sgemm(false, true, 2, 2, 3, 0f, new float[6], 3, new float[6], 3, 0f, d, 2);
        Assert.Equal(new float[4], d);
    }

    [Theory]
    [InlineData(1, 2000, 200, true)]
    [InlineData(3, 3000, 100, false)]
    [InlineData(300, 500, 100, false)]
    [InlineData(700, 48, 300, true)]
    [InlineData(48, 700, 300, true)]
    [InlineData(256, 700, 300, false)] // 128 rows a thread but more columns: each thread its own columns, packing all of A
    [InlineData(256, 200, 300, false)] // each thread its own rows, packing all of B
    [InlineData(400, 64, 500, false)] // own rows, the tiles spread evenly over the threads
    [InlineData(200, 200, 300, false)] // under 128 rows and columns a thread: the threads share B (two row blocks, a 200 x 256 block of B packed by both)
    [InlineData(120, 250, 600, true)] // shared B, several k blocks, column slices of one row block
    public void Threads_GiveBitwiseTheSameResultAsOneThread(int m, int n, int k, bool transB)
    {
        var random = new Random(11);
        var a = RandomMatrix(random, m * k);
        var b = RandomMatrix(random, k * n);
        int ldb = transB ? k : n;
        foreach (GemmPath path in Enum.GetValues<GemmPath>())
        {
            bool thin = path.ToString().StartsWith("Thin", StringComparison.Ordinal);
            if (path == GemmPath.Auto || !Gemm.IsSupported(path) || (thin && m > Gemm.ThinRows)) continue;
            var one = new float[m * n];
            var all = new float[m * n];
            Gemm.Run(path, false, transB, m, n, k, 1f, a, k, b, ldb, 0f, one, n, maxThreads: 1);
            Gemm.Run(path, false, transB, m, n, k, 1f, a, k, b, ldb, 0f, all, n, maxThreads: 0);
            Assert.True(one.AsSpan().SequenceEqual(all), $"{path} differs between 1 and {KernelThreads.Count} threads");
        }
    }

    /// <summary>
    /// The bias epilogue (added in registers on whole tiles by the x86 kernels, seeded into C elsewhere) gives bit for bit what a C prefilled
    /// with beta * C + bias and multiplied with beta 1 gives: every path, the ragged shapes, k = 0, both transposes,
    /// and the shapes where two threads split C's columns (the bias offset with them) or share B.
    /// </summary>
    [Theory]
    [MemberData(nameof(Paths))]
    public void Bias_EqualsPrefilledC_BitForBit(string pathName)
    {
        var path = Enum.Parse<GemmPath>(pathName);
        var random = new Random(99);
        (int M, int N, int K)[] parallel = [(256, 700, 300), (256, 200, 300), (120, 250, 600), (700, 48, 300)];
        foreach (var (m, n, k) in Shapes.Concat(parallel))
        {
            if (pathName.StartsWith("Thin", StringComparison.Ordinal) && m > Gemm.ThinRows) continue;
            foreach (bool transA in new[] { false, true })
            {
                foreach (bool transB in new[] { false, true })
                {
                    int lda = (transA ? m : k) + 1, ldb = (transB ? k : n) + 2, ldc = n + 3;
                    float alpha = random.Next(2) == 0 ? 1f : -0.5f;
                    float beta = random.Next(3) switch { 0 => 0f, 1 => 1f, _ => -0.25f };
                    var a = RandomMatrix(random, (transA ? k : m) * lda);
                    var b = RandomMatrix(random, (transB ? n : k) * ldb);
                    var bias = RandomMatrix(random, n);
                    var c = RandomMatrix(random, m * ldc);
                    var expected = (float[])c.Clone();
                    for (int i = 0; i < m; i++)
                        for (int j = 0; j < n; j++)
                            expected[i * ldc + j] = (beta == 0f ? 0f : beta * c[i * ldc + j]) + bias[j];
                    Gemm.Run(path, transA, transB, m, n, k, alpha, a, lda, b, ldb, 1f, expected, ldc, 0);
                    var actual = (float[])c.Clone();
                    if (beta == 0f) for (int i = 0; i < m; i++) actual[i * ldc] = float.NaN; // beta 0 ignores C
                    Gemm.Run(path, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, actual, ldc, 0, bias);
                    Assert.True(expected.AsSpan().SequenceEqual(actual),
                        $"{path} M={m} N={n} K={k} transA={transA} transB={transB} alpha={alpha} beta={beta}: the bias epilogue differs from a prefilled C");
                }
            }
        }
    }

    /// <summary>
    /// Row sums of op(A) taken beside the product (from the packed copy of A, or in a pass of their own where threads
    /// split C's columns or share blocks of A) equal, bit for bit, adding each element of the row in k order to the
    /// sum's old value, on every path, at one thread and at all; the product is unchanged.
    /// </summary>
    [Theory]
    [MemberData(nameof(Paths))]
    public void RowSums_EqualTheFoldInKOrder_BitForBit(string pathName)
    {
        var path = Enum.Parse<GemmPath>(pathName);
        var random = new Random(5);
        (int M, int N, int K)[] extra = [(256, 700, 300), (256, 200, 300), (200, 200, 300), (120, 250, 600), (1024, 256, 4096), (3, 0, 5)];
        foreach (var (m, n, k) in Shapes.Concat(extra))
        {
            if (pathName.StartsWith("Thin", StringComparison.Ordinal) && m > Gemm.ThinRows) continue;
            foreach (bool transA in new[] { false, true })
            {
                foreach (int threads in new[] { 1, 0 })
                {
                    int lda = (transA ? m : k) + 1, ldb = n + 2, ldc = n + 1;
                    var a = RandomMatrix(random, Math.Max(1, (transA ? k : m) * lda));
                    var b = RandomMatrix(random, Math.Max(1, k * ldb));
                    var start = RandomMatrix(random, m);
                    var expected = (float[])start.Clone();
                    for (int i = 0; i < m; i++)
                        for (int p = 0; p < k; p++) expected[i] += At(a, lda, transA, i, p);
                    var c = new float[Math.Max(1, m * ldc)];
                    var plain = new float[c.Length];
                    var sums = (float[])start.Clone();
                    Gemm.Run(path, transA, false, m, n, k, 1f, a, lda, b, ldb, 1f, c, ldc, threads, rowSums: sums);
                    Gemm.Run(path, transA, false, m, n, k, 1f, a, lda, b, ldb, 1f, plain, ldc, threads);
                    string where = $"{path} M={m} N={n} K={k} transA={transA} threads={threads}";
                    Assert.True(expected.AsSpan().SequenceEqual(sums), $"{where}: row sums differ from the fold in k order");
                    Assert.True(plain.AsSpan().SequenceEqual(c), $"{where}: the product changed");
                }
            }
        }
    }

    [Fact]
    public void Bias_OfTheWrongLength_Throws()
    {
        var x = new float[16];
        Assert.Throws<ArgumentException>(() => Gemm.Sgemm(false, false, 2, 4, 2, 1f, x, 2, x, 4, 0f, x, 4, new float[3]));
        Assert.Throws<ArgumentException>(() => Gemm.Sgemm(false, false, 2, 4, 2, 1f, x, 2, x, 4, 0f, x, 4, new float[5]));
    }

    [Fact]
    public void MatMul_DenseLayouts_MatchSgemm()
    {
        var random = new Random(5);
        int m = 9, k = 21, n = 35;
        var a = RandomMatrix(random, m * k);
        var b = RandomMatrix(random, k * n);
        var expected = RandomMatrix(random, m * n);
        var actual = (float[])expected.Clone();
        Gemm.Sgemm(true, true, m, n, k, 1f, a, m, b, k, 1f, expected, n);
        Gemm.MatMul(a, b, actual, m, k, n, transposeA: true, transposeB: true, accumulate: true);
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void BadArguments_Throw()
    {
        var x = new float[12];
        Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.Sgemm(false, false, -1, 2, 2, 1f, x, 2, x, 2, 0f, x, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.Sgemm(false, false, 2, 2, 3, 1f, x, 2, x, 2, 0f, x, 2));
        Assert.Throws<ArgumentException>(() => Gemm.Sgemm(false, false, 4, 4, 4, 1f, x, 4, x, 4, 0f, x, 4));
        Assert.Throws<ArgumentException>(() => Gemm.MatMul(x, x, new float[15], 4, 3, 4));
    }

    /// <summary>
    /// Twice the float rounding bound of a K-term dot product (each side within about (K + 2) * eps of exact):
    /// the most two correct float SGEMMs may differ by.
    /// </summary>
    private static double Bound(
        bool transA, bool transB, int i, int j, int k, float alpha, float[] a, int lda, float[] b, int ldb,
        float beta, float c)
    {
        double magnitude = 0;
        for (int p = 0; p < k; p++) magnitude += Math.Abs((double)At(a, lda, transA, i, p) * At(b, ldb, !transB, j, p));
        magnitude = Math.Abs(alpha) * magnitude + Math.Abs((double)beta * c);
        return 2 * (k + 3) * Math.ScaleB(1, -24) * magnitude + 1e-30;
    }

    /// <summary>Element (row, col) of a matrix stored [rows, cols] with stride ld, or of its transpose when transposed.</summary>
    private static float At(float[] x, int ld, bool transposed, int row, int col) =>
        transposed ? x[col * ld + row] : x[row * ld + col];

    private static float[] RandomMatrix(Random random, int count)
    {
        var x = new float[count];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(random.NextDouble() * 2 - 1);
        return x;
    }

    [Theory]
    [InlineData(0, 384, 384)]
    [InlineData(384, 384, 384)]
    [InlineData(1152, 384, 384)]
    [InlineData(2048, 384, 344)]   // 6 blocks (5 x 344 + 328) instead of 5 x 384 + 128
    [InlineData(385, 384, 200)]    // 2 blocks of 193 rounded up to whole transposes of 8
    [InlineData(50304, 384, 384)]  // 131 blocks of exactly 384
    public void EvenDepth_cuts_k_into_equal_blocks_of_at_most_kcMax(int k, int kcMax, int expected)
    {
        int kc = Gemm.EvenDepth(k, kcMax);
        Assert.Equal(expected, kc);
        Assert.True(kc <= kcMax && kc % 8 == 0);
    }
}
