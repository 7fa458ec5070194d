// A real Quill server on a free loopback port for one test class (or one test), with an OpenAI client and a plain
// HttpClient pointed at it. Disposing stops the server and its models.
using System.ClientModel;
using OpenAI;

namespace Quill.Server.Tests.Support;

internal sealed class TestServer : IAsyncDisposable
{
    private TestServer(QuillServer server, HttpClient http, string? apiKey)
    {
        Server = server;
        Http = http;
        Client = new OpenAIClient(new ApiKeyCredential(apiKey ?? "unused"), new OpenAIClientOptions { Endpoint = new Uri(server.Address, "v1") });
    }

    public QuillServer Server { get; }

    public HttpClient Http { get; }

    public OpenAIClient Client { get; }

    public Uri Address => Server.Address;

    public static async Task<TestServer> StartAsync(ServerOptions? options = null, params ServedModel[] models)
    {
        options ??= new ServerOptions();
        options = options with { Host = "127.0.0.1", Port = 0 };
        if (models.Length == 0) models = [TinyModels.Served()];
        var server = await QuillServer.StartAsync(options, models, ownsModels: true);
        var http = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromSeconds(60) };
        return new TestServer(server, http, options.ApiKey);
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
    }
}
