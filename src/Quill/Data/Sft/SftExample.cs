// One supervised fine-tuning example as read from a JSONL line, before tokenization: which of the four shapes it
// came in and its turns as chat messages (system / user / assistant). Alpaca rows keep their optional `input`
// apart so the pinned Alpaca layout can choose its with-input text. SftTokens is the rendered form: token ids and,
// per token, whether it is a training target.
// Preference pairs (chosen / rejected) are read by PreferencePairs.cs into two SftExamples each.
// Does not handle: tool calls, images.
using Quill.Tokenization.ChatTemplates;

namespace Quill.Data.Sft;

/// <summary>The JSONL shape an example was written in.</summary>
public enum SftFormat
{
    /// <summary>{"instruction", "input" (optional), "output"}.</summary>
    Alpaca,

    /// <summary>{"messages": [{"role", "content"}, ...]} (OpenAI / TRL conversational).</summary>
    Chat,

    /// <summary>{"conversations": [{"from": "system|human|gpt", "value"}, ...]}.</summary>
    ShareGpt,

    /// <summary>{"prompt", "completion"} as plain strings (TRL's standard prompt-completion: raw text, no template).</summary>
    PromptCompletion,
}

/// <summary>
/// One example: its 1-based line in the file, its shape and its turns. Turns alternate user / assistant after an
/// optional system message and end with an assistant turn; <paramref name="Input"/> is an Alpaca row's `input`.
/// </summary>
public sealed record SftExample(int Line, SftFormat Format, IReadOnlyList<ChatMessage> Messages, string? Input = null);

/// <summary>
/// A rendered example: Ids[i] is the i-th token; Trained[i] says whether predicting token i counts in the loss
/// (Trained[0] never counts: nothing predicts the first token).
/// </summary>
public sealed record SftTokens(int Line, int[] Ids, bool[] Trained)
{
    /// <summary>Targets that count in the loss (trained tokens after the first).</summary>
    public int TrainedTargets
    {
        get
        {
            int n = 0;
            for (int i = 1; i < Trained.Length; i++) if (Trained[i]) n++;
            return n;
        }
    }
}
