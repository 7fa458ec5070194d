// The linux-arm64 build of the CLI under qemu-aarch64 (Debian's qemu-user-static and the arm64 C libraries): every
// kernel family's ARM64 path equals its reference twin (`quill version --check`; the K-quant decode dots bit for
// bit), GEMM, attention and the quantized dots of every block type run on NEON, never scalar, with and without the
// dot-product extension, and stories260K's greedy text is llama2.c's, byte for byte. .ci/run publishes the build and
// sets QUILL_ARM64_CLI; elsewhere these tests are skipped with the way to run them. Timing under emulation means
// nothing, so nothing here is timed.
using System.Diagnostics;
using System.Text.Json;
using Quill.Tests.Support;

namespace Quill.Tests.Arm64;

/// <summary>A fact that needs the published linux-arm64 CLI and qemu-aarch64-static.</summary>
public sealed class Arm64CliFactAttribute : FactAttribute
{
    public Arm64CliFactAttribute()
    {
        if (Arm64Cli.Path == null && Environment.GetEnvironmentVariable("QUILL_REQUIRE_ARM64") != "1")
            Skip = "ARM64 emulation: set QUILL_ARM64_CLI to a `dotnet publish src/Quill.Cli -r linux-arm64 --self-contained` folder's Quill.Cli and install qemu-user-static + libc6:arm64 libstdc++6:arm64 libicu72:arm64 (.ci/run does both)";
    }
}

internal static class Arm64Cli
{
    public static string? Path => Environment.GetEnvironmentVariable("QUILL_ARM64_CLI") is { Length: > 0 } p && File.Exists(p) ? p : null;

    public static (int Exit, string Out, string Err) Run(params string[] args) => RunOn(null, args);

    /// <summary>Runs the CLI on an emulated CPU model (null: qemu's default, which has every extension).</summary>
    public static (int Exit, string Out, string Err) RunOn(string? cpu, params string[] args)
    {
        string cli = Path ?? throw new InvalidOperationException("QUILL_ARM64_CLI is not set to the linux-arm64 Quill.Cli (QUILL_REQUIRE_ARM64=1 demands it)");
        var psi = new ProcessStartInfo("qemu-aarch64-static") { RedirectStandardOutput = true, RedirectStandardError = true };
        if (cpu != null)
        {
            psi.ArgumentList.Add("-cpu");
            psi.ArgumentList.Add(cpu);
        }
        psi.ArgumentList.Add(cli);
        foreach (string a in args) psi.ArgumentList.Add(a);
        return Cli.CliProcess.Run(psi, "quill (arm64) " + string.Join(' ', args));
    }
}

public sealed class Arm64EmulationTests
{
    [Arm64CliFact]
    [Trait("Category", "Arm64")]
    public void Kernels_run_neon_paths_that_equal_their_references()
    {
        var r = Arm64Cli.Run("version", "--check");
        Assert.True(r.Exit == 0, r.Out + r.Err);
        Assert.Contains("arm64", r.Out, StringComparison.Ordinal);
        Assert.Contains("gemm: neon 8x12", r.Out, StringComparison.Ordinal);
        // products of at most 16 rows (LoRA's rank-r products, small batches) stream B on NEON, never scalar
        Assert.Contains("gemm, up to 16 rows: neon thin", r.Out, StringComparison.Ordinal);
        Assert.Contains("check gemm, up to 16 rows (neon thin): ok", r.Out, StringComparison.Ordinal);
        Assert.Contains("attention: neon 128-bit", r.Out, StringComparison.Ordinal);
        Assert.Contains("gemv (fp32 decode): neon 128-bit", r.Out, StringComparison.Ordinal);
        Assert.Contains("check gemv (f16, bf16 decode) (neon 128-bit): ok", r.Out, StringComparison.Ordinal);
        // every block format's decode dot on NEON (sdot): nothing left scalar anywhere
        Assert.Contains("  quantized dot: neon sdot\n", r.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("scalar", r.Out, StringComparison.Ordinal);
        Assert.Contains("quantized gemm (prefill): neon sdot 8 rows x 2", r.Out, StringComparison.Ordinal);
        foreach (string family in new[] { "norms (RMSNorm, LayerNorm)", "softmax, cross-entropy", "activations (GELU, SiLU, SwiGLU)", "AdamW", "RoPE, residual adds" })
            Assert.Contains($"{family}: neon 128-bit", r.Out, StringComparison.Ordinal);
        // the quantized dot check covers all eight block types; the K-quant dots must equal their twins bit for bit
        Assert.Contains("check quantized dot, k-quants bit for bit (neon sdot): ok, largest error 0 ", r.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("FAILED", r.Out, StringComparison.Ordinal);
        Assert.Equal(13, r.Out.Split('\n').Count(l => l.StartsWith("check ", StringComparison.Ordinal) && l.Contains(": ok,", StringComparison.Ordinal)));
    }

    [Arm64CliFact]
    [Trait("Category", "Arm64")]
    public void Without_the_dot_product_extension_the_widening_neon_path_is_checked_too()
    {
        // Cortex-A57 is ARMv8.0: AdvSimd without sdot, the path older ARM servers and boards take
        var r = Arm64Cli.RunOn("cortex-a57", "version", "--check");
        Assert.True(r.Exit == 0, r.Out + r.Err);
        Assert.Contains("  quantized dot: neon\n", r.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("scalar", r.Out, StringComparison.Ordinal);
        Assert.Contains("check quantized dot (neon): ok", r.Out, StringComparison.Ordinal);
        Assert.Contains("check quantized dot, k-quants bit for bit (neon): ok, largest error 0 ", r.Out, StringComparison.Ordinal);
        Assert.Contains("check quantized gemm (prefill) (neon 8 rows x 2): ok", r.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("FAILED", r.Out, StringComparison.Ordinal);
    }

    [Arm64CliFact]
    [Trait("Category", "Arm64")]
    public void Stories260K_greedy_text_is_llama2c_s()
    {
        string expected = JsonDocument.Parse(File.ReadAllText(TestData.PathOf("llama2c/expected_outputs.json")))
            .RootElement.GetProperty("stories260K_generation")[0].GetProperty("expected").GetString()!;
        var r = Arm64Cli.Run("generate", "--model", TestData.PathOf("llama2c/stories260K.bin"), "--tokenizer", TestData.PathOf("llama2c/tok512.bin"),
            "--prompt", "", "--temperature", "0", "--max-tokens", "200");
        Assert.True(r.Exit == 0, r.Err);
        Assert.Equal(expected, r.Out.TrimEnd('\n'));
    }
}
