// The library's layers point one way. Every .cs file under src/Quill belongs to the layer of its top folder
// (files directly in src/Quill are "root": QuillException, AtomicFile) and may refer only to the layers MayUse
// lists for it. A reference is a `using Quill.X...` line, a fully qualified `Quill.X.` name (global:: or not), or a
// name qualified from inside the Quill namespace (`Kernels.RopeStyle`, `Formats.Gguf.GgufFile`) whose next part is a
// type or sub-namespace that layer declares. Comments and string literals are skipped. A file's namespace must
// follow its folder, since the scan trusts namespaces to say where a type lives. The library also ships no
// benchmark code: no Quill.Benchmarks reference, no OpenBLAS P/Invoke, no python3, and no ASP.NET reference.
// Does not handle: references that need no qualification (the root namespace's own types are visible to all),
// code inside interpolation holes of strings, reflection by name.
using System.Text;
using System.Text.RegularExpressions;
using Quill.Tests.Support;

namespace Quill.Tests;

public sealed partial class LayeringTests
{
    private static readonly string[] Base = ["root", "Kernels", "Tensors", "Quantization"];

    private static readonly string[] BelowTrainingAndInference = [.. Base, "Autograd", "Models", "Formats", "Tokenization", "Data"];

    /// <summary>The rule: layer -> the layers its files may refer to (besides itself). Base = root, Kernels, Tensors, Quantization.</summary>
    private static readonly Dictionary<string, string[]> MayUse = new(StringComparer.Ordinal)
    {
        // the base, itself layered
        ["root"] = [],
        ["Kernels"] = ["root"],
        ["Quantization"] = ["root", "Kernels"],
        ["Tensors"] = ["root", "Kernels", "Quantization"],

        // file formats and text, beside each other on the base
        ["Formats"] = Base,
        ["Tokenization"] = Base,
        ["Data"] = [.. Base, "Tokenization"], // documented exception: preparing shards tokenizes
        ["Hub"] = ["root"], // downloads files; knows no format

        // the model stack
        ["Autograd"] = Base,
        ["Models"] = [.. Base, "Autograd", "Formats", "Tokenization"],
        ["Training"] = BelowTrainingAndInference, // not Inference
        ["Inference"] = BelowTrainingAndInference, // not Training
        ["Evaluation"] = [.. BelowTrainingAndInference, "Training", "Inference"], // anything in the library

        // Server, Cli and Benchmarks are projects above the library: no layer may refer to them
    };

    /// <summary>Names after `Quill.` that are projects above the library, not layers of it.</summary>
    private static readonly string[] Above = ["Server", "Cli", "Benchmarks"];

    /// <summary>One reference from a file to a layer.</summary>
    internal sealed record Edge(string File, int Line, string From, string To, string What)
    {
        public string Key => $"{File} -> {To}";

        public override string ToString() => $"{From} -> {To}: {File}:{Line} ({What})";
    }

    [Fact]
    public void Library_layers_point_one_way()
    {
        var files = LibraryFiles();
        Assert.NotEmpty(files);
        var names = DeclaredNames(files);
        var problems = new List<string>();
        foreach (var (path, text) in files)
        {
            problems.AddRange(CheckNamespace(path, text));
            problems.AddRange(Violations(Scan(path, text, names), new HashSet<string>()));
        }
        Assert.True(problems.Count == 0, "layering broken:\n" + string.Join("\n", problems));
    }

    [Fact]
    public void Scanner_reports_a_bad_reference_and_ignores_comments_and_strings()
    {
        const string fake = """
            // using Quill.Training; in a comment is not a reference
            using System.Text;
            using Quill.Training;

            namespace Quill.Tokenization;

            /* Quill.Models.LanguageModel in a block comment */
            internal sealed class Fake
            {
                private readonly string s = "Quill.Models.LanguageModel";
                private readonly char c = '"';
                private readonly Kernels.RopeStyle style;
                private int Count => Tensors.Count;
                public void Run() => global::Quill.Inference.Generator.Run();
            }
            """;
        var names = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal)
        {
            ["Kernels"] = ["RopeStyle"],
            ["Tensors"] = ["Tensor"],
        };
        var edges = Scan("Tokenization/Fake.cs", fake, names).ToList();
        Assert.Equal(["Training@3", "Kernels@12", "Inference@14"], edges.Select(e => $"{e.To}@{e.Line}"));
        Assert.All(edges, e => Assert.Equal("Tokenization", e.From));

        var violations = Violations(edges, new HashSet<string>());
        Assert.Equal(2, violations.Count);
        Assert.Contains("Tokenization -> Training: Tokenization/Fake.cs:3 (using Quill.Training;)", violations);
        Assert.Contains(violations, v => v.StartsWith("Tokenization -> Inference: Tokenization/Fake.cs:14", StringComparison.Ordinal));
        Assert.Single(Violations(edges, new HashSet<string> { "Tokenization/Fake.cs -> Training" }));

