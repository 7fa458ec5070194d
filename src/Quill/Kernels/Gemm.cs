// Single-precision matrix multiply (SGEMM) on row-major matrices, the hot loop of training and inference:
// C = alpha * op(A) · op(B) + beta * C, op = identity or transpose, any leading dimensions.
// Checks the arguments, picks a path (thin rows without packing for M <= 4, else the packed, register-blocked
// kernel for this CPU), which run on up to KernelThreads.Count threads when the product is big enough to pay for it.
// Does not handle other element types, column-major storage or batched products (callers loop over batches).
// Two extras for linear layers: a bias added to every row of C (by the micro-kernel in registers as it stores a tile),
// and the row sums of op(A) (a bias gradient, folded from the packed copy of A).
// Glossary: M, N, K = rows of C, columns of C, shared dimension; lda, ldb, ldc = row strides in floats.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Quill.Kernels;

/// <summary>The widest vectors an implementation uses.</summary>
internal enum GemmIsa
{
    Scalar,
    Avx2,
    Avx512,
    Neon,
}

/// <summary>Which implementation Gemm runs: Auto in production; tests and benchmarks pin one to compare them.</summary>
internal enum GemmPath
{
    Auto,
    PackedAvx512,
    PackedAvx2,
    PackedNeon,
    PackedScalar,
    ThinAvx512,
    ThinAvx2,
    ThinNeon,
    ThinScalar,
}

/// <summary>
/// Single-precision general matrix multiply on row-major matrices, packed and register-blocked for the CPU,
/// multithreaded over <see cref="KernelThreads.Count"/>. Its plain twin is <see cref="GemmReference"/>.
/// </summary>
public static unsafe class Gemm
{
    /// <summary>
    /// The most rows of C the thin path (no packing) takes. With its vector loops it runs every product of up to 16
    /// rows: LoRA's rank-8 and rank-16 products stream their activations once instead of packing them (Zen 4, two
    /// threads: 8 x 1024 x 768 NT 103-115 GFLOP/s packed, 140-157 thin; 16 x 3072 x 768 NT 150 and 167). On NEON
    /// likewise (by count: its thin loops run 16 FMAs per 8 loads, with no copy of B). Without vector loops (an x86
    /// without AVX2) it takes up to ScalarThinRows.
    /// </summary>
    internal const int ThinRows = 16;

    /// <summary>Rows of C at or below which the thin path runs where it has no vector loops.</summary>
    internal const int ScalarThinRows = 4;

    // AVX-512: KC 384 cut evenly (EvenDepth) as on AVX2, so K = 384 products (gpt-mini's forwards, the lm head's
    // 412 MB of logits among them) are one pass over C instead of a 256 and a 128 pass. A 384 x 32 B panel (48 KiB)
    // fills Zen 4's L1 and is still faster there. Alternated with KC 256 on Zen 4: lm head forward 2048x50304x384
    // 206-209 -> 218-219 GFLOP/s on two threads, 103.5 -> 110.3 on one; K = 768 forwards 1-5% faster, input and
    // weight gradients within the noise.
    private static readonly GemmBlocking Avx512Blocking = new(MC: 144, KC: 384, NC: 2048);
    // AVX2: KC 384 (a 384 x 16 B panel is 24 KiB, inside a 32 KiB L1) so gpt-mini's K = 384 products are one pass
    // over C, and deeper K is cut evenly (EvenDepth); measured on Zen 4 with AVX-512 off against KC 256 and MC 144.
    private static readonly GemmBlocking Avx2Blocking = new(MC: 96, KC: 384, NC: 1024);
    private static readonly GemmBlocking NeonBlocking = new(MC: 96, KC: 256, NC: 1008);
    private static readonly GemmBlocking ScalarBlocking = new(MC: 64, KC: 256, NC: 512);

