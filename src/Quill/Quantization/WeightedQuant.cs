// Quantization that minimizes an importance-weighted error: llama.cpp's method when an importance matrix is given
// (ggml's quantize_row_*_impl with quant_weights in ggml-quants.c, read to learn the method; the same arithmetic in
// the same order, so the blocks are ggml's byte for byte) for Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K. The importance of column j (imatrix[j], the mean of the squared activations that multiply that
// column) weights each value's error, so columns that meet large inputs are rounded more carefully:
// - Q4_0 / Q5_0 (symmetric): weight_j = imatrix_j * sqrt(sigma2 + x_j^2), sigma2 = the row's mean square; the scale
//   of each 32-value block is the best of 19 candidates -(nmax + 0.1 i) / max (i = -9..9), each refit by weighted
//   least squares (d = sum w x l / sum w l^2) and kept when it lowers the weighted squared error (MakeSymmetric).
// - Q4_1 / Q5_1 (scale and min): the same weights; 37 candidate scales (nmax - 0.9 + 0.05 i) / (max - min), each
//   refit as a weighted least-squares line (scale, min <= 0), kept when its weighted squared error is lower
//   (MakeAffine).
// - Q4_K / Q5_K: the same per 32-value sub-block (sigma2 = twice the super-block's mean square), then the eight
//   sub-block scales and the eight mins are themselves quantized to 6 bits by a search weighted by each sub-block's
//   summed weight (MakePositive); values are re-rounded with the stored scales.
// - Q6_K: per 16-value sub-block MakeSymmetric with the importance itself as weight (nmax 32); the sixteen scales
//   to int8 with d = max / -128, values re-rounded with the stored scales.
// Rounding is to nearest, ties to even (ggml's nearest_int). Other types (F32, F16, BF16, Q8_0) ignore the
// weights and quantize as GgmlQuant does, as llama.cpp's do.
// Does not handle: the IQ types and Q2_K / Q3_K (not written by Quill).
using System.Buffers.Binary;
using Quill.Kernels;

namespace Quill.Quantization;

/// <summary>Importance-weighted quantization of one row (llama.cpp's imatrix quantizers).</summary>
public static class WeightedQuant
{
    private const float GroupMaxEps = 1e-15f;

    /// <summary>True when <paramref name="type"/>'s quantizer uses the importance weights.</summary>
    public static bool UsesWeights(GgmlType type) =>
        type is GgmlType.Q4_0 or GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1 or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K;

    /// <summary>
    /// Quantizes one row <paramref name="row"/> [cols] into <paramref name="type"/>'s bytes, weighting column j's
    /// error by <paramref name="importance"/>[j] (same length as the row).
    /// </summary>
    public static void QuantizeRow(GgmlType type, ReadOnlySpan<float> row, ReadOnlySpan<float> importance, Span<byte> dst)
    {
        if (!UsesWeights(type))
        {
            GgmlQuant.Quantize(type, row, dst);
            return;
        }
        if (importance.Length != row.Length)
            throw new ArgumentException($"the importance has {importance.Length} values for a row of {row.Length}.", nameof(importance));
        int bs = GgmlTypeInfo.BlockSize(type), bb = GgmlTypeInfo.BlockBytes(type);
        QuantMath.CheckSizes(type.ToString(), bs, bb, row.Length, dst.Length);
        switch (type)
        {
            case GgmlType.Q4_0: Block32(row, importance, dst, 8, affine: false); break;
            case GgmlType.Q5_0: Block32(row, importance, dst, 16, affine: false); break;
            case GgmlType.Q4_1: Block32(row, importance, dst, 15, affine: true); break;
            case GgmlType.Q5_1: Block32(row, importance, dst, 31, affine: true); break;
            case GgmlType.Q4_K: KQuant(row, importance, dst, 15); break;
            case GgmlType.Q5_K: KQuant(row, importance, dst, 31); break;
            default: Q6K(row, importance, dst); break;
        }
    }

    /// <summary>ggml's nearest_int: round to nearest, ties to even.</summary>
    private static int Nearest(float v) => (int)MathF.Round(v);

    private static float MeanSquare(ReadOnlySpan<float> x)
    {
        float s = 0;
        foreach (float v in x) s += v * v;
        return s / x.Length;
    }

