// The loader fuzz harness: seeded mutants of valid files of every format Quill reads (GGUF, llama2.c model and
// tokenizer, safetensors and config.json in Quill and Hugging Face folders, Quill / HF tokenizer JSON, tiktoken
// ranks, SentencePiece .model), each opened through the same entry point the CLI uses and then exercised (a forward
// pass on a few tokens, an encode / decode round trip). A mutant passes when it loads and runs, or when it is refused
// with a QuillException whose message is one line (what the CLI prints as `error: ...`). It fails when anything else
// is thrown (a crash: the CLI would print a stack trace), when it runs past the time limit (a hang), or when the
// loading thread allocates far more than the file could describe (memory not bounded by the file's size).
// Each case runs on its own thread in its own folder. Not handled: a crash of the whole process (an access
// violation, a stack overflow) ends the run, which then fails visibly.
using System.Diagnostics;
using Quill.Inference;
using Quill.Tokenization;

namespace Quill.Benchmarks.Fuzz;

/// <summary>How a mutant ended.</summary>
public enum FuzzOutcome
{
    /// <summary>Loaded and ran.</summary>
    Loaded,

    /// <summary>Refused with a one-line QuillException.</summary>
    Refused,

    /// <summary>Any other exception, or a multi-line message.</summary>
    Crashed,

    /// <summary>Still running at the time limit.</summary>
    Hung,

    /// <summary>The loading thread allocated more than the file's size allows.</summary>
    MemoryBlowup,
}

/// <summary>One mutant's result.</summary>
public sealed record FuzzCase(string Target, int Index, string Mutation, FuzzOutcome Outcome, string Detail, double Seconds)
{
    public bool Failed => Outcome is FuzzOutcome.Crashed or FuzzOutcome.Hung or FuzzOutcome.MemoryBlowup;
}

/// <summary>A file to mutate inside a folder of valid files, and how to open what it belongs to.</summary>
/// <param name="Name">Target name (format and role).</param>
/// <param name="SeedDir">Folder of valid files; each case gets a copy.</param>
/// <param name="FileName">The file in it to mutate.</param>
/// <param name="Exercise">Opens and uses the case folder's files (argument: the case folder).</param>
public sealed record FuzzTarget(string Name, string SeedDir, string FileName, Action<string> Exercise);

/// <summary>Runs seeded mutants against loaders.</summary>
public static class LoaderFuzzer
{
    /// <summary>Runs <paramref name="mutants"/> mutants of <paramref name="target"/>'s file.</summary>
    public static List<FuzzCase> Run(FuzzTarget target, int mutants, int seed, string workDir, TimeSpan timeout, int first = 0, Action<FuzzCase>? onCase = null)
    {
        ArgumentNullException.ThrowIfNull(target);
        byte[] original = File.ReadAllBytes(Path.Combine(target.SeedDir, target.FileName));
        var results = new List<FuzzCase>(mutants);
        // The seed itself must load: otherwise every mutant would be "refused" for the seed's fault.
        var control = RunOne(target, target.SeedDir, -1, new Mutant(original, "unmutated seed"), timeout, original.Length);
        if (control.Outcome != FuzzOutcome.Loaded) throw new InvalidOperationException($"fuzz seed {target.Name} does not load: {control.Outcome} {control.Detail}");
        for (int i = first; i < first + mutants; i++)
        {
            var mutant = Mutator.Make(original, unchecked(seed * 31 + StableHash(target.Name)), i);
            string caseDir = Path.Combine(workDir, $"{target.Name}-{i}");
            Directory.CreateDirectory(caseDir);
            foreach (string f in Directory.EnumerateFiles(target.SeedDir))
            {
                if (Path.GetFileName(f) != target.FileName) File.Copy(f, Path.Combine(caseDir, Path.GetFileName(f)));
            }
            File.WriteAllBytes(Path.Combine(caseDir, target.FileName), mutant.Bytes);
            var result = RunOne(target, caseDir, i, mutant, timeout, mutant.Bytes.Length);
            results.Add(result);
            onCase?.Invoke(result);
            if (result.Outcome != FuzzOutcome.Hung) TryDelete(caseDir);
        }
        return results;
    }

