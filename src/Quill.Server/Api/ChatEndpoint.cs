// POST /v1/chat/completions: a conversation in, the assistant's reply out, as one JSON object or as a stream of
// chat.completion.chunk events (first a role delta, then content deltas, then the finish_reason, then usage when
// stream_options.include_usage, then [DONE]). n choices run as n sequences with seeds seed, seed+1, ...
using Microsoft.AspNetCore.Http;
using Quill.Inference.Batching;

namespace Quill.Server.Api;

/// <summary>The chat completions endpoint.</summary>
internal static class ChatEndpoint
{
    public static async Task HandleAsync(HttpContext ctx, ServerContext server)
    {
        var p = await Submission.ParseAsync(ctx, server, RequestParser.ParseChat).ConfigureAwait(false);
        var request = Submission.Build(() => p.Model.ForChat(p.Messages, p.Template), "messages");
        using var ended = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted);
        var jobs = Submission.Submit(p, Enumerable.Range(0, p.N).Select(i => p.ForChoice(request, i)).ToArray(), ended.Token);
        string id = Submission.NewId("chatcmpl-");
        long created = Submission.Now();
        int promptTokens = request.Prompt.Length;
        try
        {
            if (p.Stream) await StreamAsync(ctx, p, jobs, id, created, promptTokens).ConfigureAwait(false);
            else await ctx.Response.WriteAsJsonAsync(await CompleteAsync(p, jobs, id, created, promptTokens, ctx.RequestAborted).ConfigureAwait(false), ApiJson.Options, ctx.RequestAborted).ConfigureAwait(false);
        }
        finally
        {
            await ended.CancelAsync().ConfigureAwait(false); // choices still running after a failure stop here
        }
    }

    private static async Task<object> CompleteAsync(ParsedRequest p, IReadOnlyList<GenerationJob> jobs, string id, long created, int promptTokens, CancellationToken cancel)
    {
        var choices = new object[jobs.Count];
        int completion = 0;
        for (int i = 0; i < jobs.Count; i++)
        {
            var (text, lps, finish) = await Submission.CollectAsync(jobs[i], cancel).ConfigureAwait(false);
            completion += jobs[i].CompletionTokens;
            choices[i] = new
            {
                index = i,
                message = new { role = "assistant", content = text, refusal = (string?)null },
                logprobs = p.Template.Logprobs ? new { content = lps.Select(ApiJson.ChatLogprob).ToArray(), refusal = (object?)null } : null,
                finish_reason = ApiJson.FinishName(finish),
            };
        }
        return new
        {
            id,
            @object = "chat.completion",
            created,
            model = p.Model.Name,
            system_fingerprint = "quill",
            choices,
            usage = Submission.Usage(promptTokens, completion),
        };
    }

    private static async Task StreamAsync(HttpContext ctx, ParsedRequest p, IReadOnlyList<GenerationJob> jobs, string id, long created, int promptTokens)
    {
        var cancel = ctx.RequestAborted;
        var sse = new Sse(ctx.Response);
        await sse.StartAsync(cancel).ConfigureAwait(false);
        object? noUsage = null;
        object Chunk(object[] choices, object? usage = null) => p.IncludeUsage
            ? new { id, @object = "chat.completion.chunk", created, model = p.Model.Name, system_fingerprint = "quill", choices, usage }
            : new { id, @object = "chat.completion.chunk", created, model = p.Model.Name, system_fingerprint = "quill", choices };
        for (int i = 0; i < jobs.Count; i++)
            await sse.WriteAsync(Chunk([new { index = i, delta = new { role = "assistant", content = "" }, logprobs = noUsage, finish_reason = noUsage }]), cancel).ConfigureAwait(false);
        try
        {
            await foreach (var (i, e) in Sse.Merge(jobs, cancel).ConfigureAwait(false))
            {
                if (e.Text.Length > 0 || e.Logprob != null)
                {
                    object? lp = e.Logprob is { } t ? new { content = new[] { ApiJson.ChatLogprob(t) }, refusal = noUsage } : null;
                    await sse.WriteAsync(Chunk([new { index = i, delta = new { content = e.Text }, logprobs = lp, finish_reason = noUsage }]), cancel).ConfigureAwait(false);
                }
                if (e.Finish is { } f)
                    await sse.WriteAsync(Chunk([new { index = i, delta = new { }, logprobs = noUsage, finish_reason = ApiJson.FinishName(f) }]), cancel).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException && !cancel.IsCancellationRequested)
        {
            await sse.WriteAsync(Submission.StreamError(ex), cancel).ConfigureAwait(false);
            return;
        }
        if (p.IncludeUsage)
            await sse.WriteAsync(Chunk([], Submission.Usage(promptTokens, jobs.Sum(j => j.CompletionTokens))), cancel).ConfigureAwait(false);
        await sse.WriteDoneAsync(cancel).ConfigureAwait(false);
    }
}
