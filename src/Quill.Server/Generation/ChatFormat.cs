// Turns a conversation into prompt tokens. Three layouts, chosen by what the tokenizer knows: ChatML when it has
// <|im_start|> / <|im_end|>, Llama 3 when it has <|start_header_id|> / <|eot_id|>, and otherwise a plain
// transcript ("System: ...", "User: ...", "Assistant: ") that a base model trained on raw text can follow, with
// "\nUser:" as an implied stop so it does not write the user's next turn. The template's own markers are encoded
// as special tokens; message text is encoded as plain text, so a user cannot inject a marker.
// Does not handle: Jinja chat templates from model files, tool calls, images.
using Quill.Tokenization;

namespace Quill.Server.Generation;

/// <summary>One message of a conversation.</summary>
/// <param name="Role">system, developer, user, assistant or tool.</param>
/// <param name="Content">The message text.</param>
public sealed record ChatTurn(string Role, string Content);

/// <summary>A conversation layout for a tokenizer.</summary>
public sealed class ChatFormat
{
    private readonly ITokenizer tokenizer;

    private ChatFormat(ITokenizer tokenizer, string name)
    {
        this.tokenizer = tokenizer;
        Name = name;
    }

    /// <summary>"chatml", "llama3" or "plain".</summary>
    public string Name { get; }

    /// <summary>Token ids that end the assistant's turn (besides EOS).</summary>
    public IReadOnlySet<int> StopTokens { get; private init; } = new HashSet<int>();

    /// <summary>Texts that end the assistant's turn.</summary>
    public IReadOnlyList<string> StopStrings { get; private init; } = [];

    /// <summary>The layout that fits the tokenizer's special tokens.</summary>
    public static ChatFormat For(ITokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var sp = tokenizer.SpecialTokens;
        if (sp.TryGetValue("<|im_start|>", out _) && sp.TryGetValue("<|im_end|>", out int imEnd))
            return new ChatFormat(tokenizer, "chatml") { StopTokens = new HashSet<int> { imEnd } };
        if (sp.ContainsKey("<|start_header_id|>") && sp.TryGetValue("<|eot_id|>", out int eot))
            return new ChatFormat(tokenizer, "llama3") { StopTokens = new HashSet<int> { eot } };
        return new ChatFormat(tokenizer, "plain") { StopStrings = ["\nUser:"] };
    }

    /// <summary>Prompt ids for the messages, ending where the assistant's reply begins.</summary>
    public int[] Encode(IReadOnlyList<ChatTurn> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var ids = new List<int>();
        if (tokenizer.BosId >= 0 && tokenizer.BosId != tokenizer.EosId) ids.Add(tokenizer.BosId);
        switch (Name)
        {
            case "chatml":
                foreach (var m in messages)
                {
                    Special($"<|im_start|>{Role(m.Role)}\n", ids);
                    ids.AddRange(tokenizer.Encode(m.Content));
                    Special("<|im_end|>\n", ids);
                }
                Special("<|im_start|>assistant\n", ids);
                break;
            case "llama3":
                if (tokenizer.SpecialTokens.TryGetValue("<|begin_of_text|>", out int bot) && !ids.Contains(bot)) ids.Insert(0, bot);
                foreach (var m in messages)
                {
                    Special($"<|start_header_id|>{Role(m.Role)}<|end_header_id|>\n\n", ids);
                    ids.AddRange(tokenizer.Encode(m.Content.Trim()));
                    Special("<|eot_id|>", ids);
                }
                Special("<|start_header_id|>assistant<|end_header_id|>\n\n", ids);
                break;
            default:
                var text = new System.Text.StringBuilder();
                foreach (var m in messages)
                {
                    string who = Role(m.Role) switch { "system" => "System", "assistant" => "Assistant", "tool" => "Tool", _ => "User" };
                    text.Append(who).Append(": ").Append(m.Content.Trim()).Append("\n\n");
                }
                text.Append("Assistant:");
                ids.AddRange(tokenizer.Encode(text.ToString()));
                break;
        }
        return [.. ids];
    }

    private static string Role(string role) => role == "developer" ? "system" : role;

    private void Special(string text, List<int> ids) => ids.AddRange(tokenizer.Encode(text, SpecialTokenSet.All));
}