    // The 32-value formats: Q4_0 (nmax 8) and Q5_0 (nmax 16), value = (L - nmax) d; Q4_1 (nmax 15) and Q5_1
    // (nmax 31), value = L d + m (affine).
    private static void Block32(ReadOnlySpan<float> row, ReadOnlySpan<float> qw, Span<byte> dst, int nmax, bool affine)
    {
        float sigma2 = MeanSquare(row);
        Span<float> w = stackalloc float[32];
        Span<byte> l = stackalloc byte[32];
        Span<byte> aux = stackalloc byte[32];
        int header = affine ? 4 : 2;
        bool five = nmax >= 16;
        int bb = header + (five ? 4 : 0) + 16;
        for (int b = 0; b < row.Length / 32; b++)
        {
            var x = row.Slice(32 * b, 32);
            var q = qw.Slice(32 * b, 32);
            for (int j = 0; j < 32; j++) w[j] = q[j] * MathF.Sqrt(sigma2 + x[j] * x[j]);
            var o = dst.Slice(b * bb, bb);
            if (affine)
            {
                float d = MakeAffine(x, nmax, w, l, aux, out float negMin);
                QuantMath.WriteHalfBits(o, 0, Fp16.FromSingle(d));
                QuantMath.WriteHalfBits(o, 2, Fp16.FromSingle(-negMin));
            }
            else
            {
                QuantMath.WriteHalfBits(o, 0, Fp16.FromSingle(MakeSymmetric(x, nmax, l, w)));
            }
            if (five)
            {
                PackFive(l, o.Slice(header, 4), o.Slice(header + 4, 16));
            }
            else
            {
                for (int j = 0; j < 16; j++) o[header + j] = (byte)(l[j] | (l[j + 16] << 4));
            }
        }
    }

    /// <summary>Five-bit codes of a 32-value block: fifth bits into qh (bit j), low nibbles as Q5_0 / Q5_1 keep them.</summary>
    private static void PackFive(ReadOnlySpan<byte> l, Span<byte> qh, Span<byte> qs)
    {
        uint h = 0;
        for (int j = 0; j < 16; j++)
        {
            qs[j] = (byte)((l[j] & 0x0F) | ((l[j + 16] & 0x0F) << 4));
            h |= (uint)((l[j] & 0x10) >> 4) << j;
            h |= (uint)((l[j + 16] & 0x10) >> 4) << (j + 16);
        }
        BinaryPrimitives.WriteUInt32LittleEndian(qh, h);
    }

    // Q4_K (nmax 15) and Q5_K (nmax 31): 256-value super-blocks of eight 32-value sub-blocks
    private static void KQuant(ReadOnlySpan<float> row, ReadOnlySpan<float> qw, Span<byte> dst, int nmax)
    {
        Span<float> w = stackalloc float[32];
        Span<byte> l = stackalloc byte[256];
        Span<byte> aux = stackalloc byte[32];
        Span<float> sw = stackalloc float[8];
        Span<float> scales = stackalloc float[8];
        Span<float> mins = stackalloc float[8];
        Span<byte> ls = stackalloc byte[8];
        Span<byte> lm = stackalloc byte[8];
        Span<int> sc = stackalloc int[8];
        Span<int> mc = stackalloc int[8];
        int bb = nmax == 15 ? Q4_K.BlockBytes : Q5_K.BlockBytes;
        for (int b = 0; b < row.Length / 256; b++)
        {
            var x = row.Slice(256 * b, 256);
            float sigma2 = 2 * MeanSquare(x);
            for (int j = 0; j < 8; j++)
            {
                var xs = x.Slice(32 * j, 32);
                var q = qw.Slice(256 * b + 32 * j, 32);
                for (int i = 0; i < 32; i++) w[i] = q[i] * MathF.Sqrt(sigma2 + xs[i] * xs[i]);
                float sum = 0;
                for (int i = 0; i < 32; i++) sum += w[i];
                sw[j] = sum;
                scales[j] = MakeAffine(xs, nmax, w, l.Slice(32 * j, 32), aux, out mins[j]);
            }
            float dBlock = MakePositive(scales, 63, ls, sw);
            float mBlock = MakePositive(mins, 63, lm, sw);
            for (int j = 0; j < 8; j++)
            {
                sc[j] = Math.Min(63, (int)ls[j]);
                mc[j] = Math.Min(63, (int)lm[j]);
            }
            var o = dst.Slice(b * bb, bb);
            ushort dh = Fp16.FromSingle(dBlock), mh = Fp16.FromSingle(mBlock);
            QuantMath.WriteHalfBits(o, 0, dh);
            QuantMath.WriteHalfBits(o, 2, mh);
            Q4_K.PackScales(sc, mc, o.Slice(4, 12));
            float d = Fp16.ToSingle(dh), dmin = Fp16.ToSingle(mh);
            for (int j = 0; j < 8; j++)
            {
                float dj = d * sc[j];
                if (dj == 0) continue;
                float mj = dmin * mc[j];
                for (int i = 0; i < 32; i++) l[32 * j + i] = (byte)Math.Clamp(Nearest((x[32 * j + i] + mj) / dj), 0, nmax);
            }
            if (nmax == 15)
            {
                var qs = o.Slice(16, 128);
                for (int p = 0; p < 4; p++)
                {
                    for (int i = 0; i < 32; i++) qs[32 * p + i] = (byte)(l[64 * p + i] | (l[64 * p + 32 + i] << 4));
                }
            }
            else
            {
                var qh = o.Slice(16, 32);
                var qs = o.Slice(48, 128);
                qh.Clear();
                for (int p = 0; p < 4; p++)
                {
                    for (int i = 0; i < 32; i++)
                    {
                        int q0 = l[64 * p + i], q1 = l[64 * p + 32 + i];
                        qs[32 * p + i] = (byte)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
                        qh[i] |= (byte)(((q0 >> 4) << (2 * p)) | ((q1 >> 4) << (2 * p + 1)));
                    }
                }
            }
        }
    }

