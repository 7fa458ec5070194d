// `quill bench gemm`: Quill's SGEMM against OpenBLAS in the same process, on square shapes, the shapes a gpt-mini
// training step runs (forward, input gradient and weight gradient of every projection and the lm head), a GPT-2-small
// layer and decode steps, at 1 thread and at all threads. Prints one JSON line per
// figure (GFLOP/s, higher is better; ratio = quill / peer). One-row products are measured against OpenBLAS's
// sgemv, its faster route for them. Options: --threads LIST (default "1,N"), --quick (fewer shapes), --seconds S
// per side (default 0.25), --path P (pin Quill's implementation: PackedAvx2, ThinScalar, ...; default Auto),
// --peer-core C (the OpenBLAS kernel set: default "detect", OpenBLAS's own choice for this CPU, so the peer runs the
// best kernels the CPU has and never an instruction set it lacks (a forced SkylakeX died with SIGILL on AVX2-only
// Zen 3); "env" keeps OPENBLAS_CORETYPE as the environment sets it; a name such as Haswell pins that set),
// --clock cpu (time one-thread runs by the thread's CPU time, steadier than wall time on a shared machine),
// --only NAME (the shapes whose name contains NAME, e.g. "110M").
// Does not check results (the tests do).
// Glossary: M, N, K = rows of C, columns of C, shared dimension; NN/NT/TN = transposes of A and B.
using System.Diagnostics;
using System.Globalization;
using Quill.Kernels;

namespace Quill.Benchmarks;

/// <summary>SGEMM GFLOP/s against OpenBLAS.</summary>
public static class GemmBenchmark
{
    private static readonly TimeSpan Pause = TimeSpan.FromMilliseconds(200);

    private readonly record struct Shape(string Name, int M, int N, int K, bool TransA, bool TransB);

    // gpt-mini training step (B*T = 8*256 = 2048 rows, C = 384, MLP 1536, vocab 50304): Y = X W^T (NT),
    // dX = dY W (NN), dW = dY^T X (TN).
    private static readonly Shape[] GptMini =
    [
        new("gpt-mini qkv forward", 2048, 1152, 384, false, true),
        new("gpt-mini qkv input grad", 2048, 384, 1152, false, false),
        new("gpt-mini qkv weight grad", 1152, 384, 2048, true, false),
        new("gpt-mini proj forward", 2048, 384, 384, false, true),
        new("gpt-mini proj weight grad", 384, 384, 2048, true, false),
        new("gpt-mini fc forward", 2048, 1536, 384, false, true),
        new("gpt-mini fc input grad", 2048, 384, 1536, false, false),
        new("gpt-mini fc weight grad", 1536, 384, 2048, true, false),
        new("gpt-mini fc2 forward", 2048, 384, 1536, false, true),
        new("gpt-mini fc2 input grad", 2048, 1536, 384, false, false),
        new("gpt-mini fc2 weight grad", 384, 1536, 2048, true, false),
        new("gpt-mini lm head forward", 2048, 50304, 384, false, true),
        new("gpt-mini lm head input grad", 2048, 384, 50304, false, false),
        new("gpt-mini lm head weight grad", 50304, 384, 2048, true, false),
    ];

    // shakespeare-char training step (B*T = 16*256 = 4096 rows, C = 256, MLP 1024, vocab 65): small K and N.
    private static readonly Shape[] ShakespeareChar =
    [
        new("shakespeare qkv forward", 4096, 768, 256, false, true),
        new("shakespeare qkv input grad", 4096, 256, 768, false, false),
        new("shakespeare qkv weight grad", 768, 256, 4096, true, false),
        new("shakespeare proj forward", 4096, 256, 256, false, true),
        new("shakespeare proj input grad", 4096, 256, 256, false, false),
        new("shakespeare proj weight grad", 256, 256, 4096, true, false),
        new("shakespeare fc forward", 4096, 1024, 256, false, true),
        new("shakespeare fc input grad", 4096, 256, 1024, false, false),
        new("shakespeare fc weight grad", 1024, 256, 4096, true, false),
        new("shakespeare fc2 forward", 4096, 256, 1024, false, true),
        new("shakespeare fc2 input grad", 4096, 1024, 256, false, false),
        new("shakespeare fc2 weight grad", 256, 1024, 4096, true, false),
        new("shakespeare lm head forward", 4096, 65, 256, false, true),
        new("shakespeare lm head input grad", 4096, 256, 65, false, false),
        new("shakespeare lm head weight grad", 65, 256, 4096, true, false),
    ];

