// Parses and validates /v1/chat/completions and /v1/completions bodies into generation requests. Every value is
// checked against the ranges OpenAI documents (temperature 0..2, top_p 0..1, penalties -2..2, n, stop, logprobs,
// top_logprobs ...); a bad one raises a 400 naming the field, an unknown model a 404 (model_not_found).
// Extensions beyond OpenAI: top_k and min_p. Does not handle: tools / function calling, images, audio,
// response_format (refused with 400 rather than ignored, so a client is not misled).
using System.Security.Cryptography;
using System.Text.Json;
using Quill.Inference;
using Quill.Inference.Batching;

namespace Quill.Server.Api;

/// <summary>A validated request: the model, one template for its sequences, and how to answer.</summary>
public sealed class ParsedRequest
{
    public required ServedModel Model { get; init; }

    /// <summary>Sampling, limits, stops and logprob settings shared by every choice (Prompt still empty).</summary>
    public required GenerationRequest Template { get; init; }

    /// <summary>Choices per prompt.</summary>
    public int N { get; init; } = 1;

    public bool Stream { get; init; }

    /// <summary>stream_options.include_usage: a last chunk carries usage.</summary>
    public bool IncludeUsage { get; init; }

    /// <summary>Chat: the conversation.</summary>
    public IReadOnlyList<ChatTurn> Messages { get; init; } = [];

    /// <summary>Completions: each prompt as text or as token ids.</summary>
    public IReadOnlyList<(string? Text, int[]? Ids)> Prompts { get; init; } = [];

    /// <summary>Completions: return the prompt before the completion.</summary>
    public bool Echo { get; init; }

    /// <summary>The seeds of choice i: the request's seed plus i (a random seed when the request has none).</summary>
    public GenerationRequest ForChoice(GenerationRequest request, int i)
    {
        ArgumentNullException.ThrowIfNull(request);
        return request with { Sampling = request.Sampling with { Seed = unchecked((request.Sampling.Seed ?? 0) + (ulong)i) } };
    }
}

/// <summary>Turns request JSON into a <see cref="ParsedRequest"/>.</summary>
public static class RequestParser
{
    /// <summary>Largest n accepted.</summary>
    public const int MaxChoices = 16;

    private static readonly HashSet<string> Roles = ["system", "developer", "user", "assistant"];

    public static ParsedRequest ParseChat(JsonElement body, IReadOnlyDictionary<string, ServedModel> models)
    {
        var model = FindModel(body, models);
        Refuse(body, "tools", "tool_choice", "functions", "function_call", "response_format", "audio", "modalities", "prediction");
        bool logprobs = body.Bool("logprobs", false);
        int top = (int)(body.Integer("top_logprobs", 0, 20) ?? 0);
        if (top > 0 && !logprobs) throw ApiException.Invalid("top_logprobs", "'top_logprobs' needs 'logprobs': true.");
        long? maxTokens = body.Integer("max_completion_tokens", 1, int.MaxValue) ?? body.Integer("max_tokens", 1, int.MaxValue);
        return new ParsedRequest
        {
            Model = model,
            Template = Template(body, maxTokens ?? int.MaxValue, logprobs, top),
            N = (int)(body.Integer("n", 1, MaxChoices) ?? 1),
            Stream = body.Bool("stream", false),
            IncludeUsage = IncludeUsage(body),
            Messages = Messages(body),
        };
    }

    public static ParsedRequest ParseCompletion(JsonElement body, IReadOnlyDictionary<string, ServedModel> models)
    {
        var model = FindModel(body, models);
        Refuse(body, "suffix");
        int? logprobs = (int?)body.Integer("logprobs", 0, 5);
        long maxTokens = body.Integer("max_tokens", 0, int.MaxValue) ?? 16;
        if (maxTokens == 0) throw ApiException.Invalid("max_tokens", "'max_tokens' is 0; it must be at least 1.");
        int n = (int)(body.Integer("n", 1, MaxChoices) ?? 1);
        if (body.Integer("best_of", 1, MaxChoices) is long bestOf && bestOf != n)
            throw ApiException.Invalid("best_of", "'best_of' other than n is not supported; leave it out.");
        return new ParsedRequest
        {
            Model = model,
            Template = Template(body, (int)maxTokens, logprobs != null, logprobs ?? 0),
            N = n,
            Stream = body.Bool("stream", false),
            IncludeUsage = IncludeUsage(body),
            Prompts = Prompts(body),
            Echo = body.Bool("echo", false),
        };
    }

    private static ServedModel FindModel(JsonElement body, IReadOnlyDictionary<string, ServedModel> models)
    {
        string name = body.RequiredString("model");
        if (models.TryGetValue(name, out var m)) return m;
        throw new ApiException(404, $"The model '{name}' does not exist; this server has: {string.Join(", ", models.Keys)}.", param: "model", code: "model_not_found");
    }

    private static void Refuse(JsonElement body, params string[] fields)
    {
        foreach (string f in fields)
        {
            if (body.Get(f) is { } v && !(v.ValueKind == JsonValueKind.Array && v.GetArrayLength() == 0))
                throw ApiException.Invalid(f, $"'{f}' is not supported by this server; leave it out.");
        }
    }

