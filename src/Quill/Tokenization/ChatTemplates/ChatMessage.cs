// One turn of a conversation and the result of rendering a conversation: the prompt text, the character spans
// that belong to assistant turns (content plus its end-of-turn marker, what a fine-tune learns to produce) and,
// when tokenized, the ids with a per-token assistant mask.
namespace Quill.Tokenization.ChatTemplates;

/// <summary>A chat message: role is "system", "user" or "assistant".</summary>
public sealed record ChatMessage(string Role, string Content);

/// <summary>Rendered conversation text with the spans (start, length) written for assistant turns.</summary>
public sealed record ChatRendering(string Text, IReadOnlyList<(int Start, int Length)> AssistantSpans);

/// <summary>Token ids of a rendered conversation; Mask[i] is true for tokens of assistant turns.</summary>
public sealed record ChatTokens(int[] Ids, bool[] Mask);