    private static readonly Shape[] Quick =
    [
        new("square", 1024, 1024, 1024, false, false),
        new("gpt-mini fc forward", 2048, 1536, 384, false, true),
        new("gpt-mini fc input grad", 2048, 384, 1536, false, false),
        new("gpt-mini fc weight grad", 1536, 384, 2048, true, false),
        new("decode fc", 1, 3072, 768, false, true),
    ];

    private static readonly Shape[] Full =
    [
        new("square", 128, 128, 128, false, false),
        new("square", 256, 256, 256, false, false),
        new("square", 512, 512, 512, false, false),
        new("square", 1024, 1024, 1024, false, false),
        new("square", 2048, 2048, 2048, false, false),
        new("gpt2 qkv forward", 1024, 2304, 768, false, true),
        new("gpt2 fc forward", 1024, 3072, 768, false, true),
        new("gpt2 proj forward", 1024, 768, 3072, false, true),
        new("gpt2 proj input grad", 1024, 3072, 768, false, false),
        new("gpt2 fc weight grad", 3072, 768, 1024, true, false),
        new("gpt2 lm head forward", 128, 50257, 768, false, true),
        new("attention scores", 256, 256, 64, false, true),
        // stories110M's frozen projections in a LoRA step (4 x 256 rows, dim 768, MLP 2048, vocab 32000)
        new("110M q forward", 1024, 768, 768, false, true),
        new("110M q input grad", 1024, 768, 768, false, false),
        new("110M w1 forward", 1024, 2048, 768, false, true),
        new("110M w1 input grad", 1024, 768, 2048, false, false),
        new("110M w2 forward", 1024, 768, 2048, false, true),
        new("110M w2 input grad", 1024, 2048, 768, false, false),
        new("110M head forward", 1024, 32000, 768, false, true),
        new("110M head input grad", 1024, 768, 32000, false, false),
        // the rank-8 products of a LoRA step on the q projection (rank r = 8 rows of C; the thin path since session 19)
        new("110M lora A forward", 8, 1024, 768, false, true),
        new("110M lora B grad", 8, 768, 1024, false, false),
        new("110M lora hidden grad", 8, 1024, 768, true, true),
        new("110M lora A grad", 8, 768, 1024, false, false),
        new("batch 4 decode fc", 4, 3072, 768, false, true),
        new("batch 8 decode fc", 8, 3072, 768, false, true),
        new("batch 16 decode fc", 16, 3072, 768, false, true),
        new("decode fc", 1, 3072, 768, false, true),
        new("decode fc", 1, 768, 3072, false, true),
    ];