    /// <summary>
    /// C = alpha * op(A) · op(B) + beta * C on row-major storage. op(A) is [m, k]: A is stored [m, k] with row
    /// stride lda, or [k, m] when transposeA. op(B) is [k, n]: B is stored [k, n] with row stride ldb, or [n, k]
    /// when transposeB. C is [m, n] with row stride ldc. When beta is 0, C is only written (its old contents,
    /// NaN included, are ignored). maxThreads caps the threads (0: <see cref="KernelThreads.Count"/>); pass 1
    /// when calling from inside a parallel loop.
    /// </summary>
    public static void Sgemm(
        bool transposeA, bool transposeB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc, int maxThreads = 0) =>
        Run(GemmPath.Auto, transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, maxThreads);

    /// <summary>
    /// C = alpha * op(A) · op(B) + beta * C + bias, the bias [n] added to every row of C: a linear layer's forward in
    /// one pass. The micro-kernel adds the bias in registers as it stores each tile (ragged tiles: C seeded with it
    /// just before their product), instead of a pass that writes the bias over all of C before the product reads it
    /// back. Each element is rounded as fl(fl(beta * C + bias) + product), whichever path runs. An empty bias adds
    /// nothing (plain Sgemm).
    /// </summary>
    public static void Sgemm(
        bool transposeA, bool transposeB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc, ReadOnlySpan<float> bias, int maxThreads = 0) =>
        Run(GemmPath.Auto, transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, maxThreads, bias);

    /// <summary>
    /// C[m, n] = op(A) · op(B), or C += op(A) · op(B) when accumulate, on densely stored matrices: A is [m, k]
    /// ([k, m] when transposeA), B is [k, n] ([n, k] when transposeB).
    /// </summary>
    public static void MatMul(
        ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int k, int n,
        bool transposeA = false, bool transposeB = false, bool accumulate = false) =>
        Run(GemmPath.Auto, transposeA, transposeB, m, n, k, 1f, a, transposeA ? m : k, b, transposeB ? k : n,
            accumulate ? 1f : 0f, c, n, 0);

    /// <summary>
    /// Sgemm with the implementation pinned (Auto picks the best for this machine and shape); a bias, when not empty,
    /// holds n floats added to every row. rowSums, when not empty, holds m floats that each get the sum over k of
    /// their row of op(A), added one element at a time in k order (alpha must be 1): a linear layer's bias gradient,
    /// the column sums of dy, taken from the weight gradient's packed copy of dy instead of another pass over it.
    /// </summary>
    internal static void Run(
        GemmPath path, bool transposeA, bool transposeB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc, int maxThreads, ReadOnlySpan<float> bias = default, Span<float> rowSums = default)
    {
        Check(transposeA, transposeB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc, maxThreads);
        if (!bias.IsEmpty && bias.Length != n) throw new ArgumentException($"bias holds {bias.Length} floats but C has {n} columns.", nameof(bias));
        if (!rowSums.IsEmpty && rowSums.Length < m) throw new ArgumentException($"rowSums holds {rowSums.Length} floats but C has {m} rows.", nameof(rowSums));
        if (!rowSums.IsEmpty && alpha != 1f) throw new ArgumentException("row sums of op(A) are taken with alpha 1 only.", nameof(rowSums));
        if (m == 0) return;
        if (path == GemmPath.Auto) path = Choose(m);
        int threads = maxThreads == 0 ? KernelThreads.Count : Math.Min(maxThreads, KernelThreads.Count);
        fixed (float* pa = a, pb = b, pc = c, pbias = bias, psums = rowSums)
        {
            var args = new Operands(pa, lda, transposeA, pb, ldb, transposeB, pc, ldc, m, n, k, alpha, beta, bias.IsEmpty ? null : pbias)
            {
                RowSums = rowSums.IsEmpty ? null : psums,
            };
            if (n == 0 || k == 0 || path is GemmPath.ThinAvx512 or GemmPath.ThinAvx2 or GemmPath.ThinNeon or GemmPath.ThinScalar)
            {
                if (args.RowSums != null) SumRows(args);
                args = args with { RowSums = null };
                if (n == 0) return;
            }
            switch (path)
            {
                case GemmPath.PackedAvx512: Packed<Avx512Kernel12x32>(args, Avx512Blocking with { KC = EvenDepth(k, Avx512Blocking.KC) }, threads); break;
                case GemmPath.PackedAvx2: Packed<Avx2Kernel6x16>(args, Avx2Blocking with { KC = EvenDepth(k, Avx2Blocking.KC) }, threads); break;
                case GemmPath.PackedNeon: Packed<NeonKernel8x12>(args, NeonBlocking, threads); break;
                case GemmPath.PackedScalar: Packed<ScalarKernel4x4>(args, ScalarBlocking, threads); break;
                case GemmPath.ThinAvx512: Thin(args, threads, GemmIsa.Avx512); break;
                case GemmPath.ThinAvx2: Thin(args, threads, GemmIsa.Avx2); break;
                case GemmPath.ThinNeon: Thin(args, threads, GemmIsa.Neon); break;
                case GemmPath.ThinScalar: Thin(args, threads, GemmIsa.Scalar); break;
                default: throw new ArgumentOutOfRangeException(nameof(path), path, "Unknown GEMM path.");
            }
        }
    }