    private static GenerationRequest Template(JsonElement body, long maxTokens, bool logprobs, int top)
    {
        ulong seed = body.Integer("seed", long.MinValue, long.MaxValue) is long s ? unchecked((ulong)s) : RandomSeed();
        var sampling = new SamplingOptions
        {
            Temperature = body.Number("temperature", 1f, 0f, 2f),
            TopP = body.Number("top_p", 1f, 0f, 1f),
            TopK = (int)(body.Integer("top_k", 0, int.MaxValue) ?? 0),
            MinP = body.Number("min_p", 0f, 0f, 0.99f),
            PresencePenalty = body.Number("presence_penalty", 0f, -2f, 2f),
            FrequencyPenalty = body.Number("frequency_penalty", 0f, -2f, 2f),
            Seed = seed,
            PenaltyWindow = 0,
        };
        if (sampling.TopP == 0) sampling = sampling with { TopP = float.Epsilon };
        return new GenerationRequest
        {
            Prompt = [],
            Sampling = sampling,
            MaxTokens = (int)Math.Min(maxTokens, int.MaxValue),
            StopStrings = body.Stops(),
            Logprobs = logprobs,
            TopLogprobs = top,
        };
    }

    private static ulong RandomSeed() => BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8));

    private static bool IncludeUsage(JsonElement body)
    {
        var o = body.Get("stream_options");
        if (o == null) return false;
        if (o.Value.ValueKind != JsonValueKind.Object) throw ApiException.Invalid("stream_options", "'stream_options' must be an object.");
        if (!body.Bool("stream", false)) throw ApiException.Invalid("stream_options", "'stream_options' is only allowed with 'stream': true.");
        return o.Value.Bool("include_usage", false);
    }

    private static List<ChatTurn> Messages(JsonElement body)
    {
        var v = body.Get("messages") ?? throw new ApiException(400, "'messages' is required.", param: "messages", code: "missing_required_parameter");
        if (v.ValueKind != JsonValueKind.Array || v.GetArrayLength() == 0)
            throw ApiException.Invalid("messages", "'messages' must be a non-empty array of {role, content} objects.");
        var list = new List<ChatTurn>();
        int i = 0;
        foreach (var m in v.EnumerateArray())
        {
            string at = $"messages[{i}]";
            if (m.ValueKind != JsonValueKind.Object) throw ApiException.Invalid(at, $"'{at}' must be an object with role and content.");
            var role = m.Get("role");
            if (role?.ValueKind != JsonValueKind.String || !Roles.Contains(role.Value.GetString()!))
                throw ApiException.Invalid($"{at}.role", $"'{at}.role' must be one of: {string.Join(", ", Roles)}.");
            list.Add(new ChatTurn(role.Value.GetString()!, Content(m.Get("content"), $"{at}.content")));
            i++;
        }
        return list;
    }

    /// <summary>A string, or an array of {type: "text", text} parts (joined), or null (empty).</summary>
    private static string Content(JsonElement? content, string at)
    {
        if (content == null) return "";
        var c = content.Value;
        if (c.ValueKind == JsonValueKind.String) return c.GetString()!;
        if (c.ValueKind != JsonValueKind.Array) throw ApiException.Invalid(at, $"'{at}' must be a string or an array of text parts.");
        var sb = new System.Text.StringBuilder();
        foreach (var part in c.EnumerateArray())
        {
            if (part.ValueKind != JsonValueKind.Object || part.Get("type")?.GetString() != "text" || part.Get("text")?.ValueKind != JsonValueKind.String)
                throw ApiException.Invalid(at, $"'{at}' parts must be {{\"type\": \"text\", \"text\": ...}}; other part types are not supported.");
            sb.Append(part.GetProperty("text").GetString());
        }
        return sb.ToString();
    }

    /// <summary>prompt: a string, an array of strings, an array of token ids, or an array of such arrays.</summary>
    private static List<(string?, int[]?)> Prompts(JsonElement body)
    {
        var v = body.Get("prompt") ?? throw new ApiException(400, "'prompt' is required.", param: "prompt", code: "missing_required_parameter");
        const string Shape = "'prompt' must be a string, an array of strings, an array of token ids, or an array of token id arrays.";
        if (v.ValueKind == JsonValueKind.String) return [(v.GetString(), null)];
        if (v.ValueKind != JsonValueKind.Array || v.GetArrayLength() == 0) throw ApiException.Invalid("prompt", Shape);
        var first = v[0];
        if (first.ValueKind == JsonValueKind.Number) return [(null, Ids(v, Shape))];
        var list = new List<(string?, int[]?)>();
        foreach (var p in v.EnumerateArray())
        {
            if (p.ValueKind == JsonValueKind.String) list.Add((p.GetString(), null));
            else if (p.ValueKind == JsonValueKind.Array) list.Add((null, Ids(p, Shape)));
            else throw ApiException.Invalid("prompt", Shape);
        }
        if (list.Count > MaxChoices) throw ApiException.Invalid("prompt", $"'prompt' holds {list.Count} prompts; at most {MaxChoices} are allowed.");
        return list;
    }

    private static int[] Ids(JsonElement array, string shape)
    {
        var ids = new List<int>();
        foreach (var t in array.EnumerateArray())
        {
            if (t.ValueKind != JsonValueKind.Number || !t.TryGetInt32(out int id)) throw ApiException.Invalid("prompt", shape);
            ids.Add(id);
        }
        return [.. ids];
    }
}
