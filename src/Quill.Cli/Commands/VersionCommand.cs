// `quill version`: prints the version and what the kernels will use on this machine.
using System.CommandLine;
using System.Runtime.Intrinsics;
using Quill.Benchmarks;
using Quill.Kernels;

namespace Quill.Cli.Commands;

internal static class VersionCommand
{
    public static Command Create()
    {
        var check = new Option<bool>("--check") { Description = "Also run each kernel path against its plain reference on this CPU" };
        var cmd = new Command("version", "Print the Quill version, the kernel path of each family on this CPU and the threads.") { check };
        cmd.SetAction(r =>
        {
            string simd = Vector512.IsHardwareAccelerated ? "AVX-512" : Vector256.IsHardwareAccelerated ? "AVX2"
                : Vector128.IsHardwareAccelerated ? (System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported ? "NEON" : "SSE") : "scalar";
            Console.WriteLine($"quill {typeof(QuillException).Assembly.GetName().Version} ({simd}, {KernelThreads.Count} threads, {System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant()})");
            foreach (var (family, path) in KernelCheck.Paths()) Console.WriteLine($"  {family}: {path}");
            if (!r.GetValue(check)) return 0;
            bool ok = true;
            foreach (var c in KernelCheck.Run())
            {
                Console.WriteLine($"check {c.Family} ({c.Path}): {(c.Passed ? "ok" : "FAILED")}, largest error {c.MaxError:G2} (tolerance {c.Tolerance:G2})");
                ok &= c.Passed;
            }
            return ok ? 0 : 1;
        });
        return cmd;
    }
}
