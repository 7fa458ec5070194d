// `quill version`: prints the version and what the kernels will use on this machine.
using System.CommandLine;
using System.Runtime.Intrinsics;
using Quill.Kernels;

namespace Quill.Cli.Commands;

internal static class VersionCommand
{
    public static Command Create()
    {
        var cmd = new Command("version", "Print the Quill version and the SIMD width and threads the kernels use.");
        cmd.SetAction(_ =>
        {
            string simd = Vector512.IsHardwareAccelerated ? "AVX-512" : Vector256.IsHardwareAccelerated ? "AVX2" : "scalar";
            Console.WriteLine($"quill {typeof(QuillException).Assembly.GetName().Version} ({simd}, {KernelThreads.Count} threads)");
        });
        return cmd;
    }
}