    private static void Q6K(ReadOnlySpan<float> row, ReadOnlySpan<float> qw, Span<byte> dst)
    {
        Span<byte> l = stackalloc byte[256];
        Span<float> scales = stackalloc float[16];
        for (int b = 0; b < row.Length / 256; b++)
        {
            var x = row.Slice(256 * b, 256);
            var o = dst.Slice(b * Q6_K.BlockBytes, Q6_K.BlockBytes);
            float maxScale = 0, maxAbs = 0;
            for (int k = 0; k < 16; k++)
            {
                float s = MakeSymmetric(x.Slice(16 * k, 16), 32, l.Slice(16 * k, 16), qw.Slice(256 * b + 16 * k, 16));
                scales[k] = s;
                if (MathF.Abs(s) > maxAbs)
                {
                    maxAbs = MathF.Abs(s);
                    maxScale = s;
                }
            }
            if (maxAbs < GroupMaxEps)
            {
                o.Clear();
                continue;
            }
            float iscale = -128f / maxScale;
            ushort dh = Fp16.FromSingle(1 / iscale);
            QuantMath.WriteHalfBits(o, 208, dh);
            float d = Fp16.ToSingle(dh);
            for (int k = 0; k < 16; k++)
            {
                int s = Math.Min(127, Nearest(iscale * scales[k]));
                o[192 + k] = (byte)(sbyte)s;
                float dk = d * (sbyte)(byte)s;
                if (dk == 0) continue;
                for (int i = 0; i < 16; i++) l[16 * k + i] = (byte)(Math.Clamp(Nearest(x[16 * k + i] / dk), -32, 31) + 32);
            }
            Q6_K.Pack(l, o);
        }
    }

