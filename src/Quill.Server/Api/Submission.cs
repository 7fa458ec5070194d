// The steps /v1/chat/completions and /v1/completions share: read and parse the body, queue the sequences on the
// model's scheduler (429 with Retry-After when the queue is full), and the id / timestamp / usage pieces of the
// response. A client that disconnects cancels its sequences through RequestAborted; a request that ends early (one
// of its choices failed) cancels the rest of its sequences. A choice whose generation fails (NaN logits from a
// corrupt model) is a 500 naming the cause (code generation_failed), or an error event in its stream; the other
// requests sharing the batch are not affected.
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Quill.Inference.Batching;

namespace Quill.Server.Api;

/// <summary>Helpers shared by the generation endpoints.</summary>
internal static class Submission
{
    public static async Task<ParsedRequest> ParseAsync(HttpContext ctx, ServerContext server, Func<JsonElement, IReadOnlyDictionary<string, ServedModel>, ParsedRequest> parse)
    {
        using var doc = await JsonBody.ReadAsync(ctx.Request, server.Options.MaxBodyBytes, ctx.RequestAborted).ConfigureAwait(false);
        return parse(doc.RootElement, server.Models);
    }

    /// <summary>Queues the requests on the model; maps a full queue to 429 and a bad prompt to 400.</summary>
    public static IReadOnlyList<GenerationJob> Submit(ParsedRequest p, IReadOnlyList<GenerationRequest> requests, CancellationToken cancel)
    {
        try
        {
            return p.Model.Scheduler.Submit(requests, cancel);
        }
        catch (QueueFullException ex)
        {
            throw new ApiException(429, ex.Message, "rate_limit_error", code: "queue_full") { RetryAfter = ex.RetryAfterSeconds };
        }
    }

    /// <summary>Builds a request from the template, mapping prompt problems to 400s.</summary>
    public static GenerationRequest Build(Func<GenerationRequest> build, string field)
    {
        try
        {
            return build();
        }
        catch (ContextLengthException ex)
        {
            throw new ApiException(400, ex.Message, param: ex.Field, code: "context_length_exceeded");
        }
        catch (QuillException ex)
        {
            throw ApiException.Invalid(field, ex.Message);
        }
    }

    public static string NewId(string prefix) => prefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));

    public static long Now() => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    public static object Usage(int prompt, int completion) => new { prompt_tokens = prompt, completion_tokens = completion, total_tokens = prompt + completion };

    /// <summary>A generation failure after the response started: an error chunk in the stream.</summary>
    public static object StreamError(Exception ex) => (ex is QuillException q ? GenerationFailed(q) : new ApiException(500, "The server had an error while generating.", "server_error")).ToBody();

    /// <summary>A choice whose generation failed on its own (e.g. non-finite logits): a 500 with the cause.</summary>
    public static ApiException GenerationFailed(QuillException ex) => new(500, ex.Message, "server_error", code: "generation_failed");

    /// <summary>The job's whole text, with a failure of its own generation as <see cref="GenerationFailed"/>.</summary>
    public static async Task<(string Text, List<TokenChoice> Logprobs, FinishReason Finish)> CollectAsync(GenerationJob job, CancellationToken cancel)
    {
        try
        {
            return await job.CollectAsync(cancel).ConfigureAwait(false);
        }
        catch (QuillException ex)
        {
            throw GenerationFailed(ex);
        }
    }
}
