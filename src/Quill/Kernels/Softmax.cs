// Softmax over the last axis, forward and backward side by side: y = exp(x - max) / sum(exp(x - max)) per row,
// dx += y * (dy - sum(y * dy)). Rows are split across threads when the work is large.
// Does not handle: masking (callers write -infinity into masked logits; a row that is all -infinity gives NaN, as
// in PyTorch), temperatures, or log-softmax (CrossEntropy fuses its own).
// Glossary: rows, cols (the softmax axis).
using System.Runtime.Intrinsics;

namespace Quill.Kernels;

/// <summary>Row-wise softmax over rows of cols floats.</summary>
public static unsafe class Softmax
{
    /// <summary>y = softmax(x) over each row.</summary>
    public static void Forward(
        ReadOnlySpan<float> x,  // [rows, cols]
        Span<float> y,          // [rows, cols]
        int rows, int cols)
        => Forward(x, y, rows, cols, KernelWidth.Auto);

    /// <summary>Forward at a chosen vector width (tests pin each one).</summary>
    internal static void Forward(ReadOnlySpan<float> x, Span<float> y, int rows, int cols, KernelWidth width)
    {
        CheckShapes(rows, cols);
        ElementwiseMath.RequireLength(x.Length, (long)rows * cols, nameof(x));
        ElementwiseMath.RequireLength(y.Length, (long)rows * cols, nameof(y));
        if (rows == 0 || cols == 0) return;
        var w = KernelWidths.Resolve(width);
        fixed (float* px0 = x, py0 = y)
        {
            float* px = px0, py = py0;
            if (!ElementwiseMath.ShouldSplit(rows, cols)) ForwardRows(w, px, py, cols, 0, rows);
            else KernelThreads.ParallelFor(rows, ElementwiseMath.MinChunk(cols), (r0, r1) => ForwardRows(w, px, py, cols, r0, r1));
        }
    }

    /// <summary>dx += y * (dy - sum(y * dy)) over each row, from the forward's output y.</summary>
    public static void Backward(
        ReadOnlySpan<float> y,   // [rows, cols]
        ReadOnlySpan<float> dy,  // [rows, cols]
        Span<float> dx,          // [rows, cols] +=
        int rows, int cols)
        => Backward(y, dy, dx, rows, cols, KernelWidth.Auto);

    /// <summary>Backward at a chosen vector width (tests pin each one).</summary>
    internal static void Backward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, int rows, int cols, KernelWidth width)
    {
        CheckShapes(rows, cols);
        ElementwiseMath.RequireLength(y.Length, (long)rows * cols, nameof(y));
        ElementwiseMath.RequireLength(dy.Length, (long)rows * cols, nameof(dy));
        ElementwiseMath.RequireLength(dx.Length, (long)rows * cols, nameof(dx));
        if (rows == 0 || cols == 0) return;
        var w = KernelWidths.Resolve(width);
        fixed (float* py0 = y, pdy0 = dy, pdx0 = dx)
        {
            float* py = py0, pdy = pdy0, pdx = pdx0;
            if (!ElementwiseMath.ShouldSplit(rows, cols)) BackwardRows(w, py, pdy, pdx, cols, 0, rows);
            else KernelThreads.ParallelFor(rows, ElementwiseMath.MinChunk(cols), (r0, r1) => BackwardRows(w, py, pdy, pdx, cols, r0, r1));
        }
    }

    private static void CheckShapes(int rows, int cols)
    {
        ElementwiseMath.RequireNonNegative(rows, nameof(rows));
        ElementwiseMath.RequireNonNegative(cols, nameof(cols));
    }

    private static void ForwardRows(KernelWidth w, float* x, float* y, int cols, int r0, int r1)
    {
        switch (w)
        {
            case KernelWidth.Vector512: ForwardRows<Vec512, Vector512<float>>(x, y, cols, r0, r1); break;
            case KernelWidth.Vector256: ForwardRows<Vec256, Vector256<float>>(x, y, cols, r0, r1); break;
            case KernelWidth.Vector128: ForwardRows<Vec128, Vector128<float>>(x, y, cols, r0, r1); break;
            default: ForwardRows<VecScalar, float>(x, y, cols, r0, r1); break;
        }
    }

    private static void ForwardRows<TOps, TV>(float* x, float* y, int cols, int r0, int r1) where TOps : IKernelVector<TV> where TV : struct
    {
        for (int r = r0; r < r1; r++)
        {
            float* xr = x + (long)r * cols;
            float* yr = y + (long)r * cols;
            float max = ElementwiseMath.Max<TOps, TV>(xr, cols);
            float sum = ElementwiseMath.ExpInto<TOps, TV>(xr, max, yr, cols);
            ElementwiseMath.ScaleInPlace<TOps, TV>(yr, 1f / sum, cols);
        }
    }

    private static void BackwardRows(KernelWidth w, float* y, float* dy, float* dx, int cols, int r0, int r1)
    {
        switch (w)
        {
            case KernelWidth.Vector512: BackwardRows<Vec512, Vector512<float>>(y, dy, dx, cols, r0, r1); break;
            case KernelWidth.Vector256: BackwardRows<Vec256, Vector256<float>>(y, dy, dx, cols, r0, r1); break;
            case KernelWidth.Vector128: BackwardRows<Vec128, Vector128<float>>(y, dy, dx, cols, r0, r1); break;
            default: BackwardRows<VecScalar, float>(y, dy, dx, cols, r0, r1); break;
        }
    }

    private static void BackwardRows<TOps, TV>(float* y, float* dy, float* dx, int cols, int r0, int r1) where TOps : IKernelVector<TV> where TV : struct
    {
        for (int r = r0; r < r1; r++)
        {
            float* yr = y + (long)r * cols;
            float* dyr = dy + (long)r * cols;
            float* dxr = dx + (long)r * cols;
            float dot = ElementwiseMath.Dot<TOps, TV>(yr, dyr, cols);
            ElementwiseMath.AddProductShifted<TOps, TV>(dxr, yr, dyr, dot, cols);
        }
    }
}
