// The plain reference twin of Gemm: the textbook triple loop, one dot product per element of C, accumulated in
// float in order of k. Same signature and semantics as Gemm.Sgemm (including beta == 0 ignoring NaN in C), no
// blocking, no vectors, no threads. Tests hold the optimized kernel against it; nothing fast should call it.
// Glossary: M, N, K = rows of C, columns of C, shared dimension; lda, ldb, ldc = row strides in floats.
namespace Quill.Kernels;

/// <summary>The slow, obviously correct SGEMM that <see cref="Gemm"/> is tested against.</summary>
public static class GemmReference
{
    /// <summary>C = alpha * op(A) · op(B) + beta * C with the layouts of <see cref="Gemm.Sgemm(bool, bool, int, int, int, float, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, float, Span{float}, int, int)"/>.</summary>
    public static void Sgemm(
        bool transposeA, bool transposeB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc)
    {
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                float sum = 0f;
                for (int p = 0; p < k; p++)
                {
                    float x = transposeA ? a[p * lda + i] : a[i * lda + p];
                    float y = transposeB ? b[j * ldb + p] : b[p * ldb + j];
                    sum += x * y;
                }
                float old = beta == 0f ? 0f : beta * c[i * ldc + j];
                c[i * ldc + j] = alpha * sum + old;
            }
        }
    }
}
