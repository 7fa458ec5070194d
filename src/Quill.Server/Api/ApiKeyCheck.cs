// The --api-key guard: with a key set, a /v1 request must carry "Authorization: Bearer KEY". The comparison
// hashes both sides to equal-length digests and compares them in constant time, so neither the key's length nor
// its prefix leaks through timing. Everything outside /v1 (the web page, /health, /metrics) stays open.
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Quill.Server.Api;

/// <summary>Bearer-token check for /v1 routes.</summary>
public sealed class ApiKeyCheck
{
    private readonly byte[] keyDigest;

    public ApiKeyCheck(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        keyDigest = SHA256.HashData(Encoding.UTF8.GetBytes(key));
    }

    /// <summary>True when the path needs the key.</summary>
    public static bool Guards(PathString path) => path.StartsWithSegments("/v1", StringComparison.Ordinal);

    /// <summary>Throws a 401 ApiException unless the request carries the key.</summary>
    public void Check(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        string header = request.Headers.Authorization.ToString();
        const string Bearer = "Bearer ";
        if (!header.StartsWith(Bearer, StringComparison.OrdinalIgnoreCase))
            throw new ApiException(401, "You didn't provide an API key. Send it as 'Authorization: Bearer KEY'.", "invalid_request_error", code: "invalid_api_key");
        byte[] given = SHA256.HashData(Encoding.UTF8.GetBytes(header[Bearer.Length..].Trim()));
        if (!CryptographicOperations.FixedTimeEquals(given, keyDigest))
            throw new ApiException(401, "Incorrect API key provided.", "invalid_request_error", code: "invalid_api_key");
    }
}
