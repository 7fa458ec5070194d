// Raw HTTP helpers: post JSON and read the status and body, read an SSE stream as its data payloads.
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Quill.Server.Tests.Support;

internal static class Http
{
    public static async Task<(int Status, JsonElement Body, HttpResponseMessage Response)> PostAsync(HttpClient http, string path, string json, string? key = null)
    {
        using var req = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (key != null) req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        var res = await http.SendAsync(req);
        string text = await res.Content.ReadAsStringAsync();
        var body = text.Length > 0 && (text[0] == '{' || text[0] == '[') ? JsonDocument.Parse(text).RootElement.Clone() : JsonDocument.Parse("null").RootElement.Clone();
        return ((int)res.StatusCode, body, res);
    }

    /// <summary>Posts a streaming request and returns the response once its headers arrive.</summary>
    public static async Task<HttpResponseMessage> PostStreamAsync(HttpClient http, string path, string json, CancellationToken cancel = default)
    {
        var req = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        return await http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, cancel);
    }

    /// <summary>The data payloads of an SSE body, in order ("[DONE]" included).</summary>
    public static async IAsyncEnumerable<string> Events(HttpResponseMessage res)
    {
        using var reader = new StreamReader(await res.Content.ReadAsStreamAsync());
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.StartsWith("data: ", StringComparison.Ordinal)) yield return line[6..];
        }
    }
}
