// `quill bench qgemm`: quantized prefill's integer GEMM (QuantGemm: int8 activations, ggml's arithmetic) against the
// path it replaced (each panel of weight rows dequantized to f32, then SGEMM), in the same process, alternating,
// on the products of a 128-token prompt through stories15M- and stories110M-shaped llamas (q/k/v/o, MLP up and down,
// the classifier) for Q8_0, Q4_0, Q5_0, Q4_K and Q6_K weights (K-quants only where rows are whole 256-value
// super-blocks). Prints one JSON line per shape: G multiply-adds/s of each path (best of --runs, the steadier figure
// on a shared machine) and ratio = integer / dequantize. Options: --threads N (default all), --runs R (default 9).
// Does not check results (the tests and `quill version --check` do).
using System.Diagnostics;
using System.Globalization;
using Quill.Kernels;
using Quill.Quantization;
using Quill.Tensors;

namespace Quill.Benchmarks;

/// <summary>Integer GEMM against dequantize + SGEMM for quantized weights.</summary>
public static class QuantGemmBenchmark
{
    private static readonly (string Name, int Rows, int Cols)[] Shapes =
    [
        ("stories15M qkvo", 288, 288), ("stories15M mlp up", 768, 288), ("stories15M mlp down", 288, 768), ("stories15M classifier", 32000, 288),
        ("stories110M qkvo", 768, 768), ("stories110M mlp up", 2048, 768), ("stories110M mlp down", 768, 2048),
    ];

    /// <summary>Runs the benchmark; returns the exit code.</summary>
    public static unsafe int Run(int threads, int runs, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (runs < 1) throw new QuillException($"--runs must be at least 1 (got {runs}).");
        if (!QuantGemm.Enabled)
        {
            output.WriteLine($"{{\"bench\":\"qgemm\",\"skipped\":\"the integer GEMM does not run on this CPU ({QuantGemm.PathName})\"}}");
            return 0;
        }
        const int M = 128;
        int saved = KernelThreads.Count;
        KernelThreads.Count = threads;
        try
        {
            foreach (var type in new[] { GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q5_0, GgmlType.Q4_K, GgmlType.Q6_K })
            {
                foreach (var (name, rows, cols) in Shapes)
                {
                    if (cols % GgmlTypeInfo.BlockSize(type) != 0) continue;
                    var rng = new Random(1);
                    var wf = new float[rows * cols];
                    for (int i = 0; i < wf.Length; i++) wf[i] = (float)rng.NextDouble() - 0.5f;
                    var x = new float[M * cols];
                    for (int i = 0; i < x.Length; i++) x[i] = (float)rng.NextDouble() - 0.5f;
                    var w = WeightMatrix.Quantize("w", wf, rows, cols, type);
                    var y = new float[M * rows];
                    double integer = double.MaxValue, dequant = double.MaxValue;
                    fixed (float* px = x)
                    fixed (float* py = y)
                    {
                        for (int r = 0; r <= runs; r++)
                        {
                            // run 0 warms both paths up and is not counted
                            QuantGemm.Enabled = true;
                            var sw = Stopwatch.StartNew();
                            w.Multiply(px, cols, M, py, rows);
                            if (r > 0) integer = Math.Min(integer, sw.Elapsed.TotalSeconds);
                            QuantGemm.Enabled = false;
                            sw.Restart();
                            w.Multiply(px, cols, M, py, rows);
                            if (r > 0) dequant = Math.Min(dequant, sw.Elapsed.TotalSeconds);
                        }
                        QuantGemm.Enabled = true;
                    }
                    double g = (double)M * rows * cols / 1e9;
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{{\"bench\":\"qgemm_gmac_per_s\",\"type\":\"{type.ToString().ToLowerInvariant()}\",\"shape\":\"{name}\",\"m\":{M},\"rows\":{rows},\"cols\":{cols},\"threads\":{threads},\"path\":\"{QuantGemm.PathName}\",\"integer\":{g / integer:F1},\"dequantize_sgemm\":{g / dequant:F1},\"ratio\":{dequant / integer:F2}}}"));
                }
            }
        }
        finally
        {
            KernelThreads.Count = saved;
            QuantGemm.Enabled = true;
        }
        return 0;
    }
}
