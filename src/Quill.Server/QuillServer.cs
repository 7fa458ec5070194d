// The HTTP server: Kestrel bound to one address (loopback unless told otherwise), the OpenAI-compatible routes
// (/v1), Ollama's (/api: OllamaEndpoints), the web chat, health and metrics. The pipeline: one middleware turns every failure into OpenAI's error JSON
// (ApiException with its status; anything unexpected a bare 500 without details), counts requests and runs the
// AccessGate (Host and Origin checks, slash merging); then routing; then CORS when --cors-origin is given; then,
// with --api-key, authentication and authorization: the key is required by a policy on the /v1 and /api route groups and
// /metrics (route metadata, never the path's spelling) and by the fallback policy. Every route answers all standard
// methods: its own, OPTIONS (204 with Allow) and a 405 with Allow for the rest, so a HEAD or OPTIONS request
// reaches the same route, and the same policy, as a GET or POST. A client that disconnects cancels its request's
// token, which ends its sequences in the scheduler.
// Does not handle: TLS (put a reverse proxy in front), multiple listen addresses.
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Cors.Infrastructure;
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

/// <summary>What <see cref="QuillServer.WarmUpAsync"/> did: its time, the requests answered and the tokens generated.</summary>
public sealed record WarmUpResult(TimeSpan Elapsed, int Requests, long Tokens);

/// <summary>A running Quill server.</summary>
public sealed class QuillServer : IAsyncDisposable
{
    private readonly WebApplication app;
    private readonly IReadOnlyList<ServedModel> models;
    private readonly bool ownsModels;
    private readonly ServerContext context;

    private QuillServer(WebApplication app, IReadOnlyList<ServedModel> models, bool ownsModels, ServerMetrics metrics, Uri address, ServerContext context)
    {
        this.app = app;
        this.context = context;
        this.models = models;
        this.ownsModels = ownsModels;
        Metrics = metrics;
        Address = address;
    }

    /// <summary>The base URL the server listens on (e.g. http://127.0.0.1:8080/).</summary>
    public Uri Address { get; }

