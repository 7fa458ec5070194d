// Parses Ollama's /api/chat and /api/generate bodies (ollama docs/api.md) into the same generation requests the
// OpenAI routes build. A model is found by its name or name:latest. Sampling comes from "options" with Ollama's
// documented defaults (docs/modelfile.md: temperature 0.8, top_k 40, top_p 0.9, repeat_penalty 1.1 over the last
// repeat_last_n 64 tokens, num_predict -1 = until the context is full, a random seed); -2 (fill the context) is
// the same as -1 here. Options Quill has no use for (num_ctx, num_thread, num_gpu, mirostat, ...) are ignored as
// Ollama ignores unknown ones; keep_alive is ignored (a served model stays loaded). Refused with a 400 rather than
// ignored, so a client is not misled: tools, format (JSON mode), images, think, suffix, template and context.
using System.Security.Cryptography;
using System.Text.Json;
using Quill.Inference;
using Quill.Inference.Batching;

namespace Quill.Server.Api;

/// <summary>A validated Ollama request.</summary>
internal sealed record OllamaRequest
{
    public required ServedModel Model { get; init; }

    /// <summary>The model name as the client spelled it (echoed in every response, as Ollama does).</summary>
    public required string ModelName { get; init; }

    public required GenerationRequest Template { get; init; }

    /// <summary>"stream" (default true): newline-delimited JSON chunks, else one object.</summary>
    public bool Stream { get; init; } = true;

    /// <summary>/api/chat: the conversation (empty: only load the model).</summary>
    public IReadOnlyList<ChatTurn> Messages { get; init; } = [];

    /// <summary>/api/generate: the prompt (empty: only load the model).</summary>
    public string Prompt { get; init; } = "";

    /// <summary>/api/generate: the system prompt for a model with a chat template.</summary>
    public string? System { get; init; }

    /// <summary>/api/generate: the prompt as given, without the model's chat template.</summary>
    public bool Raw { get; init; }

    public static OllamaRequest ParseChat(JsonElement body, IReadOnlyDictionary<string, ServedModel> models)
    {
        Refuse(body, "tools", "format", "images");
        return Common(body, models) with { Messages = ReadMessages(body) };
    }

    public static OllamaRequest ParseGenerate(JsonElement body, IReadOnlyDictionary<string, ServedModel> models)
    {
        Refuse(body, "format", "images", "suffix", "template", "context");
        return Common(body, models) with
        {
            Prompt = OptionalString(body, "prompt") ?? "",
            System = OptionalString(body, "system"),
            Raw = body.Bool("raw", false),
        };
    }

    /// <summary>What both routes read: the model, think (refused), the options and stream.</summary>
    private static OllamaRequest Common(JsonElement body, IReadOnlyDictionary<string, ServedModel> models)
    {
        var (model, name) = FindModel(body, models);
        if (body.Get("think") is { } t && t.ValueKind != JsonValueKind.False)
            throw ApiException.Invalid("think", "'think' is not supported by this server (Quill models do not think apart from their reply); leave it out.");
        return new OllamaRequest { Model = model, ModelName = name, Template = Sampling(body), Stream = body.Bool("stream", true) };
    }

    /// <summary>"tiny" or "tiny:latest" finds the model served as "tiny" (404 otherwise, as Ollama answers).</summary>
    public static (ServedModel Model, string Name) FindModel(JsonElement body, IReadOnlyDictionary<string, ServedModel> models)
    {
        ArgumentNullException.ThrowIfNull(models);
        var v = body.Get("model") ?? body.Get("name") ?? throw new ApiException(400, "'model' is required.", param: "model", code: "missing_required_parameter");
        if (v.ValueKind != JsonValueKind.String) throw ApiException.Invalid("model", "'model' must be a string.");
        string name = v.GetString()!;
        return (Resolve(name, models) ?? throw new ApiException(404, $"model '{name}' not found; this server has: {string.Join(", ", models.Keys.Select(k => k + ":latest"))}.", param: "model", code: "model_not_found"), name);
    }

