// The web chat's files (wwwroot/: index.html, app.js, markdown.js, style.css) are embedded in this assembly, so
// the page is served by the app itself wherever it is installed: no CDN, no content folder, works offline.
using System.Reflection;

namespace Quill.Server;

/// <summary>Embedded static files of the web chat.</summary>
internal static class WebChatAssets
{
    private static readonly Dictionary<string, string> Types = new(StringComparer.OrdinalIgnoreCase)
    {
        [".html"] = "text/html; charset=utf-8",
        [".js"] = "text/javascript; charset=utf-8",
        [".css"] = "text/css; charset=utf-8",
        [".svg"] = "image/svg+xml",
    };

    /// <summary>The file's bytes and content type, or null when there is no such asset.</summary>
    public static (byte[] Bytes, string ContentType)? Get(string name)
    {
        if (name.Contains('/', StringComparison.Ordinal) || name.Contains('\\', StringComparison.Ordinal) || name.StartsWith('.')) return null;
        if (!Types.TryGetValue(Path.GetExtension(name), out string? type)) return null;
        using var s = Assembly.GetExecutingAssembly().GetManifestResourceStream("wwwroot/" + name);
        if (s == null) return null;
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        return (ms.ToArray(), type);
    }
}
