// `quill bench serve`: aggregate decode throughput of a real server on loopback with 1, 4, 16 ... concurrent
// streaming clients. Each run starts C clients at once on /v1/completions (a short prompt, its own seed,
// temperature 1, max_tokens N) and divides the completion tokens all of them received by the wall time from the
// first request to the last [DONE]. The figure of C clients is reported against the 1-client figure as its "peer",
// so "ratio" is the batching speed-up (the target: >= 4 at 16 clients). A warm-up run precedes the timed
// ones. The model is a file (--model) or a shape with random weights (stories15M: Llama, 6 x 288, 32000 tokens).
// Does not handle: clients on other machines, prompts of realistic length (prefill is not what this measures).
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using Quill.Inference;
using Quill.Models;
using Quill.Server;
using Quill.Inference.Batching;
using Quill.Tokenization;

namespace Quill.Benchmarks;

/// <summary>What `quill bench serve` measures.</summary>
/// <param name="ModelPath">A model file or folder, or null to use Shape.</param>
/// <param name="Shape">A named shape with random weights (stories15M, stories110M) when ModelPath is null.</param>
/// <param name="TokenizerPath">Tokenizer for a shape (default: a byte tokenizer) or to override the model's.</param>
/// <param name="Clients">Concurrent client counts to run, e.g. 1, 4, 16.</param>
/// <param name="Tokens">Tokens each client asks for.</param>
public sealed record ServeBenchOptions(string? ModelPath, string Shape, string? TokenizerPath, IReadOnlyList<int> Clients, int Tokens = 128);

/// <summary>Runs the serving benchmark.</summary>
public static class ServeBenchmark
{
    /// <summary>A Llama-shaped config by name (random weights are drawn for it).</summary>
    public static ModelConfig ShapeConfig(string shape) => shape switch
    {
        "stories15M" => new ModelConfig { Arch = "llama", VocabSize = 32000, NLayer = 6, NHead = 6, NKvHead = 6, NEmbd = 288, BlockSize = 256, MlpHidden = 768 },
        "stories110M" => new ModelConfig { Arch = "llama", VocabSize = 32000, NLayer = 12, NHead = 12, NKvHead = 12, NEmbd = 768, BlockSize = 1024, MlpHidden = 2048 },
        _ => throw new InvalidConfigException($"--shape '{shape}' is unknown; use stories15M or stories110M, or pass --model PATH."),
    };

    /// <summary>Runs every client count and returns one figure per count (plus time to first token).</summary>
    public static async Task<List<BenchResult>> RunAsync(ServeBenchOptions o, TextWriter? log = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(o);
        if (o.Clients.Count == 0 || o.Clients.Any(c => c < 1)) throw new InvalidConfigException("--clients must list positive counts, e.g. 1,4,16.");
        if (o.Tokens < 1) throw new InvalidConfigException($"--tokens must be at least 1 (got {o.Tokens}).");
        int maxClients = o.Clients.Max();
        var sched = new SchedulerOptions(maxClients, maxClients);
        var served = o.ModelPath != null ? ServedModel.Load(o.ModelPath, o.TokenizerPath, sched) : Shaped(o, sched);
        string name = served.Name;
        await using var server = await QuillServer.StartAsync(new ServerOptions { Host = "127.0.0.1", Port = 0 }, [served], ownsModels: true, cancel).ConfigureAwait(false);
        using var http = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromMinutes(30) };
        log?.WriteLine($"serving {name} ({served.Backend.Description}) at {server.Address}");
        await RunClientsAsync(http, name, 1, Math.Min(o.Tokens, 16), cancel).ConfigureAwait(false); // warm-up
        var results = new List<BenchResult>();
        double? single = null;
        foreach (int c in o.Clients)
        {
            var (tokens, seconds, ttft) = await RunClientsAsync(http, name, c, o.Tokens, cancel).ConfigureAwait(false);
            double rate = tokens / seconds;
            if (c == 1) single = rate;
            log?.WriteLine($"{c} clients: {tokens} tokens in {seconds:F2} s, mean time to first token {ttft * 1000:F0} ms");
            var fields = new Dictionary<string, object> { ["model"] = name, ["clients"] = c, ["tokens"] = tokens, ["seconds"] = Math.Round(seconds, 3) };
            results.Add(new BenchResult($"serve-decode-{c}-clients", rate, "tok/s", c == 1 ? null : single, fields));
            results.Add(new BenchResult($"serve-ttft-{c}-clients", ttft * 1000, "ms", null, new Dictionary<string, object> { ["model"] = name, ["clients"] = c }));
        }
        return results;
    }

    private static ServedModel Shaped(ServeBenchOptions o, SchedulerOptions sched)
    {
        var config = ShapeConfig(o.Shape);
        var model = InferenceModel.FromLanguageModel(LanguageModel.Create(config, 1));
        model.Tokenizer = o.TokenizerPath != null ? TokenizerLoader.Load(o.TokenizerPath) : new ByteTokenizer();
        return ServedModel.FromInferenceModel(o.Shape, model, sched);
    }

    /// <summary>C concurrent streaming clients; (completion tokens, wall seconds, mean time to first token).</summary>
    private static async Task<(int Tokens, double Seconds, double Ttft)> RunClientsAsync(HttpClient http, string model, int clients, int tokens, CancellationToken cancel)
    {
        var clock = Stopwatch.StartNew();
        var runs = await Task.WhenAll(Enumerable.Range(0, clients).Select(i => Task.Run(() => OneClientAsync(http, model, i, tokens, clock, cancel), cancel))).ConfigureAwait(false);
        double seconds = clock.Elapsed.TotalSeconds;
        return (runs.Sum(r => r.Tokens), seconds, runs.Average(r => r.Ttft));
    }

    private static async Task<(int Tokens, double Ttft)> OneClientAsync(HttpClient http, string model, int i, int tokens, Stopwatch clock, CancellationToken cancel)
    {
        var body = new Dictionary<string, object>
        {
            ["model"] = model, ["prompt"] = "Once upon a time", ["max_tokens"] = tokens, ["temperature"] = 1.0, ["seed"] = 1 + i,
            ["stream"] = true, ["stream_options"] = new Dictionary<string, object> { ["include_usage"] = true },
        };
        double start = clock.Elapsed.TotalSeconds, first = -1;
        int used = 0;
        using var req = new HttpRequestMessage(HttpMethod.Post, "v1/completions") { Content = JsonContent.Create(body) };
        using var res = await http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, cancel).ConfigureAwait(false);
        if (!res.IsSuccessStatusCode) throw new QuillException($"the server answered {(int)res.StatusCode}: {await res.Content.ReadAsStringAsync(cancel).ConfigureAwait(false)}");
        using var reader = new StreamReader(await res.Content.ReadAsStreamAsync(cancel).ConfigureAwait(false));
        while (await reader.ReadLineAsync(cancel).ConfigureAwait(false) is { } line)
        {
            if (!line.StartsWith("data: {", StringComparison.Ordinal)) continue;
            using var doc = JsonDocument.Parse(line.AsMemory(6));
            if (first < 0) first = clock.Elapsed.TotalSeconds;
            if (doc.RootElement.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object) used = u.GetProperty("completion_tokens").GetInt32();
        }
        return (used, first - start);
    }
}
