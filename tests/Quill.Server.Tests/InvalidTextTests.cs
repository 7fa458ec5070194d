// Text that is not Unicode in a request (issue 19, item 6): a lone UTF-16 surrogate written as a JSON escape
// ("\ud800"), or bytes that are not UTF-8, in content, model, stop or prompt. Each used to be a 500 with a stack
// trace in the log (System.Text.Json throws when such a string is read); each is now a 400 invalid_value naming
// the field, and a valid surrogate pair (an emoji) still passes.
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Quill.Server.Tests.Support;

namespace Quill.Server.Tests;

public sealed class InvalidTextTests : IAsyncLifetime
{
    private TestServer server = null!;
    private readonly string dir = Directory.CreateTempSubdirectory("quill-text-").FullName;

    public async Task InitializeAsync() => server = await TestServer.StartAsync(new ServerOptions { FeedbackPath = Path.Combine(dir, "f.jsonl") });

    public async Task DisposeAsync()
    {
        await server.DisposeAsync();
        Directory.Delete(dir, recursive: true);
    }

    /// <summary>Posts body as UTF-8, except that each "#" becomes the raw byte sequence bad (not UTF-8).</summary>
    private async Task<(int Status, JsonElement Body)> PostAsync(string path, string body, byte[]? bad = null)
    {
        var bytes = new List<byte>();
        foreach (char c in body)
        {
            if (c == '#' && bad != null) bytes.AddRange(bad);
            else bytes.AddRange(Encoding.UTF8.GetBytes(c.ToString()));
        }
        using var content = new ByteArrayContent([.. bytes]);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var res = await server.Http.PostAsync(path, content);
        string text = await res.Content.ReadAsStringAsync();
        return ((int)res.StatusCode, JsonDocument.Parse(text).RootElement.Clone());
    }

    private static readonly byte[] Ff = [0xFF];
    private static readonly byte[] Truncated = [0xC3, 0x28];
    private static readonly byte[] EncodedSurrogate = [0xED, 0xA0, 0x80]; // U+D800 encoded as if it were a character

    public static TheoryData<string, string, string, int> Cases() => new()
    {
        // path, body, field, raw bytes for '#' (0: none, 1: FF, 2: C3 28, 3: ED A0 80)
        { "v1/chat/completions", """{"model":"tiny","messages":[{"role":"user","content":"hi \ud800"}]}""", "messages[0].content", 0 },
        { "v1/chat/completions", """{"model":"t\udc00iny","messages":[{"role":"user","content":"hi"}]}""", "model", 0 },
        { "v1/chat/completions", """{"model":"tiny","messages":[{"role":"user","content":"hi"}],"stop":["ok","\ud83d"]}""", "stop[1]", 0 },
        { "v1/completions", """{"model":"tiny","prompt":"a\udfffb"}""", "prompt", 0 },
        { "v1/chat/completions", """{"model":"tiny","messages":[{"role":"user","content":"hi #"}]}""", "messages[0].content", 1 },
        { "v1/chat/completions", """{"model":"tiny#","messages":[{"role":"user","content":"hi"}]}""", "model", 2 },
        { "v1/completions", """{"model":"tiny","prompt":["ok","#"]}""", "prompt[1]", 3 },
        { "v1/completions", """{"model":"tiny","prompt":"ok","stop":"#"}""", "stop", 1 },
        { "v1/chat/completions", """{"model":"tiny","messages":[{"role":"user","content":[{"type":"text","text":"\udc00"}]}]}""", "messages[0].content[0].text", 0 },
        { "v1/chat/completions", """{"model":"tiny","messages":[{"role":"user","content":"hi"}],"u\ud800ser":"x"}""", "a field name", 0 },
        { "v1/feedback", """{"model":"tiny","rating":"up","reply":"\ud800"}""", "reply", 0 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Text_that_is_not_unicode_is_a_400_naming_the_field(string path, string body, string field, int raw)
    {
        byte[]? bad = raw switch { 1 => Ff, 2 => Truncated, 3 => EncodedSurrogate, _ => null };
        var (status, json) = await PostAsync(path, body, bad);
        Assert.True(status == 400, $"{status} {json}");
        var error = json.GetProperty("error");
        Assert.Equal("invalid_value", error.GetProperty("code").GetString());
        string message = error.GetProperty("message").GetString()!;
        Assert.Contains("not valid Unicode", message, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", message, StringComparison.Ordinal);
        if (field == "a field name") Assert.Null(error.GetProperty("param").GetString());
        else Assert.Equal(field, error.GetProperty("param").GetString());
        Assert.Contains(field, message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_surrogate_pair_is_text()
    {
        var (status, json) = await PostAsync("v1/chat/completions", """{"model":"tiny","messages":[{"role":"user","content":"hi"}],"stop":"\ud83d\ude00","max_tokens":2}""");
        Assert.True(status == 200, json.ToString());
    }
}
