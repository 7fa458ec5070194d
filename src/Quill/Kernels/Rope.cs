// Rotary position embedding (RoPE), applied in place. x is laid out (b, t, h, d) at (b*T + t)*rowStride + h*D + d,
// so it may be a column slice of a fused qkv buffer (rowStride >= H*D). Row t sits at position posOffset + t.
// Only the first rotaryDim dims of each head rotate (partial rotary, e.g. GPT-NeoX / Phi); the rest pass through.
// Styles: Interleaved rotates pairs (x[2i], x[2i+1]) (llama2.c, Meta, GGUF); Half rotates (x[i], x[i + rotaryDim/2])
// (Hugging Face "rotate_half"; with rotaryDim = D this is (x[i], x[i + D/2])).
// inverse = true rotates by the negative angle: that is the backward, applied in place to the gradient.
// Scaled RoPE (linear, Llama 3, llama.cpp's rope_freqs) changes only the frequencies: Models.RopeFrequencies computes
// them and passes them to Tables. Does not handle: NTK / YaRN / LongRoPE.
// Glossary: B batch, T time steps, H heads, D head dim.
using System.Runtime.Intrinsics;

namespace Quill.Kernels;

/// <summary>How RoPE pairs the dims of a head.</summary>
public enum RopeStyle
{
    /// <summary>Pairs (x[2i], x[2i+1]): llama2.c, Meta's Llama, GGUF.</summary>
    Interleaved,

    /// <summary>Pairs (x[i], x[i + rotaryDim/2]): Hugging Face "rotate_half".</summary>
    Half,
}

/// <summary>Rotary position embedding: cos/sin tables and the in-place rotation.</summary>
public static unsafe class Rope
{
    /// <summary>cos[t, i] = cos(t * freq_i), sin[t, i] = sin(t * freq_i) with freq_i = theta^(-2i/rotaryDim), computed in double.</summary>
    public static void Tables(
        int maxT, int rotaryDim, double theta,
        Span<float> cos,  // [maxT, rotaryDim/2]
        Span<float> sin)  // [maxT, rotaryDim/2]
    {
        CheckRotaryDim(rotaryDim);
        if (!(theta > 0)) throw new InvalidConfigException($"rope_theta must be positive (got {theta}).");
        var freqs = new double[rotaryDim / 2];
        for (int i = 0; i < freqs.Length; i++) freqs[i] = Math.Pow(theta, -2.0 * i / rotaryDim);
        Tables(maxT, freqs, cos, sin);
    }

    /// <summary>
    /// The one table builder: cos[t, i] = cos(t * freq_i), sin[t, i] = sin(t * freq_i) for positions [0, maxT),
    /// angles in double. freqs [rotaryDim/2] come from Models.RopeFrequencies (theta and any scaling).
    /// </summary>
    public static void Tables(
        int maxT, ReadOnlySpan<double> freqs,  // [rotaryDim/2] radians per position
        Span<float> cos,  // [maxT, rotaryDim/2]
        Span<float> sin)  // [maxT, rotaryDim/2]
    {
        ElementwiseMath.RequireNonNegative(maxT, nameof(maxT));
        int half = freqs.Length;
        ElementwiseMath.RequireLength(cos.Length, (long)maxT * half, nameof(cos));
        ElementwiseMath.RequireLength(sin.Length, (long)maxT * half, nameof(sin));
        for (int i = 0; i < half; i++)
        {
            double freq = freqs[i];
            for (int t = 0; t < maxT; t++)
            {
                double angle = t * freq;
                cos[t * half + i] = (float)Math.Cos(angle);
                sin[t * half + i] = (float)Math.Sin(angle);
            }
        }
    }

    /// <summary>Rotates the first rotaryDim dims of every head of x in place (or un-rotates them when inverse).</summary>
    public static void Apply(
        Span<float> x,  // (b, t, h, d) at (b*T + t)*rowStride + h*D + d
        int B, int T, int H, int D, int rowStride, int rotaryDim, int posOffset,
        ReadOnlySpan<float> cos,  // [maxT, rotaryDim/2]
        ReadOnlySpan<float> sin,  // [maxT, rotaryDim/2]
        RopeStyle style, bool inverse)
        => Apply(x, B, T, H, D, rowStride, rotaryDim, posOffset, cos, sin, style, inverse, KernelWidth.Auto);

