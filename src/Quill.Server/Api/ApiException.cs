// An error the API returns to a client, in OpenAI's shape: HTTP status plus
// {"error": {"message", "type", "param", "code"}} (under /api, Ollama's routes, Ollama's {"error": "message"}). Thrown anywhere in a request's handling and written by the
// server's outer middleware (or directly, by the API key challenge); the message is for the client, never a stack
// trace.
using Microsoft.AspNetCore.Http;

namespace Quill.Server.Api;

/// <summary>A client-visible API error.</summary>
public sealed class ApiException : Exception
{
    public ApiException(int status, string message, string type = "invalid_request_error", string? param = null, string? code = null)
        : base(message)
    {
        Status = status;
        Type = type;
        Param = param;
        Code = code;
    }

    public ApiException()
    {
    }

    public ApiException(string message) : base(message)
    {
    }

    public ApiException(string message, Exception inner) : base(message, inner)
    {
    }

    public int Status { get; } = 400;

    /// <summary>invalid_request_error, authentication_error, rate_limit_error, server_error, ...</summary>
    public string Type { get; } = "invalid_request_error";

    /// <summary>The request field at fault, or null.</summary>
    public string? Param { get; }

    /// <summary>A machine-readable code (model_not_found, invalid_api_key, context_length_exceeded, ...), or null.</summary>
    public string? Code { get; }

    /// <summary>Seconds for a Retry-After header (429), or null.</summary>
    public int? RetryAfter { get; init; }

    /// <summary>Invalid value for a field: 400 invalid_request_error naming the field.</summary>
    public static ApiException Invalid(string param, string message) => new(400, message, param: param, code: "invalid_value");

    /// <summary>The error object as OpenAI writes it.</summary>
    public object ToBody() => new { error = new { message = Message, type = Type, param = Param, code = Code } };

    /// <summary>Replaces whatever the response holds with this error (keeping an Allow header) and writes it.</summary>
    internal async Task WriteAsync(HttpContext ctx)
    {
        var allow = ctx.Response.Headers.Allow;
        ctx.Response.Clear();
        if (allow.Count > 0) ctx.Response.Headers.Allow = allow;
        ctx.Response.StatusCode = Status;
        if (RetryAfter is int s) ctx.Response.Headers.RetryAfter = s.ToString(System.Globalization.CultureInfo.InvariantCulture);
        // Ollama's routes answer errors in Ollama's shape, {"error": "message"}
        object body = ctx.Request.Path.StartsWithSegments("/api", StringComparison.Ordinal) ? new { error = Message } : ToBody();
        await ctx.Response.WriteAsJsonAsync(body, ApiJson.Options).ConfigureAwait(false);
    }
}
