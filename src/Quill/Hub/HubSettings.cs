// Where the hub is and where its files go, read from the environment as Hugging Face's own tools read it:
// HF_ENDPOINT (default https://huggingface.co), HF_TOKEN (else the token file $HF_HOME/token that `huggingface-cli
// login` writes), HF_HUB_CACHE (default $HF_HOME/hub, HF_HOME defaulting to ~/.cache/huggingface). Sharing that cache
// means models downloaded by Python tools are found here and the other way round.
namespace Quill.Hub;

/// <summary>Hub endpoint, token and cache folder.</summary>
public sealed record HubSettings(Uri Endpoint, string? Token, string CacheDir)
{
    /// <summary>Settings from the environment (see the file header).</summary>
    public static HubSettings FromEnvironment()
    {
        string? endpoint = Environment.GetEnvironmentVariable("HF_ENDPOINT");
        string home = Environment.GetEnvironmentVariable("HF_HOME") is { Length: > 0 } h
            ? h
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "huggingface");
        string cache = Environment.GetEnvironmentVariable("HF_HUB_CACHE") is { Length: > 0 } c ? c : Path.Combine(home, "hub");
        string? token = Environment.GetEnvironmentVariable("HF_TOKEN");
        if (string.IsNullOrWhiteSpace(token))
        {
            string file = Path.Combine(home, "token");
            token = File.Exists(file) ? File.ReadAllText(file).Trim() : null;
        }
        Uri uri;
        if (string.IsNullOrWhiteSpace(endpoint)) uri = new Uri("https://huggingface.co/");
        else if (!Uri.TryCreate(endpoint.TrimEnd('/') + "/", UriKind.Absolute, out uri!) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp))
            throw new InvalidConfigException($"HF_ENDPOINT '{endpoint}' is not an http(s) URL.");
        return new HubSettings(uri, string.IsNullOrWhiteSpace(token) ? null : token, cache);
    }
}