    /// <summary>Apply at a chosen vector width (tests pin each one).</summary>
    internal static void Apply(Span<float> x, int B, int T, int H, int D, int rowStride, int rotaryDim, int posOffset,
        ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, RopeStyle style, bool inverse, KernelWidth width)
    {
        var w = KernelWidths.Resolve(width);
        CheckApply(x.Length, B, T, H, D, rowStride, rotaryDim, posOffset, cos.Length, sin.Length);
        if (B == 0 || T == 0 || H == 0 || rotaryDim == 0) return;
        int rows = B * T;
        long perRow = (long)H * rotaryDim;
        fixed (float* px0 = x, pc0 = cos, ps0 = sin)
        {
            float* px = px0, pc = pc0, ps = ps0;
            if (!ElementwiseMath.ShouldSplit(rows, perRow)) Rows(w, px, T, H, D, rowStride, rotaryDim, posOffset, pc, ps, style, inverse, 0, rows);
            else KernelThreads.ParallelFor(rows, ElementwiseMath.MinChunk(perRow), (r0, r1) =>
                Rows(w, px, T, H, D, rowStride, rotaryDim, posOffset, pc, ps, style, inverse, r0, r1));
        }
    }

    internal static void CheckRotaryDim(int rotaryDim)
    {
        if (rotaryDim < 0 || rotaryDim % 2 != 0)
            throw new InvalidConfigException($"The rotary dimension must be even and non-negative (got {rotaryDim}); check rotary_dim / partial_rotary_factor.");
    }

    internal static void CheckApply(int xLength, int b, int t, int h, int d, int rowStride, int rotaryDim, int posOffset, int cosLength, int sinLength)
    {
        ElementwiseMath.RequireNonNegative(b, "B");
        ElementwiseMath.RequireNonNegative(t, "T");
        ElementwiseMath.RequireNonNegative(h, "H");
        ElementwiseMath.RequireNonNegative(d, "D");
        ElementwiseMath.RequireNonNegative(posOffset, nameof(posOffset));
        CheckRotaryDim(rotaryDim);
        if (rotaryDim > d) throw new InvalidConfigException($"The rotary dimension {rotaryDim} exceeds the head dimension {d}; check rotary_dim.");
        if (rowStride < (long)h * d) throw new ArgumentOutOfRangeException(nameof(rowStride), rowStride, $"rowStride must be at least H*D = {(long)h * d}.");
        if (b == 0 || t == 0 || h == 0) return;
        ElementwiseMath.RequireLength(xLength, ((long)b * t - 1) * rowStride + (long)h * d, "x");
        int half = rotaryDim / 2;
        if (half == 0) return;
        if (cosLength != sinLength) throw new ArgumentException($"cos has {cosLength} elements but sin has {sinLength}.", nameof(sinLength));
        long maxT = cosLength / half;
        if (posOffset + (long)t > maxT)
        {
            throw new QuillException(
                $"Position {posOffset + (long)t - 1} is beyond the RoPE table of {maxT} positions; " +
                "keep the sequence within the model's context length (max_seq_len / block_size) or build longer tables.");
        }
    }

    private static void Rows(KernelWidth w, float* x, int T, int H, int D, int rowStride, int rotaryDim, int posOffset,
        float* cos, float* sin, RopeStyle style, bool inverse, int r0, int r1)
    {
        int half = rotaryDim / 2;
        for (int r = r0; r < r1; r++)
        {
            int pos = posOffset + r % T;
            float* c = cos + (long)pos * half;  // [rotaryDim/2]
            float* s = sin + (long)pos * half;  // [rotaryDim/2]
            for (int h = 0; h < H; h++)
            {
                float* xh = x + (long)r * rowStride + (long)h * D;  // [D]
                if (style == RopeStyle.Half) RotateHalf(w, xh, c, s, half, inverse);
                else RotateInterleaved(w, xh, c, s, half, inverse);
            }
        }
    }

