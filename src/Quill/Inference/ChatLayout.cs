// Turns a conversation into prompt tokens. A model whose file carries a chat template (GGUF
// tokenizer.chat_template, HF tokenizer_config.json) gets the matching Quill chat template (ChatML, Llama 3,
// Llama 2, Mistral, Gemma, Phi-3, ... from Tokenization.ChatTemplates); its stop strings end the reply, and those
// that are special tokens also end it as token ids. A model without one (Quill checkpoints, llama2.c) gets the
// library's plain transcript (Tokenization.ChatTemplates.PlainTranscript, the layout `quill chat` uses too:
// "System: ...", "User: ...", "Assistant:"), whose stop strings end the reply at the next turn.
// Does not handle: executing arbitrary Jinja, tool calls, images.
using Quill.Tokenization;
using Quill.Tokenization.ChatTemplates;

namespace Quill.Inference;

/// <summary>One message of a conversation.</summary>
/// <param name="Role">system, user or assistant ("developer" is read as system).</param>
/// <param name="Content">The message text.</param>
public sealed record ChatTurn(string Role, string Content);

/// <summary>A conversation layout for a model.</summary>
public sealed class ChatLayout
{
    private readonly ITokenizer tokenizer;
    private readonly ChatTemplate? template;
    private readonly bool addBos;

    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="chatTemplate">The template text from the model file, or null.</param>
    /// <param name="architecture">The model's architecture name (some imply a template), or null.</param>
    /// <param name="addBos">Start the prompt with BOS.</param>
    public ChatLayout(ITokenizer tokenizer, string? chatTemplate, string? architecture, bool addBos)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        this.tokenizer = tokenizer;
        this.addBos = addBos;
        template = ChatTemplate.FromMetadata(chatTemplate, architecture);
        if (template == null)
        {
            StopStrings = PlainTranscript.Stop;
            return;
        }
        StopStrings = template.Stop;
        var ids = new HashSet<int>();
        foreach (string s in template.Stop)
        {
            if (tokenizer.SpecialTokens.TryGetValue(s, out int id)) ids.Add(id);
        }
        StopTokens = ids;
    }

    /// <summary>The template's name, or "plain".</summary>
    public string Name => template?.Name ?? PlainTranscript.Name;

    /// <summary>True for the plain transcript (the reply follows "Assistant:" and starts with a space).</summary>
    public bool IsPlain => template == null;

    /// <summary>Token ids that end the assistant's turn (besides EOS).</summary>
    public IReadOnlySet<int> StopTokens { get; } = new HashSet<int>();

    /// <summary>Texts that end the assistant's turn.</summary>
    public IReadOnlyList<string> StopStrings { get; }

    /// <summary>Prompt ids for the messages, ending where the assistant's reply begins.</summary>
    public int[] Encode(IReadOnlyList<ChatTurn> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var turns = Normalize(messages).Select(m => new ChatMessage(m.Role, m.Content)).ToArray();
        return template != null
            ? template.EncodePrompt(tokenizer, turns, addBos)
            : PlainTranscript.Encode(tokenizer, turns, addBos);
    }

    /// <summary>developer becomes system; all system messages join into one at the front.</summary>
    private static List<ChatTurn> Normalize(IReadOnlyList<ChatTurn> messages)
    {
        var system = messages.Where(m => m.Role is "system" or "developer").Select(m => m.Content).ToArray();
        var list = new List<ChatTurn>();
        if (system.Length > 0) list.Add(new ChatTurn("system", string.Join("\n\n", system)));
        list.AddRange(messages.Where(m => m.Role is not ("system" or "developer")));
        return list;
    }
}
