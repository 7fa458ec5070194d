// The --api-key comparison: a request carries the key as "Authorization: Bearer KEY". The comparison hashes both
// sides to equal-length digests and compares them in constant time, so neither the key's length nor its prefix
// leaks through timing. Which routes need the key is not decided here but by route metadata (see
// ApiKeyAuthentication and QuillServer.Map), never by the spelling of the path.
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Quill.Server.Api;

/// <summary>Checks the bearer token of a request against the server's key.</summary>
public sealed class ApiKeyCheck
{
    private readonly byte[] keyDigest;

    public ApiKeyCheck(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        keyDigest = SHA256.HashData(Encoding.UTF8.GetBytes(key));
    }

    /// <summary>The 401 error for the request (no key, wrong key), or null when it carries the key.</summary>
    public ApiException? Problem(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        string header = request.Headers.Authorization.ToString();
        const string Bearer = "Bearer ";
        if (!header.StartsWith(Bearer, StringComparison.OrdinalIgnoreCase))
            return new ApiException(401, "You didn't provide an API key. Send it as 'Authorization: Bearer KEY'.", "invalid_request_error", code: "invalid_api_key");
        byte[] given = SHA256.HashData(Encoding.UTF8.GetBytes(header[Bearer.Length..].Trim()));
        if (!CryptographicOperations.FixedTimeEquals(given, keyDigest))
            return new ApiException(401, "Incorrect API key provided.", "invalid_request_error", code: "invalid_api_key");
        return null;
    }

    /// <summary>Throws the 401 ApiException unless the request carries the key.</summary>
    public void Check(HttpRequest request)
    {
        if (Problem(request) is { } error) throw error;
    }
}
