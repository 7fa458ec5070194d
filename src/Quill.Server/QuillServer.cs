// The HTTP server: Kestrel bound to one address (loopback unless told otherwise), the OpenAI-compatible routes,
// the web chat, health and metrics. One middleware turns every failure into OpenAI's error JSON (ApiException
// with its status; anything unexpected a bare 500 without details), checks the API key on /v1 routes and counts
// requests. A client that disconnects cancels its request's token, which ends its sequences in the scheduler.
// Does not handle: TLS (put a reverse proxy in front), multiple listen addresses.
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Quill.Server.Api;

namespace Quill.Server;

/// <summary>A running Quill server.</summary>
public sealed class QuillServer : IAsyncDisposable
{
    private readonly WebApplication app;
    private readonly IReadOnlyList<ServedModel> models;
    private readonly bool ownsModels;

    private QuillServer(WebApplication app, IReadOnlyList<ServedModel> models, bool ownsModels, ServerMetrics metrics, Uri address)
    {
        this.app = app;
        this.models = models;
        this.ownsModels = ownsModels;
        Metrics = metrics;
        Address = address;
    }

    /// <summary>The base URL the server listens on (e.g. http://127.0.0.1:8080/).</summary>
    public Uri Address { get; }

    public ServerMetrics Metrics { get; }

    public IReadOnlyList<ServedModel> Models => models;

    /// <summary>Starts serving the models; with ownsModels the server disposes them when it stops.</summary>
    public static async Task<QuillServer> StartAsync(ServerOptions options, IReadOnlyList<ServedModel> models, bool ownsModels = false, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(models);
        options.Validate();
        if (models.Count == 0) throw new InvalidConfigException("no model to serve; pass --model PATH.");
        var byName = new Dictionary<string, ServedModel>(StringComparer.Ordinal);
        foreach (var m in models)
        {
            if (!byName.TryAdd(m.Name, m)) throw new InvalidConfigException($"two models are named '{m.Name}'; rename one of the files.");
        }
        var metrics = new ServerMetrics();
        foreach (var m in models) m.AttachMetrics(metrics);
        var server = new ServerContext(byName, options, metrics, options.FeedbackPath is { } f ? new FeedbackLog(f) : null);

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory, Args = [] });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = options.MaxBodyBytes;
            if (options.Host == "localhost") k.ListenLocalhost(options.Port);
            else if (IPAddress.TryParse(options.Host, out var ip)) k.Listen(ip, options.Port);
            else throw new InvalidConfigException($"--host {options.Host} is not an IP address; use 127.0.0.1, ::1, 0.0.0.0 or localhost.");
        });
        var app = builder.Build();
        var key = options.ApiKey is { } k ? new ApiKeyCheck(k) : null;
        var log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Quill.Server");
        app.Use((ctx, next) => Guard(ctx, next, key, metrics, log));
        Map(app, server);
        try
        {
            await app.StartAsync(cancel).ConfigureAwait(false);
        }
        catch (IOException ex)
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw new InvalidConfigException($"cannot listen on {options.Host}:{options.Port} ({ex.Message}); pick another --port.", ex);
        }
        string url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new QuillServer(app, models, ownsModels, metrics, new Uri(url.EndsWith('/') ? url : url + "/"));
    }

    private static readonly HashSet<string> PostOnly = ["/v1/chat/completions", "/v1/completions", "/v1/feedback"];

    private static void Map(WebApplication app, ServerContext server)
    {
        app.MapGet("/", () => Asset("index.html"));
        app.MapGet("/static/{name}", (string name) => Asset(name));
        app.MapGet("/health", () => Results.Json(InfoEndpoints.Health(server), ApiJson.Options));
        app.MapGet("/metrics", () => Results.Text(server.Metrics.Render(), "text/plain; version=0.0.4; charset=utf-8"));
        app.MapGet("/v1/models", () => Results.Json(InfoEndpoints.Models(server), ApiJson.Options));
        app.MapGet("/v1/models/{id}", (string id) => Results.Json(InfoEndpoints.Model(server, id), ApiJson.Options));
        app.MapPost("/v1/chat/completions", ctx => ChatEndpoint.HandleAsync(ctx, server));
        app.MapPost("/v1/completions", ctx => CompletionEndpoint.HandleAsync(ctx, server));
        app.MapPost("/v1/feedback", ctx => InfoEndpoints.FeedbackAsync(ctx, server));
        app.MapFallback(ctx => throw (PostOnly.Contains(ctx.Request.Path.Value ?? "")
            ? new ApiException(405, $"{ctx.Request.Method} is not allowed on {ctx.Request.Path}; use POST.", code: "method_not_allowed")
            : new ApiException(404, $"Unknown request URL: {ctx.Request.Method} {ctx.Request.Path}.", code: "unknown_url")));
    }

    private static IResult Asset(string name) => WebChatAssets.Get(name) is { } a
        ? Results.Bytes(a.Bytes, a.ContentType)
        : throw new ApiException(404, $"No file {name}.", code: "unknown_url");

    /// <summary>API key check, OpenAI-shaped errors and request counting around every request.</summary>
    private static async Task Guard(HttpContext ctx, RequestDelegate next, ApiKeyCheck? key, ServerMetrics metrics, ILogger log)
    {
        try
        {
            if (key != null && ApiKeyCheck.Guards(ctx.Request.Path)) key.Check(ctx.Request);
            await next(ctx).ConfigureAwait(false);
            if (ctx.Response.StatusCode == StatusCodes.Status405MethodNotAllowed && !ctx.Response.HasStarted)
                throw new ApiException(405, $"{ctx.Request.Method} is not allowed on {ctx.Request.Path}.", code: "method_not_allowed");
        }
        catch (ApiException ex) when (!ctx.Response.HasStarted)
        {
            await WriteError(ctx, ex).ConfigureAwait(false);
        }
        catch (BadHttpRequestException ex) when (!ctx.Response.HasStarted)
        {
            var err = ex.StatusCode == StatusCodes.Status413PayloadTooLarge
                ? new ApiException(413, "The request body is larger than the server's limit.", code: "request_too_large")
                : new ApiException(ex.StatusCode, "The request could not be read.", code: "bad_request");
            await WriteError(ctx, err).ConfigureAwait(false);
        }
        catch (Exception) when (ctx.RequestAborted.IsCancellationRequested)
        {
            // The client went away; its sequences were cancelled with RequestAborted.
        }
        catch (Exception ex) when (!ctx.Response.HasStarted)
        {
            log.LogError(ex, "request {Method} {Path} failed", ctx.Request.Method, ctx.Request.Path);
            await WriteError(ctx, new ApiException(500, "The server had an error while processing your request.", "server_error")).ConfigureAwait(false);
        }
        finally
        {
            string route = (ctx.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "other";
            metrics.CountRequest(route, ctx.Response.StatusCode);
        }
    }

    private static async Task WriteError(HttpContext ctx, ApiException ex)
    {
        ctx.Response.Clear();
        ctx.Response.StatusCode = ex.Status;
        if (ex.RetryAfter is int s) ctx.Response.Headers.RetryAfter = s.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await ctx.Response.WriteAsJsonAsync(ex.ToBody(), ApiJson.Options).ConfigureAwait(false);
    }

    /// <summary>Completes when the host stops (Ctrl+C, SIGTERM) or cancel fires.</summary>
    public Task WaitForShutdownAsync(CancellationToken cancel = default) => app.WaitForShutdownAsync(cancel);

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync().ConfigureAwait(false);
        await app.DisposeAsync().ConfigureAwait(false);
        if (ownsModels)
        {
            foreach (var m in models) m.Dispose();
        }
    }
}
