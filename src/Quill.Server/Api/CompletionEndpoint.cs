// POST /v1/completions: the legacy text completion. prompt may be a string, token ids, or a list of either; each
// prompt gets n choices (choice index = prompt * n + k). echo prepends the prompt text; logprobs (0..5) returns the
// legacy {tokens, token_logprobs, top_logprobs, text_offset} object. Streams text_completion chunks and [DONE].
using Microsoft.AspNetCore.Http;
using Quill.Inference.Batching;

namespace Quill.Server.Api;

/// <summary>The completions endpoint.</summary>
internal static class CompletionEndpoint
{
    public static async Task HandleAsync(HttpContext ctx, ServerContext server)
    {
        var p = await Submission.ParseAsync(ctx, server, RequestParser.ParseCompletion).ConfigureAwait(false);
        var requests = new List<GenerationRequest>();
        var echo = new List<string>();
        int promptTokens = 0;
        foreach (var (text, ids) in p.Prompts)
        {
            var r = Submission.Build(() => text != null ? p.Model.ForCompletion(text, p.Template) : p.Model.ForCompletion(ids!, p.Template), "prompt");
            promptTokens += r.Prompt.Length;
            for (int k = 0; k < p.N; k++)
            {
                requests.Add(p.ForChoice(r, k));
                echo.Add(p.Echo ? text ?? p.Model.Tokenizer.Decode(ids) : "");
            }
        }
        using var ended = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted);
        var jobs = Submission.Submit(p, requests, ended.Token);
        string id = Submission.NewId("cmpl-");
        long created = Submission.Now();
        try
        {
            if (p.Stream) await StreamAsync(ctx, p, jobs, echo, id, created, promptTokens).ConfigureAwait(false);
            else await ctx.Response.WriteAsJsonAsync(await CompleteAsync(p, jobs, echo, id, created, promptTokens, ctx.RequestAborted).ConfigureAwait(false), ApiJson.Options, ctx.RequestAborted).ConfigureAwait(false);
        }
        finally
        {
            await ended.CancelAsync().ConfigureAwait(false); // choices still running after a failure stop here
        }
    }

    private static async Task<object> CompleteAsync(ParsedRequest p, IReadOnlyList<GenerationJob> jobs, List<string> echo, string id, long created, int promptTokens, CancellationToken cancel)
    {
        var choices = new object[jobs.Count];
        int completion = 0;
        for (int i = 0; i < jobs.Count; i++)
        {
            var (text, lps, finish) = await Submission.CollectAsync(jobs[i], cancel).ConfigureAwait(false);
            completion += jobs[i].CompletionTokens;
            choices[i] = new
            {
                text = echo[i] + text,
                index = i,
                logprobs = p.Template.Logprobs ? ApiJson.CompletionLogprobs(lps, echo[i].Length) : null,
                finish_reason = ApiJson.FinishName(finish),
            };
        }
        return new { id, @object = "text_completion", created, model = p.Model.Name, system_fingerprint = "quill", choices, usage = Submission.Usage(promptTokens, completion) };
    }

    private static async Task StreamAsync(HttpContext ctx, ParsedRequest p, IReadOnlyList<GenerationJob> jobs, List<string> echo, string id, long created, int promptTokens)
    {
        var cancel = ctx.RequestAborted;
        var sse = new Sse(ctx.Response);
        await sse.StartAsync(cancel).ConfigureAwait(false);
        object? none = null;
        object Chunk(object[] choices, object? usage = null) => p.IncludeUsage
            ? new { id, @object = "text_completion", created, model = p.Model.Name, system_fingerprint = "quill", choices, usage }
            : new { id, @object = "text_completion", created, model = p.Model.Name, system_fingerprint = "quill", choices };
        var offsets = echo.Select(e => e.Length).ToArray();
        for (int i = 0; i < jobs.Count; i++)
        {
            if (echo[i].Length > 0) await sse.WriteAsync(Chunk([new { text = echo[i], index = i, logprobs = none, finish_reason = none }]), cancel).ConfigureAwait(false);
        }
        try
        {
            await foreach (var (i, e) in Sse.Merge(jobs, cancel).ConfigureAwait(false))
            {
                if (e.Text.Length > 0 || e.Logprob != null || e.Finish != null)
                {
                    object? lp = e.Logprob is { } t ? ApiJson.CompletionLogprobs([t], offsets[i]) : null;
                    offsets[i] += e.Text.Length;
                    string? finish = e.Finish is { } f ? ApiJson.FinishName(f) : null;
                    await sse.WriteAsync(Chunk([new { text = e.Text, index = i, logprobs = lp, finish_reason = finish }]), cancel).ConfigureAwait(false);
                }
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
