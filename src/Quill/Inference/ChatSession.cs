// A multi-turn conversation with a model: the messages so far, rendered into one prompt by the model's chat
// format, and a KV cache that is reused across turns (only the tokens after the longest prefix shared with the
// previous turn's tokens are run again). The chat format is recognised from the template text the model file
// carries (ChatML, Llama 3, Llama 2 / Mistral [INST], Phi-3 / Zephyr <|user|>); a model without one (llama2.c,
// Quill checkpoints) gets a plain "User: / Assistant:" transcript.
// Does not handle: executing arbitrary Jinja templates (only the families above are recognised), tool calls.
using System.Runtime.CompilerServices;
using System.Text;

namespace Quill.Inference;

/// <summary>One chat message.</summary>
public sealed record ChatMessage(string Role, string Content);

/// <summary>The chat prompt layouts Quill can render.</summary>
public enum ChatFormat
{
    Plain,
    ChatMl,
    Llama3,
    Llama2,
    Phi3,
}

/// <summary>Renders conversations in a chat format.</summary>
public static class ChatFormats
{
    /// <summary>The format a template text describes (Plain when null or unknown).</summary>
    public static ChatFormat Detect(string? template) =>
        template == null ? ChatFormat.Plain
        : template.Contains("<|im_start|>", StringComparison.Ordinal) ? ChatFormat.ChatMl
        : template.Contains("<|start_header_id|>", StringComparison.Ordinal) ? ChatFormat.Llama3
        : template.Contains("[INST]", StringComparison.Ordinal) ? ChatFormat.Llama2
        : template.Contains("<|user|>", StringComparison.Ordinal) ? ChatFormat.Phi3
        : ChatFormat.Plain;

    /// <summary>The prompt text for the messages, ending where the assistant's reply begins. BOS is not included.</summary>
    public static string Render(ChatFormat format, IReadOnlyList<ChatMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var sb = new StringBuilder();
        switch (format)
        {
            case ChatFormat.ChatMl:
                foreach (var m in messages) sb.Append("<|im_start|>").Append(m.Role).Append('\n').Append(m.Content).Append("<|im_end|>\n");
                sb.Append("<|im_start|>assistant\n");
                break;
            case ChatFormat.Llama3:
                foreach (var m in messages) sb.Append("<|start_header_id|>").Append(m.Role).Append("<|end_header_id|>\n\n").Append(m.Content.Trim()).Append("<|eot_id|>");
                sb.Append("<|start_header_id|>assistant<|end_header_id|>\n\n");
                break;
            case ChatFormat.Llama2:
                {
                    string? system = null;
                    bool first = true;
                    foreach (var m in messages)
                    {
                        if (m.Role == "system") system = m.Content;
                        else if (m.Role == "user")
                        {
                            if (!first) sb.Append("<s>");
                            sb.Append("[INST] ");
                            if (system != null) sb.Append("<<SYS>>\n").Append(system).Append("\n<</SYS>>\n\n");
                            system = null;
                            sb.Append(m.Content.Trim()).Append(" [/INST]");
                            first = false;
                        }
                        else sb.Append(' ').Append(m.Content.Trim()).Append(" </s>");
                    }
                    break;
                }
            case ChatFormat.Phi3:
                foreach (var m in messages) sb.Append("<|").Append(m.Role).Append("|>\n").Append(m.Content).Append("<|end|>\n");
                sb.Append("<|assistant|>\n");
                break;
            default:
                foreach (var m in messages)
                    sb.Append(m.Role switch { "system" => "System", "user" => "User", _ => "Assistant" }).Append(": ").Append(m.Content.Trim()).Append('\n');
                sb.Append("Assistant:");
                break;
        }
        return sb.ToString();
    }

    /// <summary>Texts that end an assistant turn in this format (besides EOS).</summary>
    public static IReadOnlyList<string> StopStrings(ChatFormat format) => format switch
    {
        ChatFormat.ChatMl => ["<|im_end|>"],
        ChatFormat.Llama3 => ["<|eot_id|>"],
        ChatFormat.Phi3 => ["<|end|>"],
        ChatFormat.Plain => ["\nUser:"],
        _ => [],
    };
}

/// <summary>A conversation that keeps its history and KV cache between turns.</summary>
public sealed class ChatSession
{
    private readonly Generator generator;
    private readonly List<ChatMessage> messages = [];
    private readonly KvCache cache;
    private int[] cachedIds = [];

    public ChatSession(Generator generator, ChatFormat? format = null)
    {
        ArgumentNullException.ThrowIfNull(generator);
        this.generator = generator;
        Format = format ?? ChatFormats.Detect(generator.Engine.Model.ChatTemplate);
        cache = generator.Engine.CreateCache();
    }

    public ChatFormat Format { get; }

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

    /// <summary>Adds the user's message and streams the assistant's reply; the reply joins the history.</summary>
    public async IAsyncEnumerable<GeneratedToken> SendAsync(string userMessage, GenerationOptions options, [EnumeratorCancellation] CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(userMessage);
        ArgumentNullException.ThrowIfNull(options);
        messages.Add(new ChatMessage("user", userMessage));
        var all = new List<ChatMessage>();
        if (!string.IsNullOrEmpty(SystemPrompt)) all.Add(new ChatMessage("system", SystemPrompt));
        all.AddRange(messages);
        var tok = generator.Tokenizer;
        int[] text = tok.Encode(ChatFormats.Render(Format, all), Tokenization.SpecialTokenSet.All);
        int[] ids = generator.Engine.Model.AddBos && tok.BosId >= 0 ? [tok.BosId, .. text] : text;
        int shared = 0;
        while (shared < Math.Min(cache.Length, Math.Min(cachedIds.Length, ids.Length - 1)) && cachedIds[shared] == ids[shared]) shared++;
        cache.Truncate(shared);
        var opts = options with { StopStrings = [.. options.StopStrings, .. ChatFormats.StopStrings(Format)] };
        var reply = new StringBuilder();
        var produced = new List<int>();
        await foreach (var t in generator.GenerateAsync(ids[shared..], opts, cache, cancel))
        {
            reply.Append(t.Text);
            if (t.Id >= 0) produced.Add(t.Id);
            yield return t;
        }
        // the cache now holds the prompt and the reply tokens that were run (the last sampled one was not)
        cachedIds = [.. ids, .. produced];
        if (cache.Length < cachedIds.Length) cachedIds = cachedIds[..cache.Length];
        else cache.Truncate(cachedIds.Length);
        messages.Add(new ChatMessage("assistant", reply.ToString().Trim()));
    }
}