    /// <summary>
    /// ggml's make_qx_quants with weights: codes L = l + nmax (l in -nmax..nmax-1) and the scale minimizing
    /// sum w (x - d l)^2 over 19 candidate roundings; returns d (0 for an all-zero block).
    /// </summary>
    internal static float MakeSymmetric(ReadOnlySpan<float> x, int nmax, Span<byte> codes, ReadOnlySpan<float> w)
    {
        int n = x.Length;
        float max = 0, amax = 0;
        for (int i = 0; i < n; i++)
        {
            float ax = MathF.Abs(x[i]);
            if (ax > amax)
            {
                amax = ax;
                max = x[i];
            }
        }
        if (amax < GroupMaxEps)
        {
            codes[..n].Clear();
            return 0;
        }
        float iscale = -nmax / max;
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; i++)
        {
            int l = Math.Clamp(Nearest(iscale * x[i]), -nmax, nmax - 1);
            codes[i] = (byte)(l + nmax);
            sumlx += w[i] * x[i] * l;
            suml2 += w[i] * l * l;
        }
        float scale = suml2 != 0 ? sumlx / suml2 : 0;
        float best = scale * sumlx;
        for (int step = -9; step <= 9; step++)
        {
            if (step == 0) continue;
            iscale = -(nmax + 0.1f * step) / max;
            sumlx = suml2 = 0;
            for (int i = 0; i < n; i++)
            {
                int l = Math.Clamp(Nearest(iscale * x[i]), -nmax, nmax - 1);
                sumlx += w[i] * x[i] * l;
                suml2 += w[i] * l * l;
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2)
            {
                for (int i = 0; i < n; i++) codes[i] = (byte)(Math.Clamp(Nearest(iscale * x[i]), -nmax, nmax - 1) + nmax);
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }

    /// <summary>
    /// ggml's make_qkx3_quants (squared error): codes 0..nmax, a scale and a min (negMin = -min >= 0) minimizing
    /// sum w (scale L + min - x)^2 over 37 candidate roundings; returns the scale.
    /// </summary>
    internal static float MakeAffine(ReadOnlySpan<float> x, int nmax, ReadOnlySpan<float> w, Span<byte> codes, Span<byte> aux, out float negMin)
    {
        const float rmin = -0.9f, rdelta = 0.05f;
        const int nstep = 36;
        int n = x.Length;
        float min = x[0], max = x[0];
        float sumW = w[0], sumX = sumW * x[0];
        for (int i = 1; i < n; i++)
        {
            if (x[i] < min) min = x[i];
            if (x[i] > max) max = x[i];
            sumW += w[i];
            sumX += w[i] * x[i];
        }
        if (min > 0) min = 0;
        if (max <= min)
        {
            codes[..n].Clear();
            negMin = -min;
            return 0;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestErr = 0;
        for (int i = 0; i < n; i++)
        {
            int l = Math.Clamp(Nearest(iscale * (x[i] - min)), 0, nmax);
            codes[i] = (byte)l;
            float diff = scale * l + min - x[i];
            bestErr += w[i] * (diff * diff);
        }
        for (int step = 0; step <= nstep; step++)
        {
            iscale = (rmin + rdelta * step + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (int i = 0; i < n; i++)
            {
                int l = Math.Clamp(Nearest(iscale * (x[i] - min)), 0, nmax);
                aux[i] = (byte)l;
                sumL += w[i] * l;
                sumL2 += w[i] * l * l;
                sumXL += w[i] * l * x[i];
            }
            float det = sumW * sumL2 - sumL * sumL;
            if (det <= 0) continue;
            float thisScale = (sumW * sumXL - sumX * sumL) / det;
            float thisMin = (sumL2 * sumX - sumL * sumXL) / det;
            if (thisMin > 0)
            {
                thisMin = 0;
                thisScale = sumXL / sumL2;
            }
            float err = 0;
            for (int i = 0; i < n; i++)
            {
                float diff = thisScale * aux[i] + thisMin - x[i];
                err += w[i] * (diff * diff);
            }
            if (err < bestErr)
            {
                aux[..n].CopyTo(codes);
                bestErr = err;
                scale = thisScale;
                min = thisMin;
            }
        }
        negMin = -min;
        return scale;
    }

    /// <summary>
    /// ggml's make_qp_quants: non-negative values x to codes 0..nmax times one scale, minimizing the error weighted
    /// by w (a search over 9 scales, then up to 5 passes moving single codes); returns the scale.
    /// </summary>
    internal static float MakePositive(ReadOnlySpan<float> x, int nmax, Span<byte> codes, ReadOnlySpan<float> w)
    {
        int n = x.Length;
        float max = 0;
        for (int i = 0; i < n; i++) max = MathF.Max(max, x[i]);
        if (max == 0)
        {
            codes[..n].Clear();
            return 0;
        }
        float iscale = nmax / max;
        float scale = 1 / iscale;
        float bestErr = 0;
        for (int i = 0; i < n; i++)
        {
            float diff = x[i] - scale * Nearest(iscale * x[i]);
            bestErr += w[i] * diff * diff;
        }
        for (int step = -4; step <= 4; step++)
        {
            if (step == 0) continue;
            float iscaleStep = (0.1f * step + nmax) / max;
            float scaleStep = 1 / iscaleStep;
            float err = 0;
            for (int i = 0; i < n; i++)
            {
                int l = Math.Min(nmax, Nearest(iscaleStep * x[i]));
                float diff = x[i] - scaleStep * l;
                err += w[i] * diff * diff;
            }
            if (err < bestErr)
            {
                bestErr = err;
                iscale = iscaleStep;
            }
        }
        Span<int> L = stackalloc int[n];
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; i++)
        {
            int l = Math.Min(nmax, Nearest(iscale * x[i]));
            L[i] = l;
            sumlx += w[i] * x[i] * l;
            suml2 += w[i] * l * l;
        }
        for (int pass = 0; pass < 5; pass++)
        {
            int changed = 0;
            for (int i = 0; i < n; i++)
            {
                float slx = sumlx - w[i] * x[i] * L[i];
                float sl2 = suml2 - w[i] * L[i] * L[i];
                if (slx > 0 && sl2 > 0)
                {
                    int nl = Math.Min(nmax, Nearest(x[i] * sl2 / slx));
                    if (nl != L[i])
                    {
                        slx += w[i] * x[i] * nl;
                        sl2 += w[i] * nl * nl;
                        if (slx * slx * suml2 > sumlx * sumlx * sl2)
                        {
                            L[i] = nl;
                            sumlx = slx;
                            suml2 = sl2;
                            changed++;
                        }
                    }
                }
            }
            if (changed == 0) break;
        }
        for (int i = 0; i < n; i++) codes[i] = (byte)L[i];
        return sumlx / suml2;
    }
}
