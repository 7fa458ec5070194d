// Chat templates: the prompt formats of common instruction-tuned models, written as prefix/suffix pairs per role
// (no Jinja interpreter). Each renders a conversation to text exactly as the reference renderings in
// shared/data/chat-templates (ollama's), returns which characters belong to assistant turns, and can tokenize the
// turns segment by segment so every token knows whether it is an assistant token (the fine-tuning mask).
// FromMetadata picks a template from a model's tokenizer.chat_template (a Jinja string) by its markers; reading that
// string out of a model file is the loaders' job (Inference.GgufVocab.ChatTemplateOf for GGUF).
using System.Text;

namespace Quill.Tokenization.ChatTemplates;

/// <summary>A chat prompt format.</summary>
public abstract class ChatTemplate
{
    private static readonly Dictionary<string, ChatTemplate> All = BuildAll().ToDictionary(t => t.Name, StringComparer.Ordinal);

    protected ChatTemplate(string name, IReadOnlyList<string> stop)
    {
        Name = name;
        Stop = stop;
    }

    /// <summary>The template's name (as in ollama: chatml, llama3-instruct, ...).</summary>
    public string Name { get; }

    /// <summary>Strings that end an assistant turn (stop sequences for generation).</summary>
    public IReadOnlyList<string> Stop { get; }

    /// <summary>Every template name.</summary>
    public static IReadOnlyCollection<string> Names => All.Keys;

