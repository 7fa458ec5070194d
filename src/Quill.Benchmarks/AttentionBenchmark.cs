// Benchmark of Attention.Forward / Attention.Backward at the training shapes, with AttentionReference as the peer
// measured in the same run. Prints one JSON line per figure: {"bench", "quill", "peer", "ratio", "unit"}, where
// quill and peer are the median milliseconds of a call.
// Not a test: nothing is asserted. Does not handle: comparing against PyTorch (run separately).
// Glossary: B batch, T sequence length, H heads, D head size.
using System.Diagnostics;
using System.Globalization;
using Quill.Kernels;

namespace Quill.Benchmarks;

/// <summary>Times the fused attention kernels against their reference twin at the model shapes Quill trains.</summary>
public static class AttentionBenchmark
{
    /// <summary>Runs the benchmark and writes one JSON line per figure to <paramref name="output"/>.</summary>
    public static void Run(TextWriter output, int repeats = 20)
    {
        ArgumentNullException.ThrowIfNull(output);
        // name, B, T, H, D; q/k/v as slices of one fused [B*T, 3C] buffer as the model's qkv projection writes them.
        foreach (var (name, B, T, H, D) in new[] { ("shakespeare-char", 16, 256, 4, 64), ("gpt-mini", 8, 256, 6, 64) })
        {
            int C = H * D, stride = 3 * C;
            float scale = 1f / MathF.Sqrt(D);
            var rng = new Random(42);
            var qkv = new float[B * T * stride];
            var dO = new float[B * T * C];
            for (int i = 0; i < qkv.Length; i++) qkv[i] = (float)(rng.NextDouble() * 2 - 1);
            for (int i = 0; i < dO.Length; i++) dO[i] = (float)(rng.NextDouble() * 2 - 1);
            var o = new float[B * T * C];
            var lse = new float[B * H * T];
            var grad = new float[B * T * stride];

            double fwd = Median(repeats, () => Attention.Forward(B, T, H, H, D, scale,
                qkv, stride, qkv.AsSpan(C), stride, qkv.AsSpan(2 * C), stride, o, lse));
            double bwd = Median(repeats, () => Attention.Backward(B, T, H, H, D, scale,
                qkv, stride, qkv.AsSpan(C), stride, qkv.AsSpan(2 * C), stride, o, lse, dO, grad, grad.AsSpan(C), grad.AsSpan(2 * C)));
            double fwdRef = Median(1, () => AttentionReference.Forward(B, T, H, H, D, scale,
                qkv, stride, qkv.AsSpan(C), stride, qkv.AsSpan(2 * C), stride, o, lse));
            double bwdRef = Median(1, () => AttentionReference.Backward(B, T, H, H, D, scale,
                qkv, stride, qkv.AsSpan(C), stride, qkv.AsSpan(2 * C), stride, o, lse, dO, grad, grad.AsSpan(C), grad.AsSpan(2 * C)));
            Print(output, $"attention.forward.{name}", fwd, fwdRef);
            Print(output, $"attention.backward.{name}", bwd, bwdRef);
        }
    }

    // Median wall time in ms of `repeats` calls, after as many warm-up calls (so the JIT has tiered up).
    private static double Median(int repeats, Action call)
    {
        for (int i = 0; i < repeats; i++) call();
        var times = new double[repeats];
        for (int i = 0; i < repeats; i++)
        {
            long start = Stopwatch.GetTimestamp();
            call();
            times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }
        Array.Sort(times);
        return times[repeats / 2];
    }

    private static void Print(TextWriter output, string bench, double quill, double peer) =>
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{{\"bench\":\"{bench}\",\"quill\":{quill:F3},\"peer\":{peer:F3},\"ratio\":{quill / peer:F5},\"unit\":\"ms\"}}"));
}
