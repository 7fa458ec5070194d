// The plain running transcript: how a conversation is laid out for a model that has no chat template (Quill
// checkpoints, llama2.c models, any base model trained on raw text). Both `quill chat` (Inference.ChatSession) and
// the server's chat layout use these rules, so one conversation gives one prompt wherever it is typed:
//
//   System: You are brief.\n\nUser: Hi!\n\nAssistant: Hello.\n\nUser: Who are you?\n\nAssistant:
//
// - each message is "Label: content" (System, User, Assistant), its content trimmed, and ends with a blank line;
//   a transcript with speaker labels and blank lines between turns is what web dialogue, screenplays and Shakespeare
//   look like, so a base model has seen it, and the blank line keeps turn boundaries clear when a message has
//   line breaks of its own;
// - the cue for the reply is "Assistant:" without a trailing space: BPE and SentencePiece vocabularies attach the
//   space to the next word (" Hello"), so a prompt ending in a space would force an unusual token split; the
//   whitespace a reply starts with is therefore dropped (TrimReplyStart);
// - a reply ends where the model starts another turn: a role label at the start of a line (Stop), with or without
//   the blank line before it; a reply joins the history with its surrounding whitespace trimmed;
// - the text is one string encoded in one piece without BOS/EOS, and text that looks like a special token stays
//   plain text (a user cannot type an end-of-text token into a base model's prompt).
// Does not handle: messages of other roles (tool, developer: the caller maps or rejects them), conversations that
// outgrow the context.
using System.Text;

namespace Quill.Tokenization.ChatTemplates;

/// <summary>The conversation layout for models without a chat template: a "System: / User: / Assistant:" transcript.</summary>
public static class PlainTranscript
{
    /// <summary>The layout's name where a template's would be shown.</summary>
    public const string Name = "plain";

    /// <summary>What the prompt ends with: the opening of the assistant's reply.</summary>
    public const string ReplyCue = "Assistant:";

    /// <summary>What follows every message.</summary>
    public const string TurnEnd = "\n\n";

    /// <summary>
    /// Texts that end a reply: a role label at the start of a line, after a blank line (how the transcript separates
    /// turns) or after a single line break. The blank-line form keeps the separator out of the reply.
    /// </summary>
    public static IReadOnlyList<string> Stop { get; } =
        [.. new[] { "User", "Assistant", "System" }.SelectMany(label => new[] { "\n\n" + label + ":", "\n" + label + ":" })];

    /// <summary>The label a role is written with; InvalidConfigException for a role other than system, user or assistant.</summary>
    public static string Label(string role, int index = 0) => role switch
    {
        "system" => "System",
        "user" => "User",
        "assistant" => "Assistant",
        _ => throw new InvalidConfigException($"chat message {index}: role \"{role}\" is unknown; use system, user or assistant."),
    };

    /// <summary>The transcript of messages in order; addGenerationPrompt appends the reply cue ("Assistant:").</summary>
    public static string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var text = new StringBuilder();
        for (int i = 0; i < messages.Count; i++)
        {
            var m = messages[i] ?? throw new InvalidConfigException($"chat message {i} is null.");
            string content = (m.Content ?? "").Trim();
            text.Append(Label(m.Role, i)).Append(':');
            if (content.Length > 0) text.Append(' ').Append(content);
            text.Append(TurnEnd);
        }
        if (addGenerationPrompt) text.Append(ReplyCue);
        return text.ToString();
    }

    /// <summary>The prompt ids of messages: the rendered transcript with the reply cue, after BOS when addBos and the tokenizer has one.</summary>
    public static int[] Encode(ITokenizer tokenizer, IReadOnlyList<ChatMessage> messages, bool addBos)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        int[] ids = tokenizer.Encode(Render(messages, addGenerationPrompt: true));
        return addBos && tokenizer.BosId >= 0 ? [tokenizer.BosId, .. ids] : ids;
    }

    /// <summary>
    /// One streamed piece of a reply without the whitespace the reply starts with: drops leading whitespace while
    /// replyStarted is false and sets it once a visible character has passed.
    /// </summary>
    public static string TrimReplyStart(string piece, ref bool replyStarted)
    {
        ArgumentNullException.ThrowIfNull(piece);
        if (replyStarted) return piece;
        int skip = 0;
        while (skip < piece.Length && char.IsWhiteSpace(piece[skip])) skip++;
        if (skip < piece.Length) replyStarted = true;
        return piece[skip..];
    }
}
