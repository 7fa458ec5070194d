// Ollama's API beside the OpenAI one (ollama docs/api.md), for clients that speak Ollama (OllamaSharp, Open WebUI,
// Continue): POST /api/chat and /api/generate stream newline-delimited JSON (application/x-ndjson), one
// {"model", "created_at", "message" | "response", "done": false} line per piece of text, then a last line with
// "done": true, "done_reason" ("stop" or "length") and the counts and durations in nanoseconds; "stream": false
// gives that last line alone with the whole text. An empty prompt (no messages) only "loads" the model, as in
// Ollama: one line with done_reason "load". GET /api/tags lists the models as name:latest, POST /api/show describes
// one, GET /api/version says Quill's version. Errors are Ollama's {"error": "..."} (ApiException writes that shape
// under /api), and a failure after streaming began is an {"error"} line.
// Durations: load_duration is 0 (models load when the server starts); prompt_eval_duration runs from the request's
// arrival to its first token (queue wait and prefill), eval_duration from the first token to the last.
// /api/generate applies the model's chat template (system, then the prompt as the user's turn) unless "raw" is true
// or the model has none (a plain Quill checkpoint, llama2.c): then the prompt is completed as text, as Ollama does
// with its "{{ .Prompt }}" template. Does not handle: pull / push / create / copy / delete / embed / ps (404).
using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Quill.Inference;
using Quill.Inference.Batching;
using Quill.Quantization;

namespace Quill.Server.Api;

/// <summary>The /api routes.</summary>
internal static class OllamaEndpoints
{
    public static async Task ChatAsync(HttpContext ctx, ServerContext server)
    {
        var clock = Stopwatch.StartNew();
        var p = await ParseAsync(ctx, server, OllamaRequest.ParseChat).ConfigureAwait(false);
        if (p.Messages.Count == 0)
        {
            await LoadedAsync(ctx, p, new { role = "assistant", content = "" }).ConfigureAwait(false);
            return;
        }
        var request = Submission.Build(() => p.Model.ForChat(p.Messages, p.Template), "messages");
        await RunAsync(ctx, p, request, clock, text => new { message = new { role = "assistant", content = text } }).ConfigureAwait(false);
    }

    public static async Task GenerateAsync(HttpContext ctx, ServerContext server)
    {
        var clock = Stopwatch.StartNew();
        var p = await ParseAsync(ctx, server, OllamaRequest.ParseGenerate).ConfigureAwait(false);
        if (p.Prompt.Length == 0)
        {
            await LoadedAsync(ctx, p, null).ConfigureAwait(false);
            return;
        }
        var request = Submission.Build(() =>
        {
            if (p.Raw || p.Model.Chat.IsPlain) return p.Model.ForCompletion(p.Prompt, p.Template);
            var turns = new List<ChatTurn>();
            if (!string.IsNullOrEmpty(p.System)) turns.Add(new ChatTurn("system", p.System));
            turns.Add(new ChatTurn("user", p.Prompt));
            return p.Model.ForChat(turns, p.Template);
        }, "prompt");
        await RunAsync(ctx, p, request, clock, text => new { response = text }).ConfigureAwait(false);
    }

    private static async Task<OllamaRequest> ParseAsync(HttpContext ctx, ServerContext server, Func<JsonElement, IReadOnlyDictionary<string, ServedModel>, OllamaRequest> parse)
    {
        using var doc = await JsonBody.ReadAsync(ctx.Request, server.Options.MaxBodyBytes, ctx.RequestAborted).ConfigureAwait(false);
        return parse(doc.RootElement, server.Models);
    }

    /// <summary>Runs one sequence and writes its lines (or, without streaming, its one object).</summary>
    private static async Task RunAsync(HttpContext ctx, OllamaRequest p, GenerationRequest request, Stopwatch clock, Func<string, object> piece)
    {
        using var ended = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted);
        var job = Submit(p, request, ended.Token);
        var cancel = ctx.RequestAborted;
        try
        {
            TimeSpan? first = null;
            if (!p.Stream)
            {
                var text = new StringBuilder();
                FinishReason finish = FinishReason.Cancelled;
                try
                {
                    await foreach (var e in job.Events.ReadAllAsync(cancel).ConfigureAwait(false))
                    {
                        first ??= clock.Elapsed;
                        text.Append(e.Text);
                        if (e.Finish is { } f) finish = f;
                    }
                }
                catch (QuillException ex)
                {
                    throw Submission.GenerationFailed(ex);
                }
                await ctx.Response.WriteAsJsonAsync(Last(p, job, finish, clock, first, piece(text.ToString())), ApiJson.Options, cancel).ConfigureAwait(false);
                return;
            }
            ctx.Response.StatusCode = 200;
            ctx.Response.ContentType = "application/x-ndjson";
            ctx.Response.Headers.CacheControl = "no-cache";
            ctx.Response.Headers["X-Accel-Buffering"] = "no";
            await ctx.Response.StartAsync(cancel).ConfigureAwait(false);
            try
            {
                await foreach (var e in job.Events.ReadAllAsync(cancel).ConfigureAwait(false))
                {
                    first ??= clock.Elapsed;
                    if (e.Text.Length > 0) await WriteLineAsync(ctx.Response, Chunk(p, piece(e.Text)), cancel).ConfigureAwait(false);
                    if (e.Finish is { } f) await WriteLineAsync(ctx.Response, Last(p, job, f, clock, first, piece("")), cancel).ConfigureAwait(false);
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException && !cancel.IsCancellationRequested)
            {
                string message = ex is QuillException q ? q.Message : "The server had an error while generating.";
                await WriteLineAsync(ctx.Response, new { error = message }, cancel).ConfigureAwait(false);
            }
        }
        finally
        {
            await ended.CancelAsync().ConfigureAwait(false);
        }
    }