    public static ServedModel? Resolve(string name, IReadOnlyDictionary<string, ServedModel> models)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(models);
        if (models.TryGetValue(name, out var m)) return m;
        return name.EndsWith(":latest", StringComparison.Ordinal) && models.TryGetValue(name[..^":latest".Length], out m) ? m : null;
    }

    private static void Refuse(JsonElement body, params string[] fields)
    {
        foreach (string f in fields)
        {
            if (body.Get(f) is { } v && !(v.ValueKind == JsonValueKind.Array && v.GetArrayLength() == 0) && !(v.ValueKind == JsonValueKind.String && v.GetString()!.Length == 0))
                throw ApiException.Invalid(f, $"'{f}' is not supported by this server; leave it out.");
        }
    }

    private static string? OptionalString(JsonElement body, string name)
    {
        var v = body.Get(name);
        if (v == null) return null;
        if (v.Value.ValueKind != JsonValueKind.String) throw ApiException.Invalid(name, $"'{name}' must be a string.");
        return v.Value.GetString();
    }

    private static readonly HashSet<string> Roles = ["system", "user", "assistant"];

    private static List<ChatTurn> ReadMessages(JsonElement body)
    {
        var v = body.Get("messages");
        if (v == null) return [];
        if (v.Value.ValueKind != JsonValueKind.Array) throw ApiException.Invalid("messages", "'messages' must be an array of {role, content} objects.");
        var list = new List<ChatTurn>();
        int i = 0;
        foreach (var m in v.Value.EnumerateArray())
        {
            string at = $"messages[{i++}]";
            if (m.ValueKind != JsonValueKind.Object) throw ApiException.Invalid(at, $"'{at}' must be an object with role and content.");
            var role = m.Get("role");
            if (role?.ValueKind != JsonValueKind.String || !Roles.Contains(role.Value.GetString()!))
                throw ApiException.Invalid($"{at}.role", $"'{at}.role' must be one of: {string.Join(", ", Roles)} (tool messages are not supported).");
            if (m.Get("images") is { ValueKind: JsonValueKind.Array } im && im.GetArrayLength() > 0)
                throw ApiException.Invalid($"{at}.images", $"'{at}.images' is not supported by this server; send text only.");
            if (m.Get("tool_calls") is { ValueKind: JsonValueKind.Array } tc && tc.GetArrayLength() > 0)
                throw ApiException.Invalid($"{at}.tool_calls", $"'{at}.tool_calls' is not supported by this server; leave it out.");
            var content = m.Get("content");
            if (content != null && content.Value.ValueKind != JsonValueKind.String) throw ApiException.Invalid($"{at}.content", $"'{at}.content' must be a string.");
            list.Add(new ChatTurn(role.Value.GetString()!, content?.GetString() ?? ""));
        }
        return list;
    }

    private static readonly JsonElement NoOptions = JsonDocument.Parse("{}").RootElement.Clone();

    /// <summary>The options object mapped onto sampling, limits and stops, with Ollama's defaults.</summary>
    private static GenerationRequest Sampling(JsonElement body)
    {
        var o = body.Get("options");
        if (o != null && o.Value.ValueKind != JsonValueKind.Object) throw ApiException.Invalid("options", "'options' must be an object.");
        var opts = o ?? NoOptions;
        float Num(string name, float fallback, float min, float max)
        {
            try
            {
                return opts.Number(name, fallback, min, max);
            }
            catch (ApiException ex)
            {
                throw ApiException.Invalid($"options.{name}", ex.Message.Replace($"'{name}'", $"'options.{name}'", StringComparison.Ordinal));
            }
        }
        long? Int(string name, long min, long max)
        {
            try
            {
                return opts.Integer(name, min, max);
            }
            catch (ApiException ex)
            {
                throw ApiException.Invalid($"options.{name}", ex.Message.Replace($"'{name}'", $"'options.{name}'", StringComparison.Ordinal));
            }
        }
        long numPredict = Int("num_predict", -2, int.MaxValue) ?? -1;
        if (numPredict == 0) throw ApiException.Invalid("options.num_predict", "'options.num_predict' is 0; use a positive count, or -1 to write until the model stops or the context is full.");
        long repeatLastN = Int("repeat_last_n", -1, int.MaxValue) ?? 64;
        float repeatPenalty = Num("repeat_penalty", 1.1f, 0f, 100f);
        if (repeatPenalty <= 0) throw ApiException.Invalid("options.repeat_penalty", "'options.repeat_penalty' must be above 0 (1 = off).");
        float presence = Num("presence_penalty", 0f, -2f, 2f), frequency = Num("frequency_penalty", 0f, -2f, 2f);
        if (repeatLastN == 0) (repeatPenalty, presence, frequency) = (1f, 0f, 0f); // Ollama: 0 = disabled
        long? seed = Int("seed", long.MinValue, long.MaxValue);
        var sampling = new SamplingOptions
        {
            Temperature = Num("temperature", 0.8f, 0f, 100f),
            TopK = (int)Math.Max(0, Int("top_k", long.MinValue, int.MaxValue) ?? 40),
            TopP = Math.Max(Num("top_p", 0.9f, 0f, 1f), float.Epsilon),
            MinP = Num("min_p", 0f, 0f, 0.99f),
            RepetitionPenalty = repeatPenalty,
            PresencePenalty = presence,
            FrequencyPenalty = frequency,
            PenaltyWindow = repeatLastN < 0 ? 0 : (int)repeatLastN,
            // Ollama: a negative seed (its default is -1) means a random one
            Seed = seed is long s && s >= 0 ? (ulong)s : BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8)),
        };
        string[] stops;
        try
        {
            stops = opts.Stops();
        }
        catch (ApiException ex)
        {
            throw ApiException.Invalid("options.stop", ex.Message.Replace("'stop'", "'options.stop'", StringComparison.Ordinal));
        }
        return new GenerationRequest
        {
            Prompt = [],
            Sampling = sampling,
            MaxTokens = numPredict < 0 ? int.MaxValue : (int)numPredict,
            StopStrings = stops,
        };
    }
}
