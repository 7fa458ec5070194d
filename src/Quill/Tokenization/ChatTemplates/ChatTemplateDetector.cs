// Picks a chat template name from a Jinja chat template string by the markers it writes (most specific first).
// A heuristic: it recognises the common formats, not arbitrary Jinja.
namespace Quill.Tokenization.ChatTemplates;

internal static class ChatTemplateDetector
{
    private static readonly (string Name, string[] AllOf)[] Rules =
    [
        ("llama3-instruct", ["<|start_header_id|>", "<|eot_id|>"]),
        ("command-r", ["<|START_OF_TURN_TOKEN|>"]),
        ("gemma3-instruct", ["<start_of_turn>", "image"]),
        ("gemma-instruct", ["<start_of_turn>"]),
        ("phi-3", ["<|end|>"]),
        ("zephyr", ["<|user|>"]),
        ("zephyr", ["<|assistant|>"]),
        ("chatml", ["<|im_start|>"]),
        ("openchat", ["GPT4 Correct"]),
        ("llama2-chat", ["[INST]", "<<SYS>>"]),
        ("mistral-instruct", ["[INST]"]),
        ("alfred", ["<start_system>"]),
        ("codellama-70b-instruct", ["Source:", "<step>"]),
        ("magicoder", ["@@ Instruction"]),
        ("starcoder2-instruct", ["### Instruction\\n"]),
        ("starcoder2-instruct", ["### Instruction\n"]),
        ("solar-instruct", ["### User:"]),
        ("alpaca", ["### Instruction:"]),
        ("granite-instruct", ["Question:", "Answer:"]),
        ("falcon-instruct", ["Falcon:"]),
        ("vicuna", ["USER:", "ASSISTANT:"]),
        ("chatqa", ["User:", "Assistant:"]),
    ];

    public static string? Detect(string template)
    {
        foreach (var (name, all) in Rules)
        {
            if (all.All(m => template.Contains(m, StringComparison.Ordinal))) return name;
        }
        return null;
    }
}