    private static void RotateHalf(KernelWidth w, float* x, float* cos, float* sin, int half, bool inverse)
    {
        switch (w)
        {
            case KernelWidth.Vector512: RotateHalf<Vec512, Vector512<float>>(x, cos, sin, half, inverse); break;
            case KernelWidth.Vector256: RotateHalf<Vec256, Vector256<float>>(x, cos, sin, half, inverse); break;
            case KernelWidth.Vector128: RotateHalf<Vec128, Vector128<float>>(x, cos, sin, half, inverse); break;
            default: RotateHalf<VecScalar, float>(x, cos, sin, half, inverse); break;
        }
    }

    // (x0, x1) = (x[i], x[i + half]) -> (x0 cos - x1 sin, x0 sin + x1 cos); sin negated for the inverse.
    private static void RotateHalf<TOps, TV>(float* x, float* cos, float* sin, int half, bool inverse)
        where TOps : IKernelVector<TV> where TV : struct
    {
        float* x1p = x + half;
        int i = 0, l = TOps.Lanes;
        var sign = TOps.Broadcast(inverse ? -1f : 1f);
        for (; i <= half - l; i += l)
        {
            var x0 = TOps.Load(x + i);
            var x1 = TOps.Load(x1p + i);
            var c = TOps.Load(cos + i);
            var s = TOps.Mul(TOps.Load(sin + i), sign);
            TOps.Store(x + i, TOps.Sub(TOps.Mul(x0, c), TOps.Mul(x1, s)));
            TOps.Store(x1p + i, TOps.Fma(x0, s, TOps.Mul(x1, c)));
        }
        for (; i < half; i++)
        {
            float x0 = x[i], x1 = x1p[i], c = cos[i], s = inverse ? -sin[i] : sin[i];
            x[i] = x0 * c - x1 * s;
            x1p[i] = MathF.FusedMultiplyAdd(x0, s, x1 * c);
        }
    }

    private static void RotateInterleaved(KernelWidth w, float* x, float* cos, float* sin, int half, bool inverse)
    {
        switch (w)
        {
            case KernelWidth.Vector512: RotateInterleaved<Vec512, Vector512<float>>(x, cos, sin, half, inverse); break;
            case KernelWidth.Vector256: RotateInterleaved<Vec256, Vector256<float>>(x, cos, sin, half, inverse); break;
            case KernelWidth.Vector128: RotateInterleaved<Vec128, Vector128<float>>(x, cos, sin, half, inverse); break;
            default: RotateInterleavedTail(x, cos, sin, 0, half, inverse); break;
        }
    }

    // (x0, x1) = (x[2i], x[2i + 1]) -> (x0 cos - x1 sin, x0 sin + x1 cos); sin negated for the inverse. A vector holds
    // Lanes/2 pairs: a = x * [c0, c0, c1, c1, ...] and xs = [x1, x0, x3, x2, ...]; even lanes take a - xs * s and odd
    // lanes fma(xs, s, a), the scalar loop's roundings exactly.
    private static void RotateInterleaved<TOps, TV>(float* x, float* cos, float* sin, int half, bool inverse)
        where TOps : IKernelVector<TV> where TV : struct
    {
        int i = 0, pairs = TOps.Lanes / 2;
        var sign = TOps.Broadcast(inverse ? -1f : 1f);
        for (; i <= half - pairs; i += pairs)
        {
            var v = TOps.Load(x + 2 * i);
            var a = TOps.Mul(v, TOps.LoadPairs(cos + i));
            var s = TOps.Mul(TOps.LoadPairs(sin + i), sign);
            var xs = TOps.SwapPairs(v);
            TOps.Store(x + 2 * i, TOps.EvenOdd(TOps.Sub(a, TOps.Mul(xs, s)), TOps.Fma(xs, s, a)));
        }
        RotateInterleavedTail(x, cos, sin, i, half, inverse);
    }

    private static void RotateInterleavedTail(float* x, float* cos, float* sin, int i0, int half, bool inverse)
    {
        for (int i = i0; i < half; i++)
        {
            float x0 = x[2 * i], x1 = x[2 * i + 1], c = cos[i], s = inverse ? -sin[i] : sin[i];
            x[2 * i] = x0 * c - x1 * s;
            x[2 * i + 1] = MathF.FusedMultiplyAdd(x0, s, x1 * c);
        }
    }
}
