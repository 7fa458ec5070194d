// Reads a request body as JSON with a size limit (413 beyond it, checked against Content-Length before reading and
// again while reading), and typed accessors for request fields that raise OpenAI-style 400 errors naming the field
// ("temperature must be a number between 0 and 2", ...). Unknown fields are ignored, as many clients send extras.
// Every string and field name in the body is checked to be Unicode before any field is used: bytes that are not
// UTF-8, or a lone surrogate written as an escape ("\ud800"), are a 400 naming the field ("messages[0].content"),
// where System.Text.Json would otherwise throw when the handler reads the string.
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Quill.Server.Api;

/// <summary>Request body reading and field access with client-facing errors.</summary>
public static class JsonBody
{
    /// <summary>Parses the body as one JSON object, refusing bodies over maxBytes.</summary>
    public static async Task<JsonDocument> ReadAsync(HttpRequest request, long maxBytes, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.ContentLength > maxBytes) throw TooLarge(maxBytes);
        using var buffer = new MemoryStream();
        byte[] chunk = new byte[16384];
        try
        {
            int n;
            while ((n = await request.Body.ReadAsync(chunk, cancel).ConfigureAwait(false)) > 0)
            {
                if (buffer.Length + n > maxBytes) throw TooLarge(maxBytes);
                buffer.Write(chunk, 0, n);
            }
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            throw TooLarge(maxBytes);
        }
        if (buffer.Length == 0) throw new ApiException(400, "The request body is empty; send a JSON object.", code: "invalid_json");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException ex)
        {
            throw new ApiException(400, $"The request body is not valid JSON ({FirstLine(ex.Message)}); send a JSON object.", code: "invalid_json");
        }
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
        {
            doc.Dispose();
            throw new ApiException(400, "The request body must be a JSON object.", code: "invalid_json");
        }
        try
        {
            CheckText(doc.RootElement, "");
        }
        catch
        {
            doc.Dispose();
            throw;
        }
        return doc;
    }

    /// <summary>Throws a 400 naming the first string or field name under e (at path) that is not valid Unicode.</summary>
    private static void CheckText(JsonElement e, string path)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var p in e.EnumerateObject())
                {
                    string name;
                    try
                    {
                        name = p.Name;
                    }
                    catch (InvalidOperationException)
                    {
                        throw new ApiException(400, $"The request has a field name{(path.Length > 0 ? $" in '{path}'" : "")} that is not valid Unicode (bytes that are not UTF-8, or a lone surrogate such as \\ud800); send UTF-8 text.", code: "invalid_value");
                    }
                    CheckText(p.Value, path.Length == 0 ? name : $"{path}.{name}");
                }
                break;
            case JsonValueKind.Array:
                int i = 0;
                foreach (var item in e.EnumerateArray()) CheckText(item, $"{path}[{i++}]");
                break;
            case JsonValueKind.String:
                try
                {
                    _ = e.GetString();
                }
                catch (InvalidOperationException)
                {
                    throw ApiException.Invalid(path, $"'{path}' is not valid Unicode: it holds bytes that are not UTF-8 or a lone surrogate such as \\ud800; send UTF-8 text.");
                }
                break;
        }
    }

    private static ApiException TooLarge(long maxBytes) =>
        new(413, $"The request body is larger than the server's limit of {maxBytes} bytes; send less (or start the server with a larger --max-body).", code: "request_too_large");

    private static string FirstLine(string s)
    {
        int nl = s.IndexOf('\n', StringComparison.Ordinal);
        return nl < 0 ? s : s[..nl];
    }

    /// <summary>The field, or null when absent or JSON null.</summary>
    public static JsonElement? Get(this JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    public static string RequiredString(this JsonElement obj, string name)
    {
        var v = obj.Get(name) ?? throw new ApiException(400, $"'{name}' is required.", param: name, code: "missing_required_parameter");
        if (v.ValueKind != JsonValueKind.String) throw ApiException.Invalid(name, $"'{name}' must be a string.");
        return v.GetString()!;
    }

    public static bool Bool(this JsonElement obj, string name, bool fallback)
    {
        var v = obj.Get(name);
        if (v == null) return fallback;
        return v.Value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw ApiException.Invalid(name, $"'{name}' must be a boolean."),
        };
    }

    /// <summary>A number in [min, max], or fallback when absent.</summary>
    public static float Number(this JsonElement obj, string name, float fallback, float min, float max)
    {
        var v = obj.Get(name);
        if (v == null) return fallback;
        if (v.Value.ValueKind != JsonValueKind.Number || !v.Value.TryGetDouble(out double d))
            throw ApiException.Invalid(name, $"'{name}' must be a number between {min} and {max}.");
        if (!(d >= min && d <= max)) throw ApiException.Invalid(name, $"'{name}' is {d}; it must be between {min} and {max}.");
        return (float)d;
    }

    /// <summary>An integer in [min, max], or null when absent.</summary>
    public static long? Integer(this JsonElement obj, string name, long min, long max)
    {
        var v = obj.Get(name);
        if (v == null) return null;
        if (v.Value.ValueKind != JsonValueKind.Number || !v.Value.TryGetInt64(out long n))
            throw ApiException.Invalid(name, $"'{name}' must be an integer.");
        if (n < min || n > max) throw ApiException.Invalid(name, $"'{name}' is {n}; it must be between {min} and {max}.");
        return n;
    }

    /// <summary>stop: a string or an array of up to 4 strings (OpenAI's limit).</summary>
    public static string[] Stops(this JsonElement obj)
    {
        var v = obj.Get("stop");
        if (v == null) return [];
        if (v.Value.ValueKind == JsonValueKind.String) return [v.Value.GetString()!];
        if (v.Value.ValueKind != JsonValueKind.Array) throw ApiException.Invalid("stop", "'stop' must be a string or an array of strings.");
        var list = new List<string>();
        foreach (var s in v.Value.EnumerateArray())
        {
            if (s.ValueKind != JsonValueKind.String) throw ApiException.Invalid("stop", "'stop' must be a string or an array of strings.");
            list.Add(s.GetString()!);
        }
        if (list.Count > 4) throw ApiException.Invalid("stop", $"'stop' has {list.Count} strings; at most 4 are allowed.");
        if (list.Any(s => s.Length == 0)) throw ApiException.Invalid("stop", "'stop' strings must not be empty.");
        return [.. list];
    }
}
