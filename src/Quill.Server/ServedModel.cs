// A model the server offers: its public name (the file name without extension), the backend that runs it, its
// tokenizer and chat layout, and the scheduler that batches its requests. Load opens what `--model PATH` names
// through the inference engine's ModelLoader (Quill checkpoint, GGUF, llama2.c, HF safetensors), with its
// tokenizer from the model or from --tokenizer.
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

    private readonly IReadOnlyList<int> extraStopIds;

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
        Backend = backend;
        Tokenizer = tokenizer;
        Chat = chat;
        this.extraStopIds = extraStopIds ?? [];
        Scheduler = new BatchScheduler(backend, tokenizer, options);
        Created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
    }

    /// <summary>Reports this model's tokens, steps and queue to metrics (a server calls this when it starts).</summary>
    public void AttachMetrics(ServerMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        Scheduler.Metrics = metrics;
        metrics.AddGauge(Name, () => (Scheduler.QueueDepth, Scheduler.ActiveCount));
    }

    /// <summary>The id clients pass as "model".</summary>
    public string Name { get; }

    public IBatchModel Backend { get; }

    public ITokenizer Tokenizer { get; }

    public ChatLayout Chat { get; }

    public BatchScheduler Scheduler { get; }

    /// <summary>Unix time the model was loaded (the "created" of /v1/models).</summary>
    public long Created { get; }

    public int ContextLength => Backend.ContextLength;

    /// <summary>Token ids that end any completion: the tokenizer's EOS (if any) and the chat layout's end of turn.</summary>
    public IReadOnlySet<int> StopTokens(bool chat)
    {
        var set = new HashSet<int>();
        if (Tokenizer.EosId >= 0) set.Add(Tokenizer.EosId);
        set.UnionWith(extraStopIds);
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
    public static ServedModel Load(string path, string? tokenizerPath, SchedulerOptions options, int contextLength = 0)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(options);
        var model = ModelLoader.Load(path, tokenizerPath);
        try
        {
            return FromInferenceModel(NameOf(path), model, options, contextLength);
        }
        catch
        {
            model.Dispose();
            throw;
        }
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
        Scheduler.Dispose();
        Backend.Dispose();
    }
}
