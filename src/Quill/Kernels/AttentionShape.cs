// Argument checks shared by Attention and AttentionReference: sizes positive, heads divisible, row strides wide
// enough, and every span long enough for the strided rows it will be read or written through.
// Calling a kernel with the wrong sizes is a programming error, so these throw ArgumentException, not QuillException.
// Glossary: B batch, T sequence length, Hq query heads, Hkv key/value heads, D head size.
namespace Quill.Kernels;

internal static class AttentionShape
{
    public static void Validate(int B, int T, int Hq, int Hkv, int D,
        int qLength, int qRowStride, int kLength, int kRowStride, int vLength, int vRowStride)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(B);
        ArgumentOutOfRangeException.ThrowIfNegative(T);
        ArgumentOutOfRangeException.ThrowIfLessThan(Hq, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(Hkv, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(D, 1);
        if (Hq % Hkv != 0)
            throw new ArgumentException($"Query heads ({Hq}) must be a multiple of key/value heads ({Hkv}).", nameof(Hkv));
        RequireStrided("q", qLength, B * T, qRowStride, Hq * D);
        RequireStrided("k", kLength, B * T, kRowStride, Hkv * D);
        RequireStrided("v", vLength, B * T, vRowStride, Hkv * D);
    }

    public static void ValidateCached(int Tq, int pos0, int Hq, int Hkv, int D,
        int qLength, int qRowStride, int kCacheLength, int vCacheLength, int maxT, int oLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(Tq);
        ArgumentOutOfRangeException.ThrowIfNegative(pos0);
        ArgumentOutOfRangeException.ThrowIfLessThan(Hq, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(Hkv, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(D, 1);
        if (Hq % Hkv != 0)
            throw new ArgumentException($"Query heads ({Hq}) must be a multiple of key/value heads ({Hkv}).", nameof(Hkv));
        if ((long)pos0 + Tq > maxT)
            throw new ArgumentException($"Positions up to {(long)pos0 + Tq} do not fit a cache of maxT = {maxT}.", nameof(maxT));
        RequireStrided("q", qLength, Tq, qRowStride, Hq * D);
        RequireLength("kCache", kCacheLength, (long)Hkv * maxT * D);
        RequireLength("vCache", vCacheLength, (long)Hkv * maxT * D);
        RequireLength("o", oLength, (long)Tq * Hq * D);
    }

    /// <summary>A mask's document starts must cover the B * T tokens of the call.</summary>
    public static void ValidateMask(AttentionMask? mask, int B, int T)
    {
        if (mask?.DocStarts is { } d && d.Length != (long)B * T)
            throw new ArgumentException($"The mask's document starts hold {d.Length} values, not B * T = {(long)B * T}.", nameof(mask));
    }

    /// <summary>Checks that rows of `width` floats, `stride` apart, fit in a span of `length`.</summary>
    public static void RequireStrided(string name, int length, int rows, int stride, int width)
    {
        if (stride < width)
            throw new ArgumentException($"Row stride of {name} ({stride}) is smaller than its row width ({width}).", name);
        if (rows == 0) return;
        long need = (long)(rows - 1) * stride + width;
        if (length < need)
            throw new ArgumentException($"{name} holds {length} floats; {rows} rows of stride {stride} need {need}.", name);
        if ((long)rows * stride + width > int.MaxValue)
            throw new ArgumentException($"{name} is too large for 32-bit indexing.", name);
    }

    public static void RequireLength(string name, int length, long need)
    {
        if (length < need)
            throw new ArgumentException($"{name} holds {length} floats; it needs {need}.", name);
    }
}
