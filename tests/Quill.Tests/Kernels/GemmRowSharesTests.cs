// Holds the packed SGEMM's row shares (each thread owns a share of C's rows; one that is done with a block of B takes
// the back of another share at that block) to the one-thread loop nest, bit for bit, with the bias and the row sums:
// shares run one after another on one thread in several orders (the first then takes every other share's rows at
// every block, and the rest find nothing left), and shares raced on real threads with one started late, so tiles
// change hands in the middle of the product. Small blocks give twelve levels (four k blocks times three n blocks).
// Glossary: level = one KC x NC block of B, in loop order.
using Quill.Kernels;

namespace Quill.Tests.Kernels;

public unsafe class GemmRowSharesTests
{
    public static TheoryData<string> Kernels()
    {
        var data = new TheoryData<string> { nameof(ScalarKernel4x4) };
        if (Avx512Kernel12x32.IsSupported) data.Add(nameof(Avx512Kernel12x32));
        if (Avx2Kernel6x16.IsSupported) data.Add(nameof(Avx2Kernel6x16));
        if (NeonKernel8x12.IsSupported) data.Add(nameof(NeonKernel8x12));
        return data;
    }

    [Theory]
    [MemberData(nameof(Kernels))]
    public void Shares_RunOneAfterAnother_InAnyOrder_GiveTheOneThreadResult(string kernel) => Dispatch(kernel, raced: false);

    [Theory]
    [MemberData(nameof(Kernels))]
    public void Shares_RacedOnThreads_OneStartedLate_GiveTheOneThreadResult(string kernel) => Dispatch(kernel, raced: true);

    private static void Dispatch(string kernel, bool raced)
    {
        switch (kernel)
        {
            case nameof(ScalarKernel4x4): Check<ScalarKernel4x4>(raced); break;
            case nameof(Avx512Kernel12x32): Check<Avx512Kernel12x32>(raced); break;
            case nameof(Avx2Kernel6x16): Check<Avx2Kernel6x16>(raced); break;
            case nameof(NeonKernel8x12): Check<NeonKernel8x12>(raced); break;
            default: throw new ArgumentException(kernel, nameof(kernel));
        }
    }

    private static void Check<TKernel>(bool raced) where TKernel : IGemmMicroKernel
    {
        int mr = TKernel.MR, nr = TKernel.NR;
        var blocking = new GemmBlocking(MC: 2 * mr, KC: 16, NC: 2 * nr);
        int m = 9 * mr + 3, n = 5 * nr + 3, k = 50;
        var random = new Random(3);
        int[][] orders = raced ? [[0, 1], [1, 0], [2, 0, 1]] : [[0, 1], [1, 0], [2, 0, 1], [1, 2, 0], [0, 1, 2, 3]];
        foreach (bool transA in new[] { false, true })
        {
            foreach (bool transB in new[] { false, true })
            {
                foreach (bool accumulate in new[] { false, true })
                {
                    int lda = (transA ? m : k) + 1, ldb = (transB ? k : n) + 2, ldc = n + 1;
                    var a = KernelTestUtil.Random(random, (transA ? k : m) * lda);
                    var b = KernelTestUtil.Random(random, (transB ? n : k) * ldb);
                    var c = KernelTestUtil.Random(random, m * ldc);
                    var bias = KernelTestUtil.Random(random, n);
                    var sums = KernelTestUtil.Random(random, m);
                    var (expected, expectedSums) = Product<TKernel>(blocking, a, lda, transA, b, ldb, transB, c, ldc, m, n, k, bias, sums, accumulate, null, 0);
                    for (int o = 0; o < orders.Length; o++)
                    {
                        int repeats = raced ? 12 : 1;
                        for (int r = 0; r < repeats; r++)
                        {
                            var (actual, actualSums) = Product<TKernel>(blocking, a, lda, transA, b, ldb, transB, c, ldc, m, n, k, bias, sums,
                                accumulate, orders[o], raced ? 1 + 400 * r : 0);
                            string where = $"{typeof(TKernel).Name} transA={transA} transB={transB} accumulate={accumulate} shares {string.Join(",", orders[o])} delay {r}";
                            Assert.True(expected.AsSpan().SequenceEqual(actual), $"{where}: C differs from one thread's");
                            Assert.True(expectedSums.AsSpan().SequenceEqual(actualSums), $"{where}: row sums differ from one thread's");
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// C = (accumulate ? C : 0) + bias + alpha A B with the row sums folded, by the one-thread loop nest (order null) or
    /// by row shares run in `order`: one after another on this thread, or (delay > 0) each on its own thread, the first
    /// in the order started `delay` spins late.
    /// </summary>
    private static (float[] C, float[] Sums) Product<TKernel>(GemmBlocking blocking, float[] a, int lda, bool transA, float[] b, int ldb, bool transB,
        float[] c0, int ldc, int m, int n, int k, float[] bias, float[] sums0, bool accumulate, int[]? order, int delay)
        where TKernel : IGemmMicroKernel
    {
        var c = (float[])c0.Clone();
        var sums = (float[])sums0.Clone();
        fixed (float* pa = a, pb = b, pc = c, pbias = bias, psums = sums)
        {
            var x = new Operands(pa, lda, transA, pb, ldb, transB, pc, ldc, m, n, k, -0.75f, accumulate ? 1f : 0f, pbias) { RowSums = psums };
            if (order == null)
            {
                GemmDriver<TKernel>.Run(blocking, x, accumulate, 1);
            }
            else
            {
                var shares = new GemmDriver<TKernel>.RowShares(blocking, x, accumulate, order.Length);
                if (delay == 0)
                {
                    foreach (int share in order) shares.Run(share);
                }
                else
                {
                    var threads = order.Select((share, i) => new Thread(() =>
                    {
                        if (i == 0) Thread.SpinWait(delay);
                        shares.Run(share);
                    })).ToArray();
                    foreach (var t in threads) t.Start();
                    foreach (var t in threads) t.Join();
                }
            }
        }
        return (c, sums);
    }
}
