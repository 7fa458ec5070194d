// Plain reference twin of Softmax: obvious loops, double accumulation, one thread. Does not handle: speed.
// Glossary: rows, cols (the softmax axis).
namespace Quill.Kernels;

/// <summary>Reference row-wise softmax (same signatures as <see cref="Softmax"/>).</summary>
public static class SoftmaxReference
{
    public static void Forward(
        ReadOnlySpan<float> x,  // [rows, cols]
        Span<float> y,          // [rows, cols]
        int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            double max = double.NegativeInfinity;
            for (int j = 0; j < cols; j++) max = Math.Max(max, x[r * cols + j]);
            double sum = 0;
            for (int j = 0; j < cols; j++) sum += Math.Exp(x[r * cols + j] - max);
            for (int j = 0; j < cols; j++) y[r * cols + j] = (float)(Math.Exp(x[r * cols + j] - max) / sum);
        }
    }

    public static void Backward(
        ReadOnlySpan<float> y,   // [rows, cols]
        ReadOnlySpan<float> dy,  // [rows, cols]
        Span<float> dx,          // [rows, cols] +=
        int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            double dot = 0;
            for (int j = 0; j < cols; j++) dot += (double)y[r * cols + j] * dy[r * cols + j];
            for (int j = 0; j < cols; j++) dx[r * cols + j] += (float)(y[r * cols + j] * (dy[r * cols + j] - dot));
        }
    }
}
