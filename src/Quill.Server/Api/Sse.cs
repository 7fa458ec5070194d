// Server-Sent Events as OpenAI streams them: "data: {json}\n\n" per chunk, flushed at once, and "data: [DONE]\n\n"
// at the end. Also merges the event streams of several choices (n > 1, several prompts) into one, in arrival order.
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.Http;
using Quill.Inference.Batching;

namespace Quill.Server.Api;

/// <summary>Writes SSE chunks to a response.</summary>
public sealed class Sse
{
    private static readonly byte[] Done = Encoding.UTF8.GetBytes("data: [DONE]\n\n");
    private readonly HttpResponse response;

    public Sse(HttpResponse response)
    {
        ArgumentNullException.ThrowIfNull(response);
        this.response = response;
    }

    /// <summary>Sets the event-stream headers and sends them.</summary>
    public async Task StartAsync(CancellationToken cancel)
    {
        response.StatusCode = 200;
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        await response.StartAsync(cancel).ConfigureAwait(false);
    }

    public async Task WriteAsync(object chunk, CancellationToken cancel)
    {
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(chunk, ApiJson.Options);
        var buffer = new byte[json.Length + 8];
        "data: "u8.CopyTo(buffer);
        json.CopyTo(buffer, 6);
        buffer[^2] = (byte)'\n';
        buffer[^1] = (byte)'\n';
        await response.Body.WriteAsync(buffer.AsMemory(0, json.Length + 8), cancel).ConfigureAwait(false);
        await response.Body.FlushAsync(cancel).ConfigureAwait(false);
    }

    public async Task WriteDoneAsync(CancellationToken cancel)
    {
        await response.Body.WriteAsync(Done, cancel).ConfigureAwait(false);
        await response.Body.FlushAsync(cancel).ConfigureAwait(false);
    }

    /// <summary>Events of all jobs as (job index, event), each job's in order; a failed job's error is rethrown.</summary>
    public static async IAsyncEnumerable<(int Index, GenerationEvent Event)> Merge(IReadOnlyList<GenerationJob> jobs, [EnumeratorCancellation] CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(jobs);
        if (jobs.Count == 1)
        {
            await foreach (var e in jobs[0].Events.ReadAllAsync(cancel).ConfigureAwait(false)) yield return (0, e);
            yield break;
        }
        var merged = Channel.CreateUnbounded<(int, GenerationEvent)>();
        int open = jobs.Count;
        for (int i = 0; i < jobs.Count; i++)
        {
            int index = i;
            _ = Task.Run(async () =>
            {
                try
                {
                    await foreach (var e in jobs[index].Events.ReadAllAsync(cancel).ConfigureAwait(false)) merged.Writer.TryWrite((index, e));
                    if (Interlocked.Decrement(ref open) == 0) merged.Writer.TryComplete();
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    merged.Writer.TryComplete(ex);
                }
            }, CancellationToken.None);
        }
        await foreach (var item in merged.Reader.ReadAllAsync(cancel).ConfigureAwait(false)) yield return item;
    }
}

/// <summary>JSON settings shared by every response.</summary>
public static class ApiJson
{
    public static JsonSerializerOptions Options { get; } = new()
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>OpenAI's name for a finish reason.</summary>
    public static string FinishName(FinishReason? reason) => reason == FinishReason.Length ? "length" : "stop";

    /// <summary>A chat logprob entry: token, logprob, bytes, top_logprobs.</summary>
    public static object ChatLogprob(TokenChoice t)
    {
        ArgumentNullException.ThrowIfNull(t);
        return new
        {
            token = t.Token,
            logprob = t.Logprob,
            bytes = t.Bytes.Select(b => (int)b).ToArray(),
            top_logprobs = t.Top.Select(a => new { token = a.Token, logprob = a.Logprob, bytes = a.Bytes.Select(b => (int)b).ToArray() }).ToArray(),
        };
    }

    /// <summary>The legacy completions logprobs object for tokens whose text starts at offset.</summary>
    public static object CompletionLogprobs(IReadOnlyList<TokenChoice> tokens, int offset)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        var offsets = new int[tokens.Count];
        for (int i = 0; i < tokens.Count; i++)
        {
            offsets[i] = offset;
            offset += tokens[i].Token.Length;
        }
        return new
        {
            tokens = tokens.Select(t => t.Token).ToArray(),
            token_logprobs = tokens.Select(t => t.Logprob).ToArray(),
            top_logprobs = tokens.Select(t =>
            {
                var d = new Dictionary<string, float>();
                foreach (var a in t.Top) d.TryAdd(a.Token, a.Logprob);
                return d;
            }).ToArray(),
            text_offset = offsets,
        };
    }
}
