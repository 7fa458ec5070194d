// A multi-turn conversation with a model: the messages so far, rendered into one prompt by the model's chat
// template (Tokenization.ChatTemplates, recognised from the template text or architecture the model file
// carries), and a KV cache reused across turns: only the tokens after the longest prefix shared with the previous
// turn's tokens run again. A model without a template (llama2.c, Quill checkpoints: base models) gets the plain
// "System: / User: / Assistant:" transcript of Tokenization.ChatTemplates.PlainTranscript (the layout the server
// uses too): its stop strings end the reply at the next turn and the whitespace the reply starts with is dropped.
// Does not handle: tool calls, trimming a conversation that outgrows the context (the caller resets).
using System.Runtime.CompilerServices;
using System.Text;
using Quill.Tokenization;
using Quill.Tokenization.ChatTemplates;

namespace Quill.Inference;

/// <summary>A conversation that keeps its history and KV cache between turns.</summary>
public sealed class ChatSession
{
    private readonly Generator generator;
    private readonly List<ChatMessage> messages = [];
    private readonly KvCache cache;
    private int[] cachedIds = [];

    /// <summary>template null: the one the model's metadata implies, else plain running text.</summary>
    public ChatSession(Generator generator, ChatTemplate? template = null)
    {
        ArgumentNullException.ThrowIfNull(generator);
        this.generator = generator;
        var m = generator.Engine.Model;
        Template = template ?? ChatTemplate.FromMetadata(m.ChatTemplate, m.Spec.Arch);
        cache = generator.Engine.CreateCache();
    }

    /// <summary>The chat template in use, or null for plain running text.</summary>
    public ChatTemplate? Template { get; }

    /// <summary>The template's name, or "plain".</summary>
    public string FormatName => Template?.Name ?? PlainTranscript.Name;

    /// <summary>The conversation so far: user and assistant messages, without the system prompt.</summary>
    public IReadOnlyList<ChatMessage> Messages => messages;

    /// <summary>The system prompt (null for none); takes effect from the next turn.</summary>
    public string? SystemPrompt { get; set; }

    /// <summary>Forgets the conversation (the system prompt stays).</summary>
    public void Reset()
    {
        messages.Clear();
        cache.Reset();
        cachedIds = [];
    }

    /// <summary>
    /// Adds a user or assistant message to the history as if it had been said (to resume a saved conversation);
    /// the KV cache catches up on the next turn.
    /// </summary>
    public void Append(ChatMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (message.Role is not ("user" or "assistant"))
            throw new InvalidConfigException($"chat message {messages.Count}: role \"{message.Role}\" cannot join the history; use user or assistant (the system prompt is SystemPrompt).");
        messages.Add(message);
    }

    /// <summary>The stop strings that end a reply besides the caller's: the template's, or the plain transcript's.</summary>
    public IReadOnlyList<string> StopStrings => Template?.Stop ?? PlainTranscript.Stop;

    /// <summary>
    /// The prompt ids SendAsync(userMessage) runs: the system prompt, the history and the message, laid out by the
    /// template or the plain transcript, ending where the reply begins (after BOS when the model wants it).
    /// </summary>
    public int[] PromptIds(string userMessage)
    {
        ArgumentNullException.ThrowIfNull(userMessage);
        var all = new List<ChatMessage>();
        if (!string.IsNullOrEmpty(SystemPrompt)) all.Add(new ChatMessage("system", SystemPrompt));
        all.AddRange(messages);
        all.Add(new ChatMessage("user", userMessage));
        var tok = generator.Tokenizer;
        bool addBos = generator.Engine.Model.AddBos;
        return Template == null ? PlainTranscript.Encode(tok, all, addBos) : Template.EncodePrompt(tok, all, addBos);
    }

    /// <summary>Adds the user's message and streams the assistant's reply; the reply joins the history.</summary>
    public async IAsyncEnumerable<GeneratedToken> SendAsync(string userMessage, GenerationOptions options, [EnumeratorCancellation] CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(userMessage);
        ArgumentNullException.ThrowIfNull(options);
        int[] ids = PromptIds(userMessage); // throws before the history changes
        messages.Add(new ChatMessage("user", userMessage));
        int shared = 0;
        while (shared < Math.Min(cache.Length, Math.Min(cachedIds.Length, ids.Length - 1)) && cachedIds[shared] == ids[shared]) shared++;
        if (!cache.CanTruncate(shared)) shared = 0; // a windowed cache no longer holds that far back: run it all again
        cache.Truncate(shared);
        var opts = options with { StopStrings = [.. options.StopStrings, .. StopStrings] };
        var reply = new StringBuilder();
        var produced = new List<int>();
        bool replyStarted = Template != null; // the plain transcript's reply starts after the cue's space
        await foreach (var t in generator.GenerateAsync(ids[shared..], opts, cache, cancel))
        {
            var piece = replyStarted ? t : t with { Text = PlainTranscript.TrimReplyStart(t.Text, ref replyStarted) };
            reply.Append(piece.Text);
            if (t.Id >= 0) produced.Add(t.Id);
            yield return piece;
        }
        // the cache now holds the prompt and the reply tokens that were run (the last sampled one was not)
        cachedIds = [.. ids, .. produced];
        if (cache.Length < cachedIds.Length) cachedIds = cachedIds[..cache.Length];
        else cache.Truncate(cachedIds.Length);
        messages.Add(new ChatMessage("assistant", reply.ToString().Trim()));
    }
}