        Assert.Single(CheckNamespace("Formats/Fake.cs", "namespace Quill.Tokenization;"));
        Assert.Empty(CheckNamespace("Inference/Batching/Fake.cs", "namespace Quill.Inference.Batching;"));
        Assert.Equal("root", LayerOf("AtomicFile.cs"));
        Assert.Equal("Inference", LayerOf("Inference/Batching/BatchScheduler.cs"));
    }

    [Fact]
    public void Library_ships_no_benchmark_code_and_no_web_stack()
    {
        var problems = new List<string>();
        foreach (var (path, text) in LibraryFiles())
        {
            string code = StripCommentsAndStrings(text);
            if (QuillBenchmarks().IsMatch(code)) problems.Add($"{path} refers to Quill.Benchmarks");
            if (NativeImport().IsMatch(code) && text.Contains("openblas", StringComparison.OrdinalIgnoreCase))
                problems.Add($"{path} binds OpenBLAS (P/Invoke belongs in src/Quill.Benchmarks)");
            if (text.Contains("python3", StringComparison.Ordinal)) problems.Add($"{path} mentions python3 (peers belong in src/Quill.Benchmarks)");
        }
        string project = File.ReadAllText(Path.Combine(LibraryRoot, "Quill.csproj"));
        if (project.Contains("AspNetCore", StringComparison.OrdinalIgnoreCase) || project.Contains("Sdk.Web", StringComparison.OrdinalIgnoreCase))
            problems.Add("src/Quill/Quill.csproj refers to ASP.NET");
        if (project.Contains("Quill.Benchmarks.csproj", StringComparison.Ordinal) || project.Contains("Quill.Server.csproj", StringComparison.Ordinal))
            problems.Add("src/Quill/Quill.csproj references a project above the library");
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    private static string LibraryRoot => Path.Combine(TestData.RepoRoot, "src", "Quill");

    /// <summary>(path relative to src/Quill with '/', text) of every source file, bin and obj excluded.</summary>
    private static List<(string Path, string Text)> LibraryFiles()
    {
        var list = new List<(string, string)>();
        foreach (string full in Directory.EnumerateFiles(LibraryRoot, "*.cs", SearchOption.AllDirectories))
        {
            string rel = Path.GetRelativePath(LibraryRoot, full).Replace('\\', '/');
            if (rel.StartsWith("bin/", StringComparison.Ordinal) || rel.StartsWith("obj/", StringComparison.Ordinal)) continue;
            list.Add((rel, File.ReadAllText(full)));
        }
        list.Sort((a, b) => string.CompareOrdinal(a.Item1, b.Item1));
        return list;
    }

    /// <summary>The layer of a path relative to src/Quill: its top folder, or "root" for a file directly inside.</summary>
    internal static string LayerOf(string path)
    {
        int slash = path.IndexOf('/', StringComparison.Ordinal);
        return slash < 0 ? "root" : path[..slash];
    }

    /// <summary>Per layer, the type names and first sub-namespace names its files declare (for partly qualified names).</summary>
    private static Dictionary<string, HashSet<string>> DeclaredNames(IEnumerable<(string Path, string Text)> files)
    {
        var names = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var (path, text) in files)
        {
            string layer = LayerOf(path);
            if (!names.TryGetValue(layer, out var set)) names[layer] = set = new HashSet<string>(StringComparer.Ordinal);
            string code = StripCommentsAndStrings(text);
            foreach (Match m in TypeDeclaration().Matches(code)) set.Add(m.Groups[1].Value);
            foreach (Match m in NamespaceDeclaration().Matches(code))
            {
                string[] parts = m.Groups[1].Value.Split('.');
                if (parts.Length > 2) set.Add(parts[2]);
            }
        }
        return names;
    }

    /// <summary>Every reference from the file to another layer (or to a project above the library).</summary>
    internal static IEnumerable<Edge> Scan(string path, string text, IReadOnlyDictionary<string, HashSet<string>> declaredNames)
    {
        string from = LayerOf(path);
        string[] lines = StripCommentsAndStrings(text).Split('\n');
        string[] raw = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i];
            if (line.TrimStart().StartsWith("namespace ", StringComparison.Ordinal)) continue;
            var targets = new List<string>();
            foreach (Match m in QualifiedName().Matches(line))
            {
                string name = m.Groups[1].Value;
                targets.Add(MayUse.ContainsKey(name) || Above.Contains(name) ? name : "root");
            }
            foreach (Match m in PartlyQualifiedName().Matches(line))
            {
                string layer = m.Groups[1].Value;
                if (MayUse.ContainsKey(layer) && declaredNames.TryGetValue(layer, out var known) && known.Contains(m.Groups[2].Value)) targets.Add(layer);
            }
            foreach (string to in targets.Distinct())
            {
                if (to != from) yield return new Edge(path, i + 1, from, to, raw[i].Trim());
            }
        }
    }

    /// <summary>The edges the rule forbids, as messages, less the tolerated ones.</summary>
    internal static List<string> Violations(IEnumerable<Edge> edges, IReadOnlySet<string> tolerated)
    {
        var list = new List<string>();
        foreach (var e in edges)
        {
            if (tolerated.Contains(e.Key)) continue;
            if (!MayUse.TryGetValue(e.From, out string[]? allowed))
            {
                list.Add($"{e.File}: folder '{e.From}' is not a layer of the rule table in LayeringTests; add it there with what it may use.");
                continue;
            }
            if (!allowed.Contains(e.To)) list.Add(e.ToString());
        }
        return list;
    }

    /// <summary>A file's namespaces must follow its folder: Quill for root files, Quill.Layer[.Sub] otherwise.</summary>
    internal static IEnumerable<string> CheckNamespace(string path, string text)
    {
        string layer = LayerOf(path);
        string expected = layer == "root" ? "Quill" : "Quill." + layer;
        foreach (Match m in NamespaceDeclaration().Matches(StripCommentsAndStrings(text)))
        {
            string ns = m.Groups[1].Value;
            bool ok = layer == "root" ? ns == "Quill" : ns == expected || ns.StartsWith(expected + ".", StringComparison.Ordinal);
            if (!ok) yield return $"{path}: namespace {ns} does not follow its folder; use {expected} (or a namespace under it).";
        }
    }

    /// <summary>The text with comments, string literals and char literals blanked (newlines kept, so lines still count).</summary>
    internal static string StripCommentsAndStrings(string text)
    {
        var sb = new StringBuilder(text);
        int i = 0, n = text.Length;
        while (i < n)
        {
            char c = text[i];
            int end;
            if (c == '/' && i + 1 < n && text[i + 1] == '/')
            {
                end = text.IndexOf('\n', i);
                end = end < 0 ? n : end;
            }
            else if (c == '/' && i + 1 < n && text[i + 1] == '*')
            {
                end = text.IndexOf("*/", i + 2, StringComparison.Ordinal);
                end = end < 0 ? n : end + 2;
            }
            else if (c == '\'')
            {
                end = i + 1 < n && text[i + 1] == '\\' ? text.IndexOf('\'', Math.Min(i + 3, n - 1)) + 1 : i + 3;
                end = end <= i ? n : Math.Min(end, n);
            }
            else if (c is '"' or '$' or '@' && StringStart(text, i) is int quote)
            {
                end = StringEnd(text, i, quote);
            }
            else
            {
                i++;
                continue;
            }
            for (int k = i; k < end; k++)
            {
                if (sb[k] != '\n') sb[k] = ' ';
            }
            i = end;
        }
        return sb.ToString();
    }

    /// <summary>At a string literal's start (its $ and @ prefixes included): the index of its first quote; else null.</summary>
    private static int? StringStart(string text, int i)
    {
        if (i > 0 && (char.IsLetterOrDigit(text[i - 1]) || text[i - 1] == '_') && text[i] != '"') return null;
        int j = i;
        while (j < text.Length && text[j] is '$' or '@') j++;
        return j < text.Length && text[j] == '"' ? j : null;
    }

    /// <summary>The index just after a string literal whose first quote is at quote (regular, verbatim or raw).</summary>
    private static int StringEnd(string text, int start, int quote)
    {
        bool verbatim = text.AsSpan(start, quote - start).Contains('@');
        int q = 0;
        while (quote + q < text.Length && text[quote + q] == '"') q++;
        if (q >= 3)
        {
            int close = text.IndexOf(new string('"', q), quote + q, StringComparison.Ordinal);
            return close < 0 ? text.Length : close + q;
        }
        if (q == 2) return quote + 2; // ""
        for (int k = quote + 1; k < text.Length; k++)
        {
            char c = text[k];
            if (!verbatim && c == '\\') k++;
            else if (verbatim && c == '"' && k + 1 < text.Length && text[k + 1] == '"') k++;
            else if (c == '"' || (!verbatim && c == '\n')) return k + 1;
        }
        return text.Length;
    }

    [GeneratedRegex(@"\bQuill\.([A-Za-z_]\w*)")]
    private static partial Regex QualifiedName();

    [GeneratedRegex(@"(?<![\w.])([A-Z]\w*)\.([A-Za-z_]\w*)")]
    private static partial Regex PartlyQualifiedName();

    [GeneratedRegex(@"^\s*namespace\s+([\w.]+)", RegexOptions.Multiline)]
    private static partial Regex NamespaceDeclaration();

    [GeneratedRegex(@"\b(?:class|struct|interface|enum|record)\s+(?:(?:class|struct)\s+)?([A-Za-z_]\w*)")]
    private static partial Regex TypeDeclaration();

    [GeneratedRegex(@"\bQuill\.Benchmarks\b")]
    private static partial Regex QuillBenchmarks();

    [GeneratedRegex(@"\[\s*(?:DllImport|LibraryImport)\b")]
    private static partial Regex NativeImport();
}
