// The small routes: GET /v1/models (and /v1/models/{id}), GET /health, GET /metrics (Prometheus text), and
// POST /v1/feedback (a thumbs up / down from the web chat, appended to the feedback JSONL file). Feedback takes
// only a JSON body (415 otherwise: an HTML form on another site can post text/plain without a CORS preflight, never
// application/json), of at most FeedbackMaxBodyBytes (413), for a model this server serves (404).
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Quill.Inference;

namespace Quill.Server.Api;

/// <summary>Models, health, metrics and feedback.</summary>
internal static class InfoEndpoints
{
    /// <summary>Longest conversation id a feedback body may carry.</summary>
    private const int MaxConversationId = 200;

    /// <summary>Largest feedback body accepted (a rating, a conversation and a reply).</summary>
    public const long FeedbackMaxBodyBytes = 64 * 1024;

    public static object Models(ServerContext server) => new
    {
        @object = "list",
        data = server.Models.Values.Select(Describe).ToArray(),
    };

    public static object Model(ServerContext server, string id) =>
        server.Models.TryGetValue(id, out var m) ? Describe(m)
            : throw new ApiException(404, $"The model '{id}' does not exist.", param: "model", code: "model_not_found");

    private static object Describe(ServedModel m) => new
    {
        id = m.Name,
        @object = "model",
        created = m.Created,
        owned_by = "quill",
        context_length = m.ContextLength,
    };

    public static object Health(ServerContext server) => new
    {
        status = server.WarmingUp ? "warming up" : "ok",
        models = server.Models.Values.Select(m => new { id = m.Name, queued = m.Scheduler.QueueDepth, active = m.Scheduler.ActiveCount }).ToArray(),
    };

    public static async Task FeedbackAsync(HttpContext ctx, ServerContext server)
    {
        var log = server.Feedback ?? throw new ApiException(404, "Feedback is off on this server; start it with --feedback FILE.", code: "feedback_disabled");
        if (!ctx.Request.HasJsonContentType())
            throw new ApiException(415, "Send feedback as JSON with 'Content-Type: application/json'.", code: "unsupported_media_type");
        using var doc = await JsonBody.ReadAsync(ctx.Request, Math.Min(server.Options.MaxBodyBytes, FeedbackMaxBodyBytes), ctx.RequestAborted).ConfigureAwait(false);
        var body = doc.RootElement;
        string rating = body.RequiredString("rating");
        if (rating is not ("up" or "down")) throw ApiException.Invalid("rating", "'rating' must be \"up\" or \"down\".");
        string model = body.RequiredString("model");
        if (!server.Models.ContainsKey(model))
            throw new ApiException(404, $"The model '{model}' does not exist; this server has: {string.Join(", ", server.Models.Keys)}.", param: "model", code: "model_not_found");
        string reply = body.RequiredString("reply");
        var prompt = new List<ChatTurn>();
        if (body.Get("prompt") is { } pr)
        {
            if (pr.ValueKind == JsonValueKind.String) prompt.Add(new ChatTurn("user", pr.GetString()!));
            else if (pr.ValueKind == JsonValueKind.Array)
            {
                foreach (var m in pr.EnumerateArray())
                {
                    if (m.ValueKind != JsonValueKind.Object || m.Get("role")?.ValueKind != JsonValueKind.String || m.Get("content")?.ValueKind != JsonValueKind.String)
                        throw ApiException.Invalid("prompt", "'prompt' must be a string or an array of {role, content} strings.");
                    prompt.Add(new ChatTurn(m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!));
                }
            }
            else throw ApiException.Invalid("prompt", "'prompt' must be a string or an array of {role, content} strings.");
        }
        string? conversation = null;
        if (body.Get("conversation") is { } conv && conv.ValueKind != JsonValueKind.Null)
        {
            if (conv.ValueKind != JsonValueKind.String || conv.GetString()!.Length is 0 or > MaxConversationId)
                throw ApiException.Invalid("conversation", $"'conversation' must be a string id of 1 to {MaxConversationId} characters.");
            conversation = conv.GetString();
        }
        log.Append(model, rating, prompt, reply, conversation);
        await ctx.Response.WriteAsJsonAsync(new { status = "ok" }, ApiJson.Options, ctx.RequestAborted).ConfigureAwait(false);
    }
}
