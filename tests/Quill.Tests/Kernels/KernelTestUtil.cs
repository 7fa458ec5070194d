// Shared helpers for the kernel tests: random inputs, closeness asserts, a thread-count scope, a central-difference
// gradient check and the PyTorch fixture loader (fixtures/kernels.json, written by fixtures/make_kernel_fixtures.py).
using System.Text.Json;
using Quill.Kernels;

namespace Quill.Tests.Kernels;

/// <summary>Tests that change KernelThreads.Count run in this collection, one at a time.</summary>
[CollectionDefinition(Name)]
public sealed class KernelThreadsCollection
{
    public const string Name = "KernelThreads";
}

internal static class KernelTestUtil
{
    public static float[] Random(Random rnd, int n, float scale = 1f, float offset = 0f)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(rnd.NextDouble() * 2 - 1) * scale + offset;
        return a;
    }

    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double rel, double abs, string what)
    {
        Assert.True(expected.Length <= actual.Length, $"{what}: expected {expected.Length} values, got {actual.Length}");
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i];
            double tol = abs + rel * Math.Abs(e);
            if (!(Math.Abs(e - a) <= tol) && !(double.IsNaN(e) && double.IsNaN(a)))
                Assert.Fail($"{what}[{i}]: expected {e:R}, got {a:R} (|diff| {Math.Abs(e - a):E2} > {tol:E2})");
        }
    }

    public static void AssertClose(double expected, double actual, double rel, double abs, string what)
    {
        double tol = abs + rel * Math.Abs(expected);
        Assert.True(Math.Abs(expected - actual) <= tol, $"{what}: expected {expected:R}, got {actual:R}");
    }

    /// <summary>Sets KernelThreads.Count for the lifetime of the scope.</summary>
    public static IDisposable Threads(int count) => new ThreadScope(count);

    private sealed class ThreadScope : IDisposable
    {
        private readonly int previous;

        public ThreadScope(int count)
        {
            previous = KernelThreads.Count;
            KernelThreads.Count = count;
        }

        public void Dispose() => KernelThreads.Count = previous;
    }

    /// <summary>L = sum(y * w) in double.</summary>
    public static double Loss(ReadOnlySpan<float> y, ReadOnlySpan<float> w)
    {
        double s = 0;
        for (int i = 0; i < w.Length; i++) s += (double)y[i] * w[i];
        return s;
    }

    /// <summary>
    /// Checks grad (dL/dinput for L = sum(forward() * w)) against central differences, perturbing input in place.
    /// </summary>
    public static void CheckGradient(float[] input, Func<float[]> forward, float[] w, ReadOnlySpan<float> grad, string what,
        float h = 1e-2f, double rel = 2e-2, double abs = 2e-3)
    {
        for (int i = 0; i < input.Length; i++)
        {
            float v = input[i];
            input[i] = v + h;
            double lp = Loss(forward(), w);
            input[i] = v - h;
            double lm = Loss(forward(), w);
            input[i] = v;
            double numeric = (lp - lm) / (2.0 * h);
            double tol = abs + rel * Math.Abs(numeric);
            if (!(Math.Abs(numeric - grad[i]) <= tol))
                Assert.Fail($"{what}[{i}]: analytic {grad[i]:R}, numeric {numeric:R}");
        }
    }
}

/// <summary>Reads fixtures/kernels.json (PyTorch outputs) once.</summary>
internal static class KernelFixtures
{
    private static readonly Lazy<JsonDocument> Document = new(() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "kernels.json"))));

    public static JsonElement Get(string name) => Document.Value.RootElement.GetProperty(name);

    public static float[] Floats(this JsonElement e, string name) =>
        e.GetProperty(name).EnumerateArray().Select(v => (float)v.GetDouble()).ToArray();

    public static int[] Ints(this JsonElement e, string name) => e.GetProperty(name).EnumerateArray().Select(v => v.GetInt32()).ToArray();

    public static int Int(this JsonElement e, string name) => e.GetProperty(name).GetInt32();

    public static double Double(this JsonElement e, string name) => e.GetProperty(name).GetDouble();
}
