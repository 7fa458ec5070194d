// --api-key as ASP.NET Core authentication and authorization. An authentication scheme checks the bearer token
// (ApiKeyCheck); an authorization policy that requires it is put on the /v1 route group and /metrics as route
// metadata, and is also the fallback policy, so a request that routing could not give a route (an unknown method)
// needs the key too. Public routes (the page, /static, /health, the 404 fallback) say AllowAnonymous. Routing
// matches case-insensitively on the percent-decoded path, so however a client spells /v1/models (/V1/models,
// /%56%31/models) it reaches the same endpoint and the same policy. A refused request gets OpenAI's 401 JSON.
// Does not handle: several keys, scopes, rate limits per key.
using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Quill.Server.Api;

/// <summary>The bearer-key authentication scheme and the policy that requires it.</summary>
internal sealed class ApiKeyAuthentication(IOptionsMonitor<ApiKeyAuthentication.SchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder)
    : AuthenticationHandler<ApiKeyAuthentication.SchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "QuillApiKey";

    /// <summary>The policy every guarded route carries: a request authenticated by <see cref="SchemeName"/>.</summary>
    public static AuthorizationPolicy Policy { get; } = new AuthorizationPolicyBuilder(SchemeName).RequireAuthenticatedUser().Build();

    /// <summary>Options of the scheme: the key to compare with.</summary>
    internal sealed class SchemeOptions : AuthenticationSchemeOptions
    {
        public ApiKeyCheck? Check { get; set; }
    }

    /// <summary>Registers the scheme for key and makes its policy the fallback.</summary>
    public static void AddTo(IServiceCollection services, string key)
    {
        var check = new ApiKeyCheck(key);
        services.AddAuthentication(SchemeName).AddScheme<SchemeOptions, ApiKeyAuthentication>(SchemeName, o => o.Check = check);
        services.AddAuthorization(o => o.FallbackPolicy = Policy);
    }

    private ApiKeyCheck KeyCheck => Options.Check ?? throw new InvalidOperationException("the API key scheme has no key.");

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (KeyCheck.Problem(Request) is { } error) return Task.FromResult(AuthenticateResult.Fail(error.Message));
        var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, "api-key")], SchemeName);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName)));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var error = KeyCheck.Problem(Request) ?? new ApiException(401, "Incorrect API key provided.", "invalid_request_error", code: "invalid_api_key");
        return error.WriteAsync(Context);
    }
}
