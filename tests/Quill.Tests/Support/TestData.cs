// Finds the external reference data (../shared/data) and skips tests when it is absent, unless CI demands it
// (QUILL_REQUIRE_TESTDATA=1), in which case a missing file fails the test.
namespace Quill.Tests.Support;

/// <summary>Locates files under the shared reference-data folder.</summary>
public static class TestData
{
    /// <summary>The data root: $QUILL_TESTDATA, else the first ../shared/data found walking up from the test binary.</summary>
    public static string? Root { get; } = FindRoot();

    public static bool Required => Environment.GetEnvironmentVariable("QUILL_REQUIRE_TESTDATA") == "1";

    /// <summary>Full path of a file under the data root (whether or not it exists).</summary>
    public static string PathOf(string relative) => System.IO.Path.Combine(Root ?? "shared-data-not-found", relative);

    public static bool Exists(string relative) => Root != null && (File.Exists(PathOf(relative)) || Directory.Exists(PathOf(relative)));

    /// <summary>The repository root (the folder holding Quill.slnx).</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    private static string? FindRoot()
    {
        string? env = Environment.GetEnvironmentVariable("QUILL_TESTDATA");
        if (!string.IsNullOrEmpty(env)) return env;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            string candidate = System.IO.Path.Combine(dir.FullName, "shared", "data");
            if (Directory.Exists(candidate)) return candidate;
        }
        return null;
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "Quill.slnx"))) return dir.FullName;
        }
        throw new InvalidOperationException("Quill.slnx not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>A fact that needs files under ../shared/data: skipped when they are absent, failed when CI requires them.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class TestDataFactAttribute : FactAttribute
{
    public TestDataFactAttribute(params string[] files)
    {
        if (TestData.Required) return;
        foreach (string f in files)
        {
            if (!TestData.Exists(f))
            {
                Skip = $"reference data {f} not found (set QUILL_TESTDATA or place shared/data beside the repo)";
                return;
            }
        }
    }
}

/// <summary>A theory that needs files under ../shared/data (see TestDataFactAttribute).</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class TestDataTheoryAttribute : TheoryAttribute
{
    public TestDataTheoryAttribute(params string[] files)
    {
        if (TestData.Required) return;
        foreach (string f in files)
        {
            if (!TestData.Exists(f))
            {
                Skip = $"reference data {f} not found (set QUILL_TESTDATA or place shared/data beside the repo)";
                return;
            }
        }
    }
}