    private static GenerationJob Submit(OllamaRequest p, GenerationRequest request, CancellationToken cancel)
    {
        try
        {
            return p.Model.Scheduler.Submit([request], cancel)[0];
        }
        catch (QueueFullException ex)
        {
            throw new ApiException(429, ex.Message, "rate_limit_error", code: "queue_full") { RetryAfter = ex.RetryAfterSeconds };
        }
    }

    /// <summary>A streamed piece: model, created_at, the piece's fields, done false.</summary>
    private static Dictionary<string, object?> Chunk(OllamaRequest p, object piece)
    {
        var line = new Dictionary<string, object?> { ["model"] = p.ModelName, ["created_at"] = Now() };
        Merge(line, piece);
        line["done"] = false;
        return line;
    }

    /// <summary>The last line: done, done_reason, counts and durations in nanoseconds.</summary>
    private static Dictionary<string, object?> Last(OllamaRequest p, GenerationJob job, FinishReason finish, Stopwatch clock, TimeSpan? first, object piece)
    {
        var total = clock.Elapsed;
        var firstAt = first ?? total;
        var line = Chunk(p, piece);
        line["done"] = true;
        line["done_reason"] = finish == FinishReason.Length ? "length" : "stop";
        line["total_duration"] = Nanoseconds(total);
        line["load_duration"] = 0L;
        line["prompt_eval_count"] = job.PromptTokens;
        line["prompt_eval_duration"] = Nanoseconds(firstAt);
        line["eval_count"] = job.CompletionTokens;
        line["eval_duration"] = Nanoseconds(total - firstAt);
        return line;
    }

    /// <summary>The answer to an empty prompt: the model is loaded (it always is).</summary>
    private static async Task LoadedAsync(HttpContext ctx, OllamaRequest p, object? message)
    {
        var line = new Dictionary<string, object?> { ["model"] = p.ModelName, ["created_at"] = Now() };
        if (message != null) line["message"] = message;
        else line["response"] = "";
        line["done"] = true;
        line["done_reason"] = "load";
        if (p.Stream)
        {
            ctx.Response.ContentType = "application/x-ndjson";
            await WriteLineAsync(ctx.Response, line, ctx.RequestAborted).ConfigureAwait(false);
        }
        else await ctx.Response.WriteAsJsonAsync(line, ApiJson.Options, ctx.RequestAborted).ConfigureAwait(false);
    }

    private static void Merge(Dictionary<string, object?> line, object piece)
    {
        foreach (var prop in piece.GetType().GetProperties()) line[prop.Name] = prop.GetValue(piece);
    }

    private static async Task WriteLineAsync(HttpResponse response, object line, CancellationToken cancel)
    {
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(line, ApiJson.Options);
        var buffer = new byte[json.Length + 1];
        json.CopyTo(buffer, 0);
        buffer[^1] = (byte)'\n';
        await response.Body.WriteAsync(buffer, cancel).ConfigureAwait(false);
        await response.Body.FlushAsync(cancel).ConfigureAwait(false);
    }

    private static long Nanoseconds(TimeSpan t) => t.Ticks * 100;

    private static string Now() => Timestamp(DateTimeOffset.UtcNow);

    /// <summary>RFC 3339 with fractional seconds, in UTC, as Ollama writes its times.</summary>
    private static string Timestamp(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);

    public static object Tags(ServerContext server) => new
    {
        models = server.Models.Values.Select(m =>
        {
            var f = ModelFacts.Of(m);
            return new
            {
                name = m.Name + ":latest",
                model = m.Name + ":latest",
                modified_at = Timestamp(DateTimeOffset.FromUnixTimeSeconds(m.Created)),
                size = f.Bytes,
                digest = f.Digest,
                details = Details(f),
            };
        }).ToArray(),
    };

    private static object Details(ModelFacts f) => new
    {
        parent_model = "",
        format = f.Format,
        family = f.Arch,
        families = new[] { f.Arch },
        parameter_size = f.ParameterSize,
        quantization_level = f.Quantization,
    };