    private static FuzzCase RunOne(FuzzTarget target, string caseDir, int index, Mutant mutant, TimeSpan timeout, long fileBytes)
    {
        Exception? error = null;
        long allocated = 0;
        var thread = new Thread(() =>
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                target.Exercise(caseDir);
            }
#pragma warning disable CA1031 // the harness records every exception: that is its job
            catch (Exception e)
#pragma warning restore CA1031
            {
                error = e;
            }
            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        }, 64 << 20) { IsBackground = true, Name = "fuzz " + target.Name };
        var sw = Stopwatch.StartNew();
        thread.Start();
        bool done = thread.Join(timeout);
        double seconds = sw.Elapsed.TotalSeconds;
        if (!done) return new(target.Name, index, mutant.Description, FuzzOutcome.Hung, $"still running after {timeout.TotalSeconds:0} s", seconds);
        long limit = (256L << 20) + 32 * fileBytes;
        if (allocated > limit)
            return new(target.Name, index, mutant.Description, FuzzOutcome.MemoryBlowup, $"allocated {allocated >> 20} MiB for a {fileBytes}-byte file", seconds);
        if (error == null) return new(target.Name, index, mutant.Description, FuzzOutcome.Loaded, "", seconds);
        var e = Unwrap(error);
        if (e is QuillException q && q.Message.Length > 0 && !q.Message.Contains('\n', StringComparison.Ordinal))
            return new(target.Name, index, mutant.Description, FuzzOutcome.Refused, q.Message, seconds);
        string frame = e.StackTrace?.Split('\n').FirstOrDefault(l => l.Contains(" in ", StringComparison.Ordinal) || l.Contains("at ", StringComparison.Ordinal))?.Trim() ?? "";
        return new(target.Name, index, mutant.Description, FuzzOutcome.Crashed, $"{e.GetType().Name}: {e.Message.Split('\n')[0]} {frame}", seconds);
    }

    private static int StableHash(string s)
    {
        uint h = 2166136261;
        foreach (char c in s) h = (h ^ c) * 16777619;
        return unchecked((int)h);
    }

    private static Exception Unwrap(Exception e)
    {
        while (true)
        {
            if (e is AggregateException a && a.InnerExceptions.Count == 1) e = a.InnerExceptions[0];
            else if (e is System.Reflection.TargetInvocationException { InnerException: { } inner }) e = inner;
            else return e;
        }
    }

    private static void TryDelete(string dir)
    {
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>Opens a model folder or file as the CLI does and runs a few tokens through it.</summary>
    public static void ExerciseModel(string path, string? tokenizerPath = null)
    {
        using var model = ModelLoader.Load(path, tokenizerPath);
        int v = model.Spec.VocabSize;
        int[] ids = model.Tokenizer is { } tok ? tok.Encode("Once upon a time there was a fox.") /* text every seed vocabulary covers, the char one too */ : [0, 1 % v, 2 % v];
        if (ids.Length == 0) ids = [0];
        if (ids.Length > 8) ids = ids[..8];
        var engine = new InferenceEngine(model, 32);
        var logits = new float[v];
        engine.Forward(engine.CreateCache(), ids, logits);
        model.Tokenizer?.Decode(ids);
    }

    /// <summary>Opens a tokenizer file as the CLI does and round-trips a text.</summary>
    public static void ExerciseTokenizer(string path)
    {
        var tok = TokenizerLoader.Load(path);
        int[] ids = tok.Encode("Hello, world! The café costs 3.50 €. 日本語");
        foreach (int id in ids)
        {
            if (id < 0 || id >= tok.VocabSize) throw new InvalidOperationException($"encode produced id {id} outside the vocabulary of {tok.VocabSize}");
        }
        tok.Decode(ids);
        tok.Decode([0, tok.VocabSize - 1]);
    }
}
