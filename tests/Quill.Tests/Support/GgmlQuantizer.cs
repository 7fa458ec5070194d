// Test-only oracle: ggml's own quantizers (ggml_quantize_chunk in libggml-base, shipped by the NuGet package
// LLamaSharp.Backend.Cpu beside llama.cpp) called directly, with or without an importance matrix, so Quill's
// weighted quantizers can be compared with llama.cpp's byte for byte. Loads the build for this machine's best
// instruction set (avx512 / avx2 / avx / noavx), as LLamaSharp does.
// Not handled: types that need ggml_quantize_init (the IQ types), platforms other than linux-x64.
using System.Runtime.InteropServices;
using Quill.Quantization;

namespace Quill.Tests.Support;

internal static unsafe class GgmlQuantizer
{
    private static readonly Lazy<nint> Chunk = new(Load);

    private static nint Load()
    {
        string root = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native");
        string isa = System.Runtime.Intrinsics.X86.Avx512F.IsSupported ? "avx512"
            : System.Runtime.Intrinsics.X86.Avx2.IsSupported ? "avx2"
            : System.Runtime.Intrinsics.X86.Avx.IsSupported ? "avx" : "noavx";
        nint lib = NativeLibrary.Load(Path.Combine(root, isa, "libggml-base.so"));
        return NativeLibrary.GetExport(lib, "ggml_quantize_chunk");
    }

    /// <summary>ggml's bytes for <paramref name="rows"/> rows of <paramref name="cols"/> values, weighted by imatrix [cols] when given.</summary>
    public static byte[] Quantize(GgmlType type, float[] src, int rows, int cols, float[]? imatrix)
    {
        var dst = new byte[GgmlTypeInfo.RowBytes(type, cols) * rows];
        var f = (delegate* unmanaged<int, float*, void*, long, long, long, float*, nuint>)Chunk.Value;
        fixed (float* s = src)
        fixed (byte* d = dst)
        fixed (float* w = imatrix)
            f((int)type, s, d, 0, rows, cols, imatrix == null ? null : w);
        return dst;
    }
}