    /// <summary>The thin path with a bias: beta * C + bias first, then the product added (at most 16 rows).</summary>
    private static void Thin(Operands x, int threads, GemmIsa isa)
    {
        if (x.Bias == null)
        {
            GemmThin.Run(x, threads, isa);
            return;
        }
        // beta * C + bias first, then the product added: the same rounding as the packed path's tiles
        PrepareC(x.C, x.Ldc, x.M, x.N, 0, 0f, x.Beta, out bool accumulate);
        AddBias(x.C, x.Ldc, x.M, x.N, x.Bias, accumulate);
        GemmThin.Run(x with { Beta = 1f }, threads, isa);
    }

    /// <summary>
    /// Rows [0, rows) of C, ldc apart, get bias[0, cols): added to what they hold (accumulate) or stored over it.
    /// Column vectors outside, rows inside, so each vector of the bias is loaded once per tile (a Buffer.MemoryCopy
    /// per row took about 1% of a shakespeare-char training step).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void AddBias(float* c, nint ldc, int rows, int cols, float* bias, bool accumulate)
    {
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; j + 16 <= cols; j += 16)
            {
                var b = Vector512.Load(bias + j);
                for (int i = 0; i < rows; i++)
                {
                    float* p = c + i * ldc + j;
                    (accumulate ? Vector512.Load(p) + b : b).Store(p);
                }
            }
        }
        for (; j + 4 <= cols; j += 4)
        {
            var b = Vector128.Load(bias + j);
            for (int i = 0; i < rows; i++)
            {
                float* p = c + i * ldc + j;
                (accumulate ? Vector128.Load(p) + b : b).Store(p);
            }
        }
        for (; j < cols; j++)
        {
            for (int i = 0; i < rows; i++) c[i * ldc + j] = accumulate ? c[i * ldc + j] + bias[j] : bias[j];
        }
    }

    /// <summary>
    /// x.RowSums[i] += op(A)[i, p] for p = 0, 1, ..., k - 1 in that order: the fold the packed path does on its packed
    /// copy of A, done on A itself where that path cannot (the thin path, threads that split C's columns or share a
    /// block of A). Where A is stored transposed, op(A)'s row sums are A's column sums.
    /// </summary>
    internal static void SumRows(Operands x)
    {
        float* sums = x.RowSums;
        if (x.TransA)
        {
            ElementwiseMath.AddColumnSums(x.A, x.Lda, x.K, x.M, sums);
            return;
        }
        for (int i = 0; i < x.M; i++)
        {
            float s = sums[i];
            float* row = x.A + i * x.Lda;
            for (int p = 0; p < x.K; p++) s += row[p];
            sums[i] = s;
        }
    }

    /// <summary>Whether this machine runs the given path fast (every path is correct anywhere).</summary>
    internal static bool IsSupported(GemmPath path) => path switch
    {
        GemmPath.PackedAvx512 => Avx512Kernel12x32.IsSupported,
        GemmPath.PackedAvx2 => Avx2Kernel6x16.IsSupported,
        GemmPath.PackedNeon => NeonKernel8x12.IsSupported,
        GemmPath.ThinAvx512 => GemmThin.Avx512Supported,
        GemmPath.ThinAvx2 => GemmThin.Avx2Supported,
        GemmPath.ThinNeon => GemmThin.NeonSupported,
        _ => true,
    };

    /// <summary>The fastest path this machine has for a product with m rows.</summary>
    internal static GemmPath Choose(int m) =>
        m <= ThinRows && GemmThin.Avx512Supported ? GemmPath.ThinAvx512
        : m <= ThinRows && GemmThin.Avx2Supported ? GemmPath.ThinAvx2
        : m <= ThinRows && GemmThin.NeonSupported ? GemmPath.ThinNeon
        : m <= ScalarThinRows ? GemmPath.ThinScalar
        : Avx512Kernel12x32.IsSupported ? GemmPath.PackedAvx512
        : Avx2Kernel6x16.IsSupported ? GemmPath.PackedAvx2
        : NeonKernel8x12.IsSupported ? GemmPath.PackedNeon
        : GemmPath.PackedScalar;

    /// <summary>The packed kernel the packed path runs on this machine, e.g. "avx512 12x32", "neon 8x12".</summary>
    public static string KernelName => Choose(ThinRows + 1) switch
    {
        GemmPath.PackedAvx512 => "avx512 12x32",
        GemmPath.PackedAvx2 => "avx2 6x16",
        GemmPath.PackedNeon => "neon 8x12",
        _ => "scalar 4x4",
    };

    /// <summary>The thin path's loops on this machine, e.g. "avx512 thin", "neon thin".</summary>
    public static string ThinKernelName => Choose(1) switch
    {
        GemmPath.ThinAvx512 => "avx512 thin",
        GemmPath.ThinAvx2 => "avx2 thin",
        GemmPath.ThinNeon => "neon thin",
        _ => $"scalar thin (up to {ScalarThinRows} rows)",
    };

    /// <summary>
    /// The depth of each k block when k is cut into equal blocks of at most kcMax (rounded up to a multiple of 8, the
    /// packing's transpose): K = 2048 with kcMax 384 gives 6 blocks of 344 instead of 5 of 384 and one of 128, whose
    /// extra pass over C costs as much as a full block's.
    /// </summary>
    internal static int EvenDepth(int k, int kcMax)
    {
        if (k <= kcMax) return kcMax;
        int blocks = (k + kcMax - 1) / kcMax;
        return Math.Min(kcMax, ((k + blocks - 1) / blocks + 7) & ~7);
    }

    /// <summary>Applies beta, then runs the packed driver for one micro-kernel.</summary>
    private static void Packed<TKernel>(Operands x, GemmBlocking blocking, int threads) where TKernel : IGemmMicroKernel
    {
        if (PrepareC(x.C, x.Ldc, x.M, x.N, x.K, x.Alpha, x.Beta, out bool accumulate))
            GemmDriver<TKernel>.Run(blocking, x, accumulate, threads);
        else if (x.Bias != null)
            AddBias(x.C, x.Ldc, x.M, x.N, x.Bias, accumulate: true); // no product: C holds beta * C
    }

    /// <summary>
    /// Applies beta to C[m, n] so the product can then be stored (accumulate false) or added (true). Returns false
    /// when there is no product to add (k == 0 or alpha == 0), in which case C already holds beta * C.
    /// </summary>
    internal static bool PrepareC(float* c, nint ldc, int m, int n, int k, float alpha, float beta, out bool accumulate)
    {
        bool product = k > 0 && alpha != 0f;
        accumulate = beta != 0f;
        if (beta == 1f) return product;
        if (beta == 0f && product) return true;
        for (int i = 0; i < m; i++)
        {
            var row = new Span<float>(c + i * ldc, n);
            if (beta == 0f) row.Clear();
            else ScaleRow(row, beta);
        }
        return product;
    }

    private static void ScaleRow(Span<float> row, float beta)
    {
        int j = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var factor = Vector256.Create(beta);
            for (; j + 8 <= row.Length; j += 8)
                (Vector256.Create<float>(row.Slice(j, 8)) * factor).CopyTo(row.Slice(j, 8));
        }
        for (; j < row.Length; j++) row[j] *= beta;
    }

    private static void Check(
        bool transA, bool transB, int m, int n, int k, int aLength, int lda, int bLength, int ldb,
        int cLength, int ldc, int maxThreads)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        ArgumentOutOfRangeException.ThrowIfNegative(maxThreads);
        CheckMatrix("a", transA ? k : m, transA ? m : k, aLength, lda);
        CheckMatrix("b", transB ? n : k, transB ? k : n, bLength, ldb);
        CheckMatrix("c", m, n, cLength, ldc);
    }

    /// <summary>A stored [rows, cols] with row stride ld needs ld &gt;= cols and (rows - 1) * ld + cols floats.</summary>
    private static void CheckMatrix(string name, int rows, int cols, int length, int ld)
    {
        if (ld < Math.Max(1, cols))
        {
            throw new ArgumentOutOfRangeException(
                "ld" + name, ld, $"Row stride of {name} must be at least its {cols} columns.");
        }
        long needed = rows == 0 || cols == 0 ? 0 : (long)(rows - 1) * ld + cols;
        if (length < needed)
        {
            throw new ArgumentException(
                $"{name} holds {length} floats but a [{rows}, {cols}] matrix with row stride {ld} needs {needed}.", name);
        }
    }
}

