// QuantGemm's activation side: Rows, the m activation rows of one product quantized once in the flavor the weight
// type meets (Q8Activation's ggml rules), laid out for the kernels (values, lane scales, block offsets, zero padded).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Quill.Kernels;

namespace Quill.Quantization;

internal static unsafe partial class QuantGemm
{
    /// <summary>
    /// m activation rows of K values quantized in one flavor, rows Kp = K rounded up to 64 apart (zero padded): Q
    /// [m, Kp], lane scales [m, Kp / 4] (each block's scale in 8 lanes; 0 in the padding), offsets [m, nbo] (zero padded).
    /// </summary>
    internal sealed class Rows
    {
        [ThreadStatic] private static Rows? perThread;

        public int M { get; private set; }

        public int K { get; private set; }

        /// <summary>Row stride of Q: K rounded up to 64.</summary>
        public int Kp { get; private set; }

        public Flavor Kind { get; private set; }

        public sbyte[] Q { get; private set; } = [];

        public float[] LaneScale { get; private set; } = [];

        public float[] Offset { get; private set; } = [];

        /// <summary>Q8_0: Q widened to int16 [m, Kp] for the AVX-512 Q8_0 kernel, made on first use after each Fill.</summary>
        public short[] Q16 { get; private set; } = [];

        private bool widened;

        /// <summary>Q as int16 (for Q8_0 weights, which pmaddwd meets directly): widened once per quantization.</summary>
        public short[] Widened()
        {
            if (widened) return Q16;
            long n = (long)M * Kp;
            if (Q16.Length < n) Q16 = GC.AllocateUninitializedArray<short>(checked((int)n), pinned: true);
            fixed (sbyte* q = Q)
            fixed (short* w = Q16)
            {
                for (long j = 0; j < n; j += 32) Vector512.Store(Avx512BW.ConvertToVector512Int16(Vector256.Load(q + j)), w + j);
            }
            widened = true;
            return Q16;
        }

        /// <summary>Q8_K: each 256-value group's scale [m, K / 256].</summary>
        public float[] Scale256 { get; private set; } = [];

        /// <summary>Q8_K: the 16-value sums as int16 pairs (sum 2j, sum 2j + 1) in one int32 [m, K / 32].</summary>
        public int[] Sum16Pairs { get; private set; } = [];

        /// <summary>Q8_K: the 32-value sums as int16 pairs (sum 2j, sum 2j + 1) in one int32 [m, K / 64].</summary>
        public int[] Sum32Pairs { get; private set; } = [];

        /// <summary>
        /// Quantizes x [m, K] (rows ldx apart) into the calling thread's reused buffers (valid until this thread calls
        /// again); vector false pins the scalar quantizer (tests).
        /// </summary>
        public static Rows Quantize(Flavor kind, float* x, int ldx, int m, int k, bool vector = true)
        {
            var r = perThread ??= new Rows();
            r.Fill(kind, x, ldx, m, k, vector && Avx2.IsSupported);
            return r;
        }

        /// <summary>The scale of activation row i's block b.</summary>
        public float BlockScale(int i, int b) => LaneScale[(long)i * (Kp / 4) + 8 * b];

        private void Fill(Flavor kind, float* x, int ldx, int m, int k, bool vector)
        {
            int blockSize = kind == Flavor.Q8_K ? 256 : 32;
            if (k % blockSize != 0) throw new ArgumentException($"rows of {k} values are not whole {blockSize}-value blocks.", nameof(k));
            int kp = Pad64(k), nb = k / 32, nbo = Pad8(nb);
            if (Q.Length < (long)m * kp)
            {
                Q = GC.AllocateUninitializedArray<sbyte>(checked(m * kp), pinned: true);
                LaneScale = GC.AllocateUninitializedArray<float>(m * kp / 4, pinned: true);
            }
            if (Offset.Length < m * nbo) Offset = GC.AllocateUninitializedArray<float>(m * nbo, pinned: true);
            if (kind == Flavor.Q8_K && Sum16Pairs.Length < m * k / 32)
            {
                Scale256 = GC.AllocateUninitializedArray<float>(m * k / 256, pinned: true);
                Sum16Pairs = GC.AllocateUninitializedArray<int>(m * k / 32, pinned: true);
                Sum32Pairs = GC.AllocateUninitializedArray<int>(m * k / 64, pinned: true);
            }
            M = m;
            widened = false;
            K = k;
            Kp = kp;
            Kind = kind;
            nint xa = (nint)x;
            fixed (sbyte* q0 = Q)
            fixed (float* s0 = LaneScale)
            fixed (float* o0 = Offset)
            fixed (float* c0 = Scale256)
            fixed (int* p16 = Sum16Pairs)
            fixed (int* p32 = Sum32Pairs)
            {
                nint qa = (nint)q0, sa = (nint)s0, oa = (nint)o0, ca = (nint)c0, p16a = (nint)p16, p32a = (nint)p32;
                KernelThreads.ParallelFor(m, Math.Max(1, 16384 / k), [MethodImpl(MethodImplOptions.AggressiveOptimization)] (i0, i1) =>
                {
                    int* sums = stackalloc int[nb];
                    float* scales = stackalloc float[nb];
                    float* offs = stackalloc float[nb];
                    short* sum16 = stackalloc short[k / 16];
                    float* d256 = stackalloc float[Math.Max(1, k / 256)];
                    for (int i = i0; i < i1; i++)
                    {
                        float* xi = (float*)xa + (long)i * ldx;
                        sbyte* qi = (sbyte*)qa + (long)i * kp;
                        float* si = (float*)sa + (long)i * kp / 4;
                        float* oi = (float*)oa + (long)i * nbo;
                        if (kind == Flavor.Q8_K)
                        {
                            Q8Activation.QuantizeRow256(xi, k, qi, d256, sum16, vector);
                            for (int b = 0; b < nb; b++)
                            {
                                scales[b] = d256[b / 8];
                                offs[b] = scales[b] * (sum16[2 * b] + sum16[2 * b + 1]);
                            }
                            // the super-block kernel's forms (QuantGemmAvx512.cs)
                            for (int b = 0; b < k / 256; b++) ((float*)ca)[(long)i * (k / 256) + b] = d256[b];
                            for (int j = 0; j < k / 32; j++) ((int*)p16a)[(long)i * (k / 32) + j] = Int16Pair(sum16[2 * j], sum16[2 * j + 1]);
                            for (int j = 0; j < k / 64; j++)
                            {
                                int lo = sum16[4 * j] + sum16[4 * j + 1], hi = sum16[4 * j + 2] + sum16[4 * j + 3];
                                ((int*)p32a)[(long)i * (k / 64) + j] = Int16Pair(lo, hi);
                            }
                        }
                        else
                        {
                            Q8Activation.QuantizeRow32(xi, k, qi, scales, sums, offs, vector);
                            // Q8_1: ggml's s; Q8_0: dx * sum q (for Q4_0's -8 and Q5_0's -16, taken as minimums)
                            if (kind == Flavor.Q8_0) for (int b = 0; b < nb; b++) offs[b] = scales[b] * sums[b];
                        }
                        for (int b = 0; b < nbo; b++) oi[b] = b < nb ? offs[b] : 0f;
                        for (int b = 0; b < kp / 32; b++) Vector256.Store(Vector256.Create(b < nb ? scales[b] : 0f), si + 8 * b);
                        for (int j = k; j < kp; j++) qi[j] = 0;
                    }
                });
            }
        }
    }
}