    /// <summary>The template of a name; throws InvalidConfigException listing the names when unknown.</summary>
    public static ChatTemplate Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return All.TryGetValue(name, out var t) ? t
            : throw new InvalidConfigException($"chat template \"{name}\" is unknown; use one of {string.Join(", ", All.Keys.Order(StringComparer.Ordinal))}.");
    }

    /// <summary>
    /// The template a model's metadata implies: tokenizer.chat_template (Jinja text) is matched by its markers;
    /// without one, the architecture name decides when it implies a format. Null when nothing matches.
    /// </summary>
    public static ChatTemplate? FromMetadata(string? chatTemplate, string? architecture = null)
    {
        // a template's own name (what Quill records in a checkpoint it fine-tuned), else Jinja text matched by its markers
        string? name = chatTemplate != null && All.ContainsKey(chatTemplate) ? chatTemplate
            : chatTemplate != null ? ChatTemplateDetector.Detect(chatTemplate) : null;
        name ??= architecture?.ToLowerInvariant() switch
        {
            "gemma" or "gemma2" => "gemma-instruct",
            "gemma3" => "gemma3-instruct",
            "phi3" => "phi-3",
            "command-r" or "cohere" => "command-r",
            "starcoder2" => "starcoder2-instruct",
            "granite" => "granite-instruct",
            _ => null,
        };
        return name != null ? All[name] : null;
    }

    /// <summary>Renders messages; addGenerationPrompt appends the opening of the assistant's reply.</summary>
    public ChatRendering Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true)
    {
        var segments = Segments(messages, addGenerationPrompt);
        var sb = new StringBuilder();
        var spans = new List<(int, int)>();
        foreach (var (text, assistant) in segments)
        {
            if (assistant && text.Length > 0) spans.Add((sb.Length, text.Length));
            sb.Append(text);
        }
        return new ChatRendering(sb.ToString(), spans);
    }

    /// <summary>
    /// The prompt a model generates from: messages rendered with the reply's opening and encoded as one text with
    /// special tokens recognized (as Hugging Face's apply_chat_template and llama.cpp do), after BOS when addBos and
    /// the tokenizer has one. `quill chat` and `quill serve` both build prompts here, so one conversation gives one
    /// prompt. (RenderTokens encodes piece by piece for its training mask; with SentencePiece the two can differ.)
    /// </summary>
    public int[] EncodePrompt(ITokenizer tokenizer, IReadOnlyList<ChatMessage> messages, bool addBos)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        int[] ids = tokenizer.Encode(Render(messages, addGenerationPrompt: true).Text, SpecialTokenSet.All);
        return addBos && tokenizer.BosId >= 0 ? [tokenizer.BosId, .. ids] : ids;
    }

    /// <summary>Renders and tokenizes segment by segment (special tokens allowed); Mask marks assistant tokens.</summary>
    public ChatTokens RenderTokens(ITokenizer tokenizer, IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = false, bool addBos = false)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var ids = new List<int>();
        var mask = new List<bool>();
        if (addBos && tokenizer.BosId >= 0)
        {
            ids.Add(tokenizer.BosId);
            mask.Add(false);
        }
        foreach (var (text, assistant) in Segments(messages, addGenerationPrompt))
        {
            if (text.Length == 0) continue;
            int[] seg = tokenizer.Encode(text, SpecialTokenSet.All);
            ids.AddRange(seg);
            for (int i = 0; i < seg.Length; i++) mask.Add(assistant);
        }
        return new ChatTokens(ids.ToArray(), mask.ToArray());
    }

    /// <summary>The rendered pieces in order; true marks assistant content and its end marker.</summary>
    protected abstract List<(string Text, bool Assistant)> Segments(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt);

    /// <summary>Checks roles and returns (system text or null, the other messages).</summary>
    protected static (string? System, List<ChatMessage> Turns) Split(IReadOnlyList<ChatMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        string? system = null;
        var turns = new List<ChatMessage>();
        for (int i = 0; i < messages.Count; i++)
        {
            var m = messages[i] ?? throw new InvalidConfigException($"chat message {i} is null.");
            switch (m.Role)
            {
                case "system" when i == 0:
                    system = m.Content;
                    break;
                case "system":
                    throw new InvalidConfigException($"chat message {i}: a system message may only come first.");
                case "user" or "assistant":
                    turns.Add(m);
                    break;
                default:
                    throw new InvalidConfigException($"chat message {i}: role \"{m.Role}\" is unknown; use system, user or assistant.");
            }
        }
        return (system, turns);
    }

    private static IEnumerable<ChatTemplate> BuildAll()
    {
        yield return new TurnTemplate("alfred", ["<start_system>", "<end_message>"], ["<start_user>", "<end_message>"], ["<start_assistant>", "<end_message>"], "<start_assistant>", ["<start_system>", "<start_user>", "<start_assistant>", "<end_message>"]);
        yield return new TurnTemplate("alpaca", ["", "\n\n"], ["### Instruction:\n", "\n\n"], ["### Response:\n", "\n\n"], "### Response:\n", ["### Instruction:", "### Response"]);
        yield return new TurnTemplate("chatml", ["<|im_start|>system\n", "<|im_end|>\n"], ["<|im_start|>user\n", "<|im_end|>\n"], ["<|im_start|>assistant\n", "<|im_end|>\n"], "<|im_start|>assistant\n", ["<|im_start|>", "<|im_end|>"]);
        yield return new TurnTemplate("chatqa", ["System: ", "\n\n"], ["User: ", "\n\n"], ["Assistant: ", "\n\n"], "Assistant:", ["System:", "User:", "Assistant:", "<|begin_of_text|>"]);
        yield return new TurnTemplate("codellama-70b-instruct", ["Source: system\n\n ", " <step> "], ["Source: user\n\n ", " <step> "], ["Source: assistant\n\n ", " <step> "], "Source: assistant\nDestination: user\n\n ", ["Source:", "Destination:", "<step>"]);
        yield return new TurnTemplate("command-r", ["<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>", "<|END_OF_TURN_TOKEN|>"], ["<|START_OF_TURN_TOKEN|><|USER_TOKEN|>", "<|END_OF_TURN_TOKEN|>"], ["<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>", "<|END_OF_TURN_TOKEN|>"], "<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>\n", ["<|START_OF_TURN_TOKEN|>", "<|END_OF_TURN_TOKEN|>"]);
        yield return new TurnTemplate("falcon-instruct", ["System: ", "\n"], ["User:\n", "\n"], ["Falcon:\n", "\n"], "Falcon:\n", ["User:", "Falcon:"]);
        yield return new TurnTemplate("gemma-instruct", null, ["<start_of_turn>user\n", "<end_of_turn>\n"], ["<start_of_turn>model\n", "<end_of_turn>\n"], "<start_of_turn>model\n", ["<start_of_turn>", "<end_of_turn>"], systemJoin: "\n");
        yield return new TurnTemplate("gemma3-instruct", null, ["<start_of_turn>user\n", "<end_of_turn>\n"], ["<start_of_turn>model\n", "<end_of_turn>\n"], "<start_of_turn>model\n\n", ["<end_of_turn>"], systemJoin: "\n\n");
        yield return new TurnTemplate("granite-instruct", ["System:\n", "\n\n"], ["Question:\n", "\n\n"], ["Answer:\n", "\n\n"], "Answer:\n", ["System:", "Question:", "Answer:"]);
        yield return new Llama2Template();
        yield return new TurnTemplate("llama3-instruct", ["<|start_header_id|>system<|end_header_id|>\n\n", "<|eot_id|>"], ["<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>"], ["<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>"], "<|start_header_id|>assistant<|end_header_id|>\n\n", ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]);
        yield return new TurnTemplate("magicoder", ["", "\n\n"], ["@@ Instruction\n", "\n\n"], ["@@ Response\n", "\n\n"], "@@ Response\n", ["@@ Instruction", "@@ Response"]);
        yield return new MistralTemplate();
        yield return new TurnTemplate("openchat", ["GPT4 Correct System: ", "<|end_of_turn|>"], ["GPT4 Correct User: ", "<|end_of_turn|>"], ["GPT4 Correct Assistant: ", "<|end_of_turn|>"], "GPT4 Correct Assistant:", ["<|endoftext|>", "<|end_of_turn|>"]);
        yield return new TurnTemplate("phi-3", ["<|system|>\n", "<|end|>\n"], ["<|user|>\n", "<|end|>\n"], ["<|assistant|>\n", "<|end|>\n"], "<|assistant|>\n", ["<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]);
        yield return new TurnTemplate("solar-instruct", ["### System:\n", "\n\n"], ["### User:\n", "\n\n"], ["### Assistant:\n", "</s>\n\n"], "### Assistant:\n", ["### System:", "### User:", "### Assistant"]);
        yield return new TurnTemplate("starcoder2-instruct", ["", "\n\n"], ["### Instruction\n", "\n\n"], ["### Response\n", "<|endoftext|>\n\n"], "### Response\n", ["### Instruction", "### Response", "<|endoftext|>"]);
        yield return new TurnTemplate("vicuna", ["", "\n\n"], ["USER: ", "\n"], ["ASSISTANT: ", "</s>\n"], "ASSISTANT:", ["USER:", "ASSISTANT:"]);
        yield return new TurnTemplate("zephyr", ["<|system|>\n", "</s>\n"], ["<|user|>\n", "</s>\n"], ["<|assistant|>\n", "</s>\n"], "<|assistant|>\n", ["<|system|>", "</s>", "<|user|>", "<|assistant|>"]);
    }
}