/// <summary>The operands of one Sgemm call as raw pointers, so the threads can share them; Bias is [N] or null.</summary>
internal readonly unsafe struct Operands(
    float* a, nint lda, bool transA, float* b, nint ldb, bool transB, float* c, nint ldc,
    int m, int n, int k, float alpha, float beta, float* bias = null)
{
    public readonly float* A = a;
    public readonly nint Lda = lda;
    public readonly bool TransA = transA;
    public readonly float* B = b;
    public readonly nint Ldb = ldb;
    public readonly bool TransB = transB;
    public readonly float* C = c;
    public readonly nint Ldc = ldc;
    public readonly int M = m;
    public readonly int N = n;
    public readonly int K = k;
    public readonly float Alpha = alpha;
    public float Beta { get; init; } = beta;
    public readonly float* Bias = bias;

    /// <summary>[M] sums of op(A)'s rows to add to (Gemm.Run's rowSums), or null.</summary>
    public float* RowSums { get; init; }

    /// <summary>The same product restricted to rows [r0, r1) of C (and of op(A)).</summary>
    public Operands Rows(int r0, int r1) =>
        new(TransA ? A + r0 : A + r0 * Lda, Lda, TransA, B, Ldb, TransB, C + r0 * Ldc, Ldc, r1 - r0, N, K, Alpha, Beta, Bias)
        {
            RowSums = RowSums == null ? null : RowSums + r0,
        };

    /// <summary>The same product restricted to columns [c0, c1) of C (and of op(B)).</summary>
    public Operands Columns(int c0, int c1) =>
        new(A, Lda, TransA, TransB ? B + c0 * Ldb : B + c0, Ldb, TransB, C + c0, Ldc, M, c1 - c0, K, Alpha, Beta, Bias == null ? null : Bias + c0);
}
