// A model on the Hugging Face hub as users write it: "hf.co/ORG/REPO", "huggingface.co/ORG/REPO" (Ollama's and
// llama.cpp's spelling, optionally with https://), or plain "ORG/REPO", each optionally followed by ":QUANT" (a GGUF
// quantization tag such as Q4_K_M, as in `ollama pull hf.co/ORG/REPO:Q8_0`).
// Does not handle: revisions in the string (they are a separate option), datasets and spaces.
namespace Quill.Hub;

/// <summary>A hub repository and the quantization asked for.</summary>
/// <param name="Repo">"ORG/REPO".</param>
/// <param name="Quant">The GGUF quantization tag, or null for the default choice.</param>
public sealed record HubReference(string Repo, string? Quant)
{
    /// <summary>True when <paramref name="text"/> names a hub model explicitly (hf.co/ or huggingface.co/).</summary>
    public static bool IsHubName(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string t = StripScheme(text);
        return t.StartsWith("hf.co/", StringComparison.OrdinalIgnoreCase) || t.StartsWith("huggingface.co/", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>Parses a model name; throws InvalidConfigException naming what is wrong.</summary>
    public static HubReference Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string t = StripScheme(text.Trim());
        foreach (string host in new[] { "hf.co/", "huggingface.co/" })
        {
            if (t.StartsWith(host, StringComparison.OrdinalIgnoreCase)) t = t[host.Length..];
        }
        string? quant = null;
        int colon = t.LastIndexOf(':');
        if (colon >= 0)
        {
            quant = t[(colon + 1)..];
            t = t[..colon];
            if (quant.Length == 0 || !quant.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.'))
                throw new InvalidConfigException($"'{text}': the part after ':' must be a quantization tag such as Q4_K_M.");
        }
        string[] parts = t.TrimEnd('/').Split('/');
        if (parts.Length != 2 || parts.Any(p => p.Length == 0 || p is "." or ".." || !p.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.')))
            throw new InvalidConfigException($"'{text}' is not a hub model name; write hf.co/ORG/REPO[:QUANT], e.g. hf.co/bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M.");
        return new HubReference(parts[0] + "/" + parts[1], quant);
    }

    private static string StripScheme(string t)
    {
        foreach (string scheme in new[] { "https://", "http://" })
        {
            if (t.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)) return t[scheme.Length..];
        }
        return t;
    }

    public override string ToString() => Quant == null ? $"hf.co/{Repo}" : $"hf.co/{Repo}:{Quant}";
}
