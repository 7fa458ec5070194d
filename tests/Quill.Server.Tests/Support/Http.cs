// Raw HTTP helpers: post JSON and read the status and body, read an SSE stream as its data payloads, and send one
// request byte for byte over a socket (for targets like /%56%31/models that a client library would normalize).
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

    /// <summary>
    /// One request written byte for byte over a socket (no client-side normalization of the target, the Host header
    /// or the method), read to the end; a chunked body is joined. Returns the status, the header block and the body.
    /// </summary>
    public static async Task<(int Status, string Head, string Body)> RawAsync(Uri address, string method, string target, string? key = null,
        string? body = null, string contentType = "application/json", string? host = null, IReadOnlyDictionary<string, string>? headers = null)
    {
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(address.Host, address.Port);
        using var stream = tcp.GetStream();
        var request = new StringBuilder($"{method} {target} HTTP/1.1\r\nHost: {host ?? address.Authority}\r\nConnection: close\r\n");
        if (key != null) request.Append($"Authorization: Bearer {key}\r\n");
        foreach (var (name, value) in headers ?? new Dictionary<string, string>()) request.Append($"{name}: {value}\r\n");
        byte[] payload = body == null ? [] : Encoding.UTF8.GetBytes(body);
        if (body != null) request.Append($"Content-Type: {contentType}\r\nContent-Length: {payload.Length}\r\n");
        request.Append("\r\n");
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request.ToString()));
        await stream.WriteAsync(payload);
        using var response = new MemoryStream();
        await stream.CopyToAsync(response);
        string text = Encoding.UTF8.GetString(response.ToArray());
        int end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        string head = text[..end], rest = text[(end + 4)..];
        if (head.Contains("Transfer-Encoding: chunked", StringComparison.OrdinalIgnoreCase))
        {
            var joined = new StringBuilder();
            for (int at = 0; ;)
            {
                int nl = rest.IndexOf("\r\n", at, StringComparison.Ordinal);
                int size = Convert.ToInt32(rest[at..nl], 16);
                if (size == 0) break;
                joined.Append(rest, nl + 2, size); // the test bodies are ASCII: characters are bytes
                at = nl + 2 + size + 2;
            }
            rest = joined.ToString();
        }
        return (int.Parse(head.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture), head, rest);
    }
}