    /// <summary>Runs the benchmark with command-line style options; writes one JSON line per figure to output.</summary>
    public static int Run(string[] args, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        double seconds = 0.25;
        bool quick = false;
        var path = GemmPath.Auto;
        string peerCore = "detect";
        bool cpuClock = false;
        string? only = null;
        int[] threadCounts = KernelThreads.Count > 1 ? [1, KernelThreads.Count] : [1];
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--quick": quick = true; break;
                case "--seconds": seconds = double.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--threads": threadCounts = args[++i].Split(',').Select(int.Parse).ToArray(); break;
                case "--path": path = Enum.Parse<GemmPath>(args[++i]); break;
                case "--peer-core": peerCore = args[++i]; break;
                case "--clock": cpuClock = args[++i] == "cpu"; break;
                case "--only": only = args[++i]; break;
                default:
                    Console.Error.WriteLine($"gemm: unknown option {args[i]} (use --quick, --seconds S, --threads 1,2, --path P, --peer-core C, --clock cpu, --only NAME)");
                    return 2;
            }
        }
        if (cpuClock && threadCounts.Any(t => t != 1))
        {
            Console.Error.WriteLine("gemm: --clock cpu times one thread only; add --threads 1");
            return 2;
        }
        // before the library loads: it reads the variable then
        if (peerCore == "detect") OpenBlas.DetectCore();
        else if (peerCore != "env") OpenBlas.UseCore(peerCore);
        bool peerAvailable = OpenBlas.IsAvailable;
        if (!peerAvailable) Console.Error.WriteLine("gemm: libopenblas.so.0 not found (apt-get install libopenblas0); reporting Quill alone");
        peerCore = peerAvailable ? OpenBlas.Core : "none";
        int maxThreads = KernelThreads.Count;
        foreach (int threads in threadCounts)
        {
            KernelThreads.Count = Math.Max(maxThreads, threads);
            foreach (Shape shape in quick ? Quick : [.. GptMini, .. ShakespeareChar, .. Full])
            {
                if (only != null && !shape.Name.Contains(only, StringComparison.OrdinalIgnoreCase)) continue;
                bool thin = path.ToString().StartsWith("Thin", StringComparison.Ordinal);
                if (!thin || shape.M <= Gemm.ThinRows) output.WriteLine(Measure(shape, threads, seconds, path, peerCore, cpuClock, peerAvailable));
            }
        }
        return 0;
    }

    private static string Measure(Shape s, int threads, double seconds, GemmPath path, string peerCore, bool cpuClock, bool peerAvailable)
    {
        var random = new Random(42);
        float[] a = Fill(random, s.M * s.K), b = Fill(random, s.K * s.N), c = new float[s.M * s.N];
        int lda = s.TransA ? s.M : s.K, ldb = s.TransB ? s.K : s.N;
        bool gemv = s.M == 1 && s.TransB && !s.TransA;
        if (peerAvailable) OpenBlas.Threads(threads);
        Action quill = () => Gemm.Run(path, s.TransA, s.TransB, s.M, s.N, s.K, 1f, a, lda, b, ldb, 0f, c, s.N, threads);
        Action peer = gemv
            ? () => OpenBlas.Sgemv(s.N, s.K, b, a, c)
            : () => OpenBlas.Sgemm(s.TransA, s.TransB, s.M, s.N, s.K, 1f, a, lda, b, ldb, 0f, c, s.N);
        double flops = 2.0 * s.M * s.N * s.K;
        // Alternate the two so both see the same machine load; keep each side's best round. OpenBLAS's idle
        // threads spin for tens of milliseconds after a call, so each round starts after a pause.
        double bestQuill = 0, bestPeer = 0;
        for (int round = 0; round < 3; round++)
        {
            Thread.Sleep(Pause);
            bestQuill = Math.Max(bestQuill, Rate(quill, flops, seconds / 3, cpuClock));
            if (!peerAvailable) continue;
            Thread.Sleep(Pause);
            bestPeer = Math.Max(bestPeer, Rate(peer, flops, seconds / 3, cpuClock));
        }
        string layout = (s.TransA ? "T" : "N") + (s.TransB ? "T" : "N");
        string name = $"sgemm {s.Name} {s.M}x{s.N}x{s.K} {layout} threads={threads}"
            + (path == GemmPath.Auto ? "" : $" path={path}") + (cpuClock ? " clock=cpu" : "") + $" (peer: OpenBLAS {(gemv ? "sgemv" : "sgemm")}, {peerCore} kernels)";
        return new BenchResult("gemm", bestQuill, "GFLOP/s", peerAvailable ? bestPeer : null, new Dictionary<string, object>
        {
            ["shape"] = name,
            ["threads"] = threads,
        }).ToJson();
    }

    /// <summary>
    /// GFLOP/s of the fastest sample over about `seconds` of repeated calls, after two warm-up calls. A sample times
    /// enough back-to-back calls to last about 2 ms, so the clocks' resolution does not flatter short calls.
    /// </summary>
    private static double Rate(Action call, double flops, double seconds, bool cpuClock)
    {
        call();
        double once = Now(cpuClock);
        call();
        int batch = (int)Math.Clamp(0.002 / Math.Max(Now(cpuClock) - once, 1e-7), 1, 1000);
        double best = double.MaxValue, spent = 0;
        int samples = 0;
        while (spent < seconds || samples < 3)
        {
            double start = Now(cpuClock);
            for (int i = 0; i < batch; i++) call();
            double elapsed = Now(cpuClock) - start;
            best = Math.Min(best, elapsed / batch);
            spent += elapsed;
            samples++;
        }
        return flops / best / 1e9;
    }

    /// <summary>Seconds on the wall clock, or of this thread's CPU time.</summary>
    private static double Now(bool cpuClock) =>
        cpuClock ? OpenBlas.ThreadCpuSeconds() : Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency;

    private static float[] Fill(Random random, int count)
    {
        var x = new float[count];
        for (int i = 0; i < count; i++) x[i] = (float)(random.NextDouble() * 2 - 1);
        return x;
    }
}