    /// <summary>Lines the operator should see (e.g. every interface bound without an API key); the CLI prints them.</summary>
    public IReadOnlyList<string> Warnings { get; private init; } = [];

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
        var server = new ServerContext(byName, options, metrics, options.FeedbackPath is { } f ? new FeedbackLog(f, options.FeedbackMaxFileBytes) : null);

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
        bool guarded = options.ApiKey != null;
        if (guarded) ApiKeyAuthentication.AddTo(builder.Services, options.ApiKey!);
        if (options.CorsOrigins.Count > 0) builder.Services.AddCors();
        var app = builder.Build();
        var gate = new AccessGate(options);
        var log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Quill.Server");
        app.Use((ctx, next) => Guard(ctx, next, gate, metrics, log));
        app.UseRouting();
        if (options.CorsOrigins.Count > 0) app.UseCors(p => Cors(p, options.CorsOrigins));
        if (guarded)
        {
            app.UseAuthentication();
            app.UseAuthorization();
        }
        Map(app, server, guarded);
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
        return new QuillServer(app, models, ownsModels, metrics, new Uri(url.EndsWith('/') ? url : url + "/"), server) { Warnings = WarningsFor(options) };
    }

    private static string[] WarningsFor(ServerOptions options) => options.IsLoopback || options.ApiKey != null ? [] :
        [$"--host {options.Host} exposes the API to the network without --api-key: anyone who can reach this port can use the models; set --api-key KEY."];

    private static void Cors(CorsPolicyBuilder p, IReadOnlyList<string> origins)
    {
        if (origins.Contains("*")) p.AllowAnyOrigin();
        else p.WithOrigins([.. origins]);
        p.WithMethods("GET", "HEAD", "POST").AllowAnyHeader().SetPreflightMaxAge(TimeSpan.FromMinutes(10));
    }

    private static readonly string[] Get = ["GET", "HEAD"];
    private static readonly string[] Post = ["POST"];
    private static readonly string[] Standard = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"];

    private static void Map(WebApplication app, ServerContext server, bool guarded)
    {
        Route(app, "/", Get, () => Asset("index.html")).AllowAnonymous();
        Route(app, "/static/{name}", Get, (string name) => Asset(name)).AllowAnonymous();
        Route(app, "/health", Get, () => Results.Json(InfoEndpoints.Health(server), ApiJson.Options, statusCode: server.WarmingUp ? 503 : 200)).AllowAnonymous();
        var metrics = Route(app, "/metrics", Get, () => Results.Text(server.Metrics.Render(), "text/plain; version=0.0.4; charset=utf-8"));
        if (guarded && !server.Options.MetricsPublic) metrics.RequireAuthorization(ApiKeyAuthentication.Policy);
        else metrics.AllowAnonymous();

        var v1 = app.MapGroup("/v1");
        if (guarded) v1.RequireAuthorization(ApiKeyAuthentication.Policy);
        Route(v1, "/models", Get, () => Results.Json(InfoEndpoints.Models(server), ApiJson.Options));
        Route(v1, "/models/{id}", Get, (string id) => Results.Json(InfoEndpoints.Model(server, id), ApiJson.Options));
        Route(v1, "/chat/completions", Post, (HttpContext ctx) => ChatEndpoint.HandleAsync(ctx, server));
        Route(v1, "/completions", Post, (HttpContext ctx) => CompletionEndpoint.HandleAsync(ctx, server));
        Route(v1, "/feedback", Post, (HttpContext ctx) => InfoEndpoints.FeedbackAsync(ctx, server));
        v1.Map("/{**rest}", Unknown);

        var ollama = app.MapGroup("/api");
        if (guarded) ollama.RequireAuthorization(ApiKeyAuthentication.Policy);
        Route(ollama, "/chat", Post, (HttpContext ctx) => OllamaEndpoints.ChatAsync(ctx, server));
        Route(ollama, "/generate", Post, (HttpContext ctx) => OllamaEndpoints.GenerateAsync(ctx, server));
        Route(ollama, "/tags", Get, () => Results.Json(OllamaEndpoints.Tags(server), ApiJson.Options));
        Route(ollama, "/show", Post, (HttpContext ctx) => OllamaEndpoints.ShowAsync(ctx, server));
        Route(ollama, "/version", Get, () => Results.Json(OllamaEndpoints.Version(), ApiJson.Options));
        ollama.Map("/{**rest}", Unknown);
        app.Map("/{**path}", Unknown).AllowAnonymous();
    }

    /// <summary>
    /// Maps handler for methods on pattern, and every other standard method to an answer of the same route: OPTIONS
    /// 204 with Allow, the rest 405 with Allow. Returns a builder over both, so metadata lands on all of them.
    /// </summary>
    private static BothEndpoints Route(IEndpointRouteBuilder routes, string pattern, string[] methods, Delegate handler)
    {
        string allow = string.Join(", ", methods);
        var other = routes.MapMethods(pattern, Standard.Except(methods), (HttpContext ctx) =>
        {
            ctx.Response.Headers.Allow = allow;
            if (HttpMethods.IsOptions(ctx.Request.Method))
            {
                ctx.Response.StatusCode = StatusCodes.Status204NoContent;
                return Task.CompletedTask;
            }
            throw new ApiException(405, $"{ctx.Request.Method} is not allowed on {ctx.Request.Path}; use {string.Join(" or ", methods)}.", code: "method_not_allowed");
        });
        return new BothEndpoints(routes.MapMethods(pattern, methods, handler), other);
    }

    /// <summary>Conventions (authorization metadata) applied to a route's own endpoint and its other-methods one.</summary>
    private sealed class BothEndpoints(IEndpointConventionBuilder own, IEndpointConventionBuilder other) : IEndpointConventionBuilder
    {
        public void Add(Action<EndpointBuilder> convention)
        {
            own.Add(convention);
            other.Add(convention);
        }

        public void Finally(Action<EndpointBuilder> finallyConvention)
        {
            own.Finally(finallyConvention);
            other.Finally(finallyConvention);
        }
    }

    private static Task Unknown(HttpContext ctx) =>
        throw new ApiException(404, $"Unknown request URL: {ctx.Request.Method} {ctx.Request.Path}.", code: "unknown_url");

    private static IResult Asset(string name) => WebChatAssets.Get(name) is { } a
        ? Results.Bytes(a.Bytes, a.ContentType)
        : throw new ApiException(404, $"No file {name}.", code: "unknown_url");

    /// <summary>Host / Origin checks, OpenAI-shaped errors and request counting around every request.</summary>
    private static async Task Guard(HttpContext ctx, RequestDelegate next, AccessGate gate, ServerMetrics metrics, ILogger log)
    {
        try
        {
            gate.Check(ctx);
            await next(ctx).ConfigureAwait(false);
            if (ctx.Response.StatusCode == StatusCodes.Status405MethodNotAllowed && !ctx.Response.HasStarted)
                throw new ApiException(405, $"{ctx.Request.Method} is not allowed on {ctx.Request.Path}.", code: "method_not_allowed");
        }
        catch (ApiException ex) when (!ctx.Response.HasStarted)
        {
            await ex.WriteAsync(ctx).ConfigureAwait(false);
        }
        catch (BadHttpRequestException ex) when (!ctx.Response.HasStarted)
        {
            var err = ex.StatusCode == StatusCodes.Status413PayloadTooLarge
                ? new ApiException(413, "The request body is larger than the server's limit.", code: "request_too_large")
                : new ApiException(ex.StatusCode, "The request could not be read.", code: "bad_request");
            await err.WriteAsync(ctx).ConfigureAwait(false);
        }
        catch (Exception) when (ctx.RequestAborted.IsCancellationRequested)
        {
            // The client went away; its sequences were cancelled with RequestAborted.
        }
        catch (Exception ex) when (!ctx.Response.HasStarted)
        {
            log.LogError(ex, "request {Method} {Path} failed", ctx.Request.Method, ctx.Request.Path);
            await new ApiException(500, "The server had an error while processing your request.", "server_error").WriteAsync(ctx).ConfigureAwait(false);
        }
        finally
        {
            string route = (ctx.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "other";
            metrics.CountRequest(route, ctx.Response.StatusCode);
        }
    }

    /// <summary>Rounds of warm-up requests per model (see <see cref="WarmUpAsync"/>).</summary>
    public const int WarmUpRounds = 6;

    /// <summary>
    /// Sends the server's own requests to itself before it is announced, so that the first client's request runs at
    /// steady-state speed: the JIT compiles and tiers up the whole path (Kestrel, routing, JSON, SSE and NDJSON writers,
    /// scheduler, sampler, tokenizer and the model's kernels) on these instead. <see cref="WarmUpRounds"/> rounds of
    /// three short greedy streams per model (/v1/chat/completions, /v1/completions, /api/chat), each round followed by
    /// a 100 ms pause in which the runtime's background compiler installs optimized code (tiered compilation
    /// recompiles a method after 30 calls once 100 ms pass without new methods), or until the budget is spent; then
    /// the metrics are zeroed. Meanwhile /health answers 503 {"status": "warming up"}, so a load balancer or a
    /// readiness probe sends no traffic yet. Returns what it did.
    /// </summary>
    public async Task<WarmUpResult> WarmUpAsync(TimeSpan budget, CancellationToken cancel = default)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        // a server bound to every interface (0.0.0.0, [::]) is asked on loopback, which it answers too
        var target = new UriBuilder(Address);
        if (IPAddress.TryParse(target.Host, out var bound) && (bound.Equals(IPAddress.Any) || bound.Equals(IPAddress.IPv6Any)))
            target.Host = bound.Equals(IPAddress.Any) ? "127.0.0.1" : "[::1]";
        using var http = new HttpClient { BaseAddress = target.Uri, Timeout = budget + TimeSpan.FromSeconds(30) };
        if (context.Options.ApiKey is { } key) http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
        int answered = 0;
        context.WarmingUp = true;
        try
        {
            foreach (var m in models) answered += await WarmUpModelAsync(http, m, () => clock.Elapsed < budget, cancel).ConfigureAwait(false);
        }
        catch (HttpRequestException)
        {
            // the server cannot reach itself (a firewall on loopback?): it serves all the same, only the first
            // requests are slower; the result's Requests then falls short of 3 x WarmUpRounds per model
        }
        finally
        {
            context.WarmingUp = false;
        }
        long generated = Metrics.CompletionTokens;
        Metrics.Reset();
        return new WarmUpResult(clock.Elapsed, answered, generated);
    }

    /// <summary>The warm-up rounds of one model; returns the requests answered.</summary>
    private static async Task<int> WarmUpModelAsync(HttpClient http, ServedModel m, Func<bool> timeLeft, CancellationToken cancel)
    {
        int tokens = Math.Clamp(m.ContextLength / 4, 1, 32);
        string name = System.Text.Json.JsonSerializer.Serialize(m.Name);
        (string Path, string Body)[] requests =
        [
            ("v1/chat/completions", $$$"""{"model":{{{name}}},"messages":[{"role":"user","content":"Hello"}],"max_tokens":{{{tokens}}},"temperature":0,"stream":true,"stream_options":{"include_usage":true}}"""),
            ("v1/completions", $$$"""{"model":{{{name}}},"prompt":"Hello","max_tokens":{{{tokens}}},"temperature":0,"stream":true}"""),
            ("api/chat", $$$"""{"model":{{{name}}},"messages":[{"role":"user","content":"Hello"}],"options":{"num_predict":{{{tokens}}},"temperature":0}}"""),
        ];
        int answered = 0;
        for (int round = 0; round < WarmUpRounds && timeLeft(); round++)
        {
            foreach (var (path, body) in requests)
            {
                using var content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
                using var res = await http.PostAsync(path, content, cancel).ConfigureAwait(false);
                await res.Content.ReadAsStringAsync(cancel).ConfigureAwait(false);
                if (!res.IsSuccessStatusCode) return answered; // e.g. a tokenizer that cannot encode "Hello": stop warming this model
                answered++;
            }
            await Task.Delay(100, cancel).ConfigureAwait(false);
        }
        return answered;
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
