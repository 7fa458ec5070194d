// Runs the peer implementations for tokenizer benchmarks as child processes, on the same file in the same run:
// js-tiktoken (bench/peers/tiktoken_peer.mjs, needs `npm install` there) and Debian's python3-sentencepiece
// (bench/peers/spm_peer.py) for encoding with a .model file and for BPE training. Each peer prints one JSON line.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;

namespace Quill.Benchmarks;

/// <summary>Measures peer tokenizers through their scripts.</summary>
public static class TokenizePeers
{
    /// <summary>js-tiktoken encode MB/s for an encoding name (gpt2, cl100k_base, o200k_base).</summary>
    public static double JsTiktoken(string peersDir, string encoding, string file, int threads, double seconds) =>
        Run("node", [Path.Combine(peersDir, "tiktoken_peer.mjs"), encoding, file, Invariant(threads), Invariant(seconds)], "mb_per_s");

    /// <summary>python sentencepiece encode MB/s with a .model file (one thread).</summary>
    public static double SentencePieceEncode(string peersDir, string model, string file, double seconds) =>
        Run("/usr/bin/python3", [Path.Combine(peersDir, "spm_peer.py"), "encode", model, file, Invariant(seconds)], "mb_per_s");

    /// <summary>python sentencepiece BPE training seconds for a vocabulary size.</summary>
    public static double SentencePieceTrain(string peersDir, string file, int vocabSize, int threads) =>
        Run("/usr/bin/python3", [Path.Combine(peersDir, "spm_peer.py"), "train", file, Invariant(vocabSize), Invariant(threads)], "seconds");

    private static string Invariant(double x) => x.ToString(CultureInfo.InvariantCulture);

    private static double Run(string exe, string[] args, string field)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new QuillException($"could not start {exe}; install it to measure the peer.");
        string stdout = p.StandardOutput.ReadToEnd();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        string? line = stdout.Split('\n').LastOrDefault(l => l.TrimStart().StartsWith('{'));
        if (p.ExitCode != 0 || line == null)
            throw new QuillException($"peer {exe} {string.Join(' ', args)} failed: {stderr.Trim().Split('\n').LastOrDefault()}");
        return JsonNode.Parse(line)![field]!.GetValue<double>();
    }
}
