// A model the server offers: its public name (the file name without extension), the backend that runs it, its
// tokenizer and chat layout, and the scheduler that batches its requests. Load opens what `--model PATH` names
// through the inference engine's ModelLoader (Quill checkpoint, GGUF, llama2.c, HF safetensors), with its
// tokenizer from the model or from --tokenizer.
// A model loaded from a path is watched: when the file (or the weights in the folder) is replaced, by a rename as
// `quill train`'s checkpoint swap and `mv new.gguf served.gguf` do, the new model is loaded beside the old one
// and takes the next requests; requests already running finish on the old one, which is then released. A
// replacement that does not load (a half-copied file) is reported on stderr and the old model keeps serving.
// Does not handle: an in-place overwrite of a mapped file (`cp new.gguf served.gguf` truncates it under the mapping:
// the process can die of SIGBUS, as llama.cpp does; serve with --no-mmap or replace by rename); a request that reads
// the tokenizer before a swap and submits after it gets the new model (models swapped in place share a tokenizer).
using Quill.Inference;
using Quill.Inference.Batching;
using Quill.Tokenization;

namespace Quill.Server;

/// <summary>A loaded model with its tokenizer and scheduler.</summary>
public sealed class ServedModel : IDisposable
{
    /// <summary>
    /// The folder `quill train` saves its checkpoint in (Training.Checkpoint.FolderName). Spelled out here so the
    /// server does not depend on the training layer; a test checks that the two agree.
    /// </summary>
    internal const string CheckpointFolderName = "checkpoint";

    /// <summary>One loaded version of the model; a reload makes a new one.</summary>
    private sealed record Generation(IBatchModel Backend, ITokenizer Tokenizer, ChatLayout Chat, BatchScheduler Scheduler, IReadOnlyList<int> ExtraStopIds, long Created);

    /// <summary>Where a watched model comes from and how it was loaded.</summary>
    private sealed record Source(string Path, string? TokenizerPath, SchedulerOptions Options, int ContextLength, bool Mmap, string? Adapter = null);

    private volatile Generation current;
    private readonly List<Generation> retired = [];
    private readonly Source? source;
    private readonly Timer? watcher;
    private string? identity;
    private int checking;
    private ServerMetrics? metrics;

    /// <param name="name">The id clients pass as "model".</param>
    /// <param name="backend">Runs the model.</param>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="chat">How conversations become prompts.</param>
    /// <param name="options">Batch and queue limits.</param>
    /// <param name="extraStopIds">End-of-turn ids besides EOS that end every completion (from the model file).</param>
    public ServedModel(string name, IBatchModel backend, ITokenizer tokenizer, ChatLayout chat, SchedulerOptions options, IReadOnlyList<int>? extraStopIds = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(chat);
        Name = name;
        current = new Generation(backend, tokenizer, chat, new BatchScheduler(backend, tokenizer, options), extraStopIds ?? [], DateTimeOffset.UtcNow.ToUnixTimeSeconds());
    }

    private ServedModel(string name, IBatchModel backend, ITokenizer tokenizer, ChatLayout chat, SchedulerOptions options, IReadOnlyList<int>? extraStopIds, Source source, TimeSpan checkEvery)
        : this(name, backend, tokenizer, chat, options, extraStopIds)
    {
        this.source = source;
        identity = IdentityOf(source.Path);
        watcher = new Timer(_ => CheckReplaced(), null, checkEvery, checkEvery);
    }

    /// <summary>Reports this model's tokens, steps and queue to metrics (a server calls this when it starts).</summary>
    public void AttachMetrics(ServerMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        this.metrics = metrics;
        Scheduler.Metrics = metrics;
        metrics.AddGauge(Name, () => (Scheduler.QueueDepth, Scheduler.ActiveCount));
    }

    /// <summary>The id clients pass as "model".</summary>
    public string Name { get; }

    public IBatchModel Backend => current.Backend;

    public ITokenizer Tokenizer => current.Tokenizer;

    public ChatLayout Chat => current.Chat;

    public BatchScheduler Scheduler => current.Scheduler;

    /// <summary>Unix time the model was loaded, or last reloaded (the "created" of /v1/models).</summary>
    public long Created => current.Created;

    /// <summary>How many times the model file was replaced and the new one loaded.</summary>
    public int Reloads { get; private set; }

    public int ContextLength => Backend.ContextLength;

    /// <summary>Token ids that end any completion: the tokenizer's EOS (if any) and the chat layout's end of turn.</summary>
    public IReadOnlySet<int> StopTokens(bool chat)
    {
        var set = new HashSet<int>();
        if (Tokenizer.EosId >= 0) set.Add(Tokenizer.EosId);
        set.UnionWith(current.ExtraStopIds);
        if (chat) set.UnionWith(Chat.StopTokens);
        return set;
    }

