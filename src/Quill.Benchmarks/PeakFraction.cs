// The share of this CPU's measured f32 FMA peak (FmaPeak) a training benchmark's step reached, for Quill and for each
// peer: the step's model FLOPs (TrainingFlops, the same count for every engine) over its time. The shares' ratio is
// the tokens/s ratio; the share itself says how much room any engine has left on this machine, and how much of the
// peak a given speed-up over a peer would take.
using System.Globalization;
using Quill.Kernels;

namespace Quill.Benchmarks;

/// <summary>Model FLOP/s and their share of the FMA peak, as fields of a training benchmark's result and a log line.</summary>
public static class PeakFraction
{
    /// <summary>
    /// Adds "gflop_per_step", "fma_peak_gflops", "quill_gflops", "quill_of_peak" and, for each peer that ran,
    /// "torch113_of_peak" / "torch210_of_peak" (medians over the rounds, from tokens/s), and writes one line to the log.
    /// </summary>
    public static void AddTo(Dictionary<string, object> fields, RoundFigures figures, double flopsPerStep, int tokensPerStep,
        double peakGflops, TextWriter? log)
    {
        ArgumentNullException.ThrowIfNull(fields);
        ArgumentNullException.ThrowIfNull(figures);
        double Gflops(double tokensPerSecond) => flopsPerStep / tokensPerStep * tokensPerSecond / 1e9;
        double quill = Gflops(figures.Quill);
        fields["gflop_per_step"] = Math.Round(flopsPerStep / 1e9, 2);
        fields["fma_peak_gflops"] = Math.Round(peakGflops, 1);
        fields["quill_gflops"] = Math.Round(quill, 1);
        fields["quill_of_peak"] = Math.Round(quill / peakGflops, 3);
        var line = string.Create(CultureInfo.InvariantCulture,
            $"model FLOPs {flopsPerStep / 1e9:F2} GFLOP a step; f32 FMA peak {peakGflops:F1} GFLOP/s ({KernelThreads.Count} threads, {FmaPeak.Lanes * 32}-bit FMA loop); Quill {quill:F1} GFLOP/s = {100 * quill / peakGflops:F1}% of it");
        if (figures.Torch210 is double t210)
        {
            fields["torch210_of_peak"] = Math.Round(Gflops(t210) / peakGflops, 3);
            line += string.Create(CultureInfo.InvariantCulture, $", PyTorch 2.10 {100 * Gflops(t210) / peakGflops:F1}%");
        }
        if (figures.Torch113 is double t113)
        {
            fields["torch113_of_peak"] = Math.Round(Gflops(t113) / peakGflops, 3);
            line += string.Create(CultureInfo.InvariantCulture, $", PyTorch 1.13 {100 * Gflops(t113) / peakGflops:F1}%");
        }
        log?.WriteLine(line);
    }
}