    public static async Task ShowAsync(HttpContext ctx, ServerContext server)
    {
        using var doc = await JsonBody.ReadAsync(ctx.Request, server.Options.MaxBodyBytes, ctx.RequestAborted).ConfigureAwait(false);
        var (m, _) = OllamaRequest.FindModel(doc.RootElement, server.Models);
        var f = ModelFacts.Of(m);
        var info = new Dictionary<string, object>
        {
            ["general.architecture"] = f.Arch,
            ["general.parameter_count"] = f.Parameters,
            [$"{f.Arch}.context_length"] = m.ContextLength,
            [$"{f.Arch}.vocab_size"] = m.Backend.VocabSize,
        };
        if (f.Spec is { } s)
        {
            info[$"{f.Arch}.embedding_length"] = s.Dim;
            info[$"{f.Arch}.block_count"] = s.Layers;
            info[$"{f.Arch}.attention.head_count"] = s.Heads;
            info[$"{f.Arch}.attention.head_count_kv"] = s.KvHeads;
            info[$"{f.Arch}.feed_forward_length"] = s.Hidden;
        }
        await ctx.Response.WriteAsJsonAsync(new
        {
            modelfile = $"# served by Quill from {f.Source}\nFROM {f.Source}\n",
            parameters = "temperature 0.8\ntop_k 40\ntop_p 0.9\nrepeat_penalty 1.1\nrepeat_last_n 64",
            template = m.Chat.IsPlain ? "{{ .Prompt }}" : f.ChatTemplate ?? "",
            details = Details(f),
            model_info = info,
            capabilities = new[] { "completion" },
            modified_at = Timestamp(DateTimeOffset.FromUnixTimeSeconds(m.Created)),
        }, ApiJson.Options, ctx.RequestAborted).ConfigureAwait(false);
    }

    public static object Version() => new { version = QuillVersion };

    /// <summary>Quill's version (the assembly's informational version without the commit suffix).</summary>
    public static string QuillVersion { get; } = (typeof(OllamaEndpoints).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0").Split('+')[0];

    /// <summary>What /api/tags and /api/show say about a model.</summary>
    private sealed record ModelFacts(string Arch, string Format, long Parameters, long Bytes, string Quantization, string Digest, string Source, Models.ModelSpec? Spec, string? ChatTemplate)
    {
        public string ParameterSize => Parameters >= 1_000_000_000 ? string.Create(CultureInfo.InvariantCulture, $"{Parameters / 1e9:0.0}B")
            : Parameters >= 1_000_000 ? string.Create(CultureInfo.InvariantCulture, $"{Parameters / 1e6:0.##}M")
            : string.Create(CultureInfo.InvariantCulture, $"{Parameters / 1e3:0.##}K");

        public static ModelFacts Of(ServedModel m)
        {
            if (m.Backend is not EngineBackend e)
                return new ModelFacts("unknown", "unknown", 0, 0, "unknown", IdOf(m.Name, m.Created, ""), m.Name, null, null);
            var w = e.Model.Weights;
            var matrices = w.Layers.SelectMany(l => l.Matrices()).Append(w.TokenEmbedding);
            if (!w.Tied) matrices = matrices.Append(w.Classifier);
            long parameters = 0, bytes = 0;
            var byType = new Dictionary<GgmlType, long>();
            foreach (var x in matrices)
            {
                parameters += (long)x.Rows * x.Cols;
                bytes += x.ByteSize;
                byType[x.Type] = byType.GetValueOrDefault(x.Type) + (long)x.Rows * x.Cols;
            }
            long vectors = w.FinalNorm.Length + (w.PositionEmbedding?.Length ?? 0)
                + w.Layers.Sum(l => (long)(l.AttnNorm?.Length ?? 0) + (l.MlpNorm?.Length ?? 0) + (l.AttnPostNorm?.Length ?? 0) + (l.MlpPostNorm?.Length ?? 0) + (l.QNorm?.Length ?? 0) + (l.KNorm?.Length ?? 0)
                    + (l.QkvBias?.Length ?? 0) + (l.WoBias?.Length ?? 0) + (l.UpBias?.Length ?? 0) + (l.DownBias?.Length ?? 0));
            parameters += vectors;
            bytes += vectors * sizeof(float);
            // the type most of the layers' weights are stored in, as Ollama's quantization_level names it
            string quant = byType.OrderByDescending(kv => kv.Value).First().Key.ToString().ToUpperInvariant();
            string source = w.Source;
            // a folder (a Quill checkpoint or a Hugging Face model) holds safetensors
            string format = source.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) ? "gguf"
                : source.EndsWith(".bin", StringComparison.OrdinalIgnoreCase) ? "llama2c"
                : Directory.Exists(source) ? "safetensors" : "in memory";
            return new ModelFacts(w.Spec.Arch, format, parameters, bytes, quant, IdOf(m.Name, m.Created, source), source, w.Spec, e.Model.ChatTemplate);
        }

        /// <summary>An id for this loaded model (its name, load time and source path), not a hash of the file's bytes.</summary>
        private static string IdOf(string name, long created, string source) =>
            Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{name}\n{created}\n{source}")));
    }
}