    /// <summary>
    /// The request for a chat reply: the conversation encoded with the chat layout, the layout's stop tokens and
    /// strings added to the template's. Throws ContextLengthException when the prompt leaves no room to reply.
    /// </summary>
    public GenerationRequest ForChat(IReadOnlyList<ChatTurn> messages, GenerationRequest template)
    {
        ArgumentNullException.ThrowIfNull(template);
        int[] prompt = Chat.Encode(messages);
        CheckFits(prompt.Length, "messages");
        var stops = new HashSet<int>(template.StopTokens);
        stops.UnionWith(StopTokens(chat: true));
        return template with
        {
            Prompt = prompt,
            StopTokens = stops,
            StopStrings = [.. template.StopStrings, .. Chat.StopStrings],
            TrimStart = Chat.IsPlain,
        };
    }

    /// <summary>The request for a text completion of prompt (text, encoded with BOS when the tokenizer has one).</summary>
    public GenerationRequest ForCompletion(string prompt, GenerationRequest template)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(template);
        var ids = new List<int>();
        if (Tokenizer.BosId >= 0 && Tokenizer.BosId != Tokenizer.EosId) ids.Add(Tokenizer.BosId);
        ids.AddRange(Tokenizer.Encode(prompt));
        return ForCompletion([.. ids], template);
    }

    /// <summary>The request for a completion of prompt token ids (checked against the vocabulary and context).</summary>
    public GenerationRequest ForCompletion(int[] prompt, GenerationRequest template)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(template);
        if (prompt.Length == 0) throw new QuillException("prompt is empty; send some text.");
        foreach (int id in prompt)
        {
            if ((uint)id >= (uint)Math.Min(Tokenizer.VocabSize, Backend.VocabSize))
                throw new QuillException($"prompt token id {id} is outside the vocabulary of {Math.Min(Tokenizer.VocabSize, Backend.VocabSize)}.");
        }
        CheckFits(prompt.Length, "prompt");
        var stops = new HashSet<int>(template.StopTokens);
        stops.UnionWith(StopTokens(chat: false));
        return template with { Prompt = prompt, StopTokens = stops };
    }

    private void CheckFits(int promptTokens, string field)
    {
        if (promptTokens >= ContextLength)
            throw new ContextLengthException($"This model's maximum context length is {ContextLength} tokens, but the {field} use {promptTokens} tokens (at least one more is needed for the reply). Shorten the {field}.", field);
    }

    /// <summary>
    /// Opens a model (Quill checkpoint folder, GGUF, llama2.c .bin, HF folder) with the inference engine; the name
    /// is its file name without extension. contextLength 0: the model's context, capped at 4096.
    /// </summary>
    public static ServedModel Load(string path, string? tokenizerPath, SchedulerOptions options, int contextLength = 0) =>
        Load(path, tokenizerPath, options, contextLength, mmap: true, TimeSpan.FromSeconds(1));

    /// <summary>
    /// Opens a model as <see cref="Load(string, string?, SchedulerOptions, int)"/> does; mmap false reads the weights
    /// into memory (`--no-mmap`). The path is checked for a replacement every <paramref name="checkEvery"/>.
    /// </summary>
    public static ServedModel Load(string path, string? tokenizerPath, SchedulerOptions options, int contextLength, bool mmap, TimeSpan checkEvery) =>
        Load(path, tokenizerPath, options, contextLength, mmap, checkEvery, adapter: null);

    /// <summary>
    /// Opens a model as above with a PEFT LoRA adapter run beside it, unmerged (InferenceModel.WithAdapter: a quantized
    /// base stays quantized); null serves the model alone.
    /// </summary>
    public static ServedModel Load(string path, string? tokenizerPath, SchedulerOptions options, int contextLength, bool mmap, TimeSpan checkEvery, string? adapter)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(options);
        var src = new Source(path, tokenizerPath, options, contextLength, mmap, adapter);
        var (backend, tokenizer, chat, stops) = Open(src);
        return new ServedModel(NameOf(path), backend, tokenizer, chat, options, stops, src, checkEvery);
    }

    private static (IBatchModel, ITokenizer, ChatLayout, IReadOnlyList<int>) Open(Source src)
    {
        var model = ModelLoader.Load(src.Path, src.TokenizerPath, null, src.Mmap);
        try
        {
            if (src.Adapter != null) model = model.WithAdapter(src.Adapter); // owns the base from here
            var tokenizer = model.Tokenizer ?? throw new InvalidFileException($"{model.Source}: no tokenizer found with the model; pass --tokenizer PATH.");
            var chat = new ChatLayout(tokenizer, model.ChatTemplate, model.Spec.Arch, model.AddBos);
            return (new EngineBackend(model, src.ContextLength), tokenizer, chat, model.ExtraStopIds);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Files whose change means a new model: weights, configs, tokenizers (not a run's metrics.jsonl or loss.svg).</summary>
    private static readonly string[] ModelFileExtensions = [".safetensors", ".json", ".gguf", ".bin", ".model", ".tiktoken", ".bpe"];

    /// <summary>
    /// What changes when the model at path is replaced: size and write time of the file, or of the model files in
    /// the folder (a run's checkpoint folder when it has one: a Quill run swaps that folder by rename).
    /// </summary>
    private static string? IdentityOf(string path)
    {
        try
        {
            if (File.Exists(path))
            {
                var f = new FileInfo(path);
                return $"{f.Length}:{f.LastWriteTimeUtc.Ticks}";
            }
            if (!Directory.Exists(path)) return null;
            string inner = Path.Combine(path, CheckpointFolderName);
            string folder = Directory.Exists(inner) ? inner : path;
            var parts = new List<string> { folder };
            foreach (var f in new DirectoryInfo(folder).EnumerateFiles().OrderBy(f => f.Name, StringComparer.Ordinal))
            {
                if (ModelFileExtensions.Contains(f.Extension, StringComparer.OrdinalIgnoreCase)) parts.Add($"{f.Name}:{f.Length}:{f.LastWriteTimeUtc.Ticks}");
            }
            return string.Join("|", parts);
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Releases retired models that finished their requests; loads the model again when its file was replaced.</summary>
    private void CheckReplaced()
    {
        if (source == null || Interlocked.Exchange(ref checking, 1) == 1) return;
        try
        {
            ReleaseIdle();
            string? now = IdentityOf(source.Path);
            if (now == null || now == identity) return;
            identity = now; // a replacement that fails to load is reported once, not every second
            try
            {
                var (backend, tokenizer, chat, stops) = Open(source);
                var next = new Generation(backend, tokenizer, chat, new BatchScheduler(backend, tokenizer, source.Options), stops, DateTimeOffset.UtcNow.ToUnixTimeSeconds());
                if (metrics != null) next.Scheduler.Metrics = metrics;
                Generation old;
                lock (retired)
                {
                    old = current;
                    current = next;
                    retired.Add(old);
                }
                Reloads++;
                Console.Error.WriteLine($"quill serve: {source.Path} was replaced; now serving the new model as {Name}");
            }
            catch (QuillException e)
            {
                Console.Error.WriteLine($"quill serve: {source.Path} changed but does not load ({e.Message}); still serving the previous model");
            }
        }
        finally
        {
            Volatile.Write(ref checking, 0);
        }
    }

    private void ReleaseIdle()
    {
        List<Generation> idle;
        lock (retired)
        {
            idle = retired.Where(g => g.Scheduler.ActiveCount == 0 && g.Scheduler.QueueDepth == 0).ToList();
            retired.RemoveAll(idle.Contains);
        }
        foreach (var g in idle) Release(g);
    }

    private static void Release(Generation g)
    {
        g.Scheduler.Dispose();
        g.Backend.Dispose();
    }

    /// <summary>Serves a model already in memory (e.g. just trained, via InferenceModel.FromLanguageModel).</summary>
    public static ServedModel FromInferenceModel(string name, InferenceModel model, SchedulerOptions options, int contextLength = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        var tokenizer = model.Tokenizer ?? throw new InvalidFileException($"{model.Source}: no tokenizer found with the model; pass --tokenizer PATH.");
        var chat = new ChatLayout(tokenizer, model.ChatTemplate, model.Spec.Arch, model.AddBos);
        return new ServedModel(name, new EngineBackend(model, contextLength), tokenizer, chat, options, model.ExtraStopIds);
    }

    /// <summary>"runs/story/checkpoint" -> "story"; "models/stories15M.bin" -> "stories15M".</summary>
    public static string NameOf(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string p = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        string name = Path.GetFileNameWithoutExtension(p);
        if (name == CheckpointFolderName) name = Path.GetFileName(Path.GetDirectoryName(p)) ?? name;
        return name;
    }

    public void Dispose()
    {
        if (watcher != null)
        {
            using var stopped = new ManualResetEvent(false);
            if (watcher.Dispose(stopped)) stopped.WaitOne();
        }
        lock (retired)
        {
            foreach (var g in retired) Release(g);
            retired.Clear();
        }
        Release(current);
    }
}
