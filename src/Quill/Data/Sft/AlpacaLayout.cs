// The one pinned prompt layout for bases without a chat template: torchtune's Alpaca text (AlpacaInstructTemplate
// in torchtune/data/_messages.py, quoted in wave2-facts 1.3), which ends in "### Response:\n" (a newline, not the
// QLoRA repo's trailing space). Single-turn examples use it verbatim; the reply follows, then EOS. For chat data:
// a system message takes the place of the preamble sentence, and each later user turn opens a further
// "\n\n### Instruction:\n{user}\n\n### Response:\n" block after the previous reply's EOS.
// Does not handle: other Alpaca variants (Stanford's original ends "### Response:" with no newline).
namespace Quill.Data.Sft;

/// <summary>The pinned Alpaca prompt text.</summary>
public static class AlpacaLayout
{
    /// <summary>The preamble of an example without input.</summary>
    public const string Preamble = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n";

    /// <summary>The preamble of an example with input.</summary>
    public const string PreambleWithInput = "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n";

    /// <summary>The layout's name in reports.</summary>
    public const string Name = "alpaca (pinned, torchtune)";

    /// <summary>The full prompt of a single-turn example: preamble, instruction, optional input, "### Response:\n".</summary>
    public static string Prompt(string instruction, string? input = null)
    {
        ArgumentNullException.ThrowIfNull(instruction);
        return string.IsNullOrEmpty(input)
            ? Preamble + Block(instruction)
            : PreambleWithInput + "### Instruction:\n" + instruction + "\n\n### Input:\n" + input + "\n\n### Response:\n";
    }

    /// <summary>An instruction block and the response cue.</summary>
    public static string Block(string instruction) => "### Instruction:\n" + instruction + "\n\n### Response:\n";

    /// <summary>What opens each user turn after the first in a multi-turn conversation (it follows an EOS).</summary>
    public static string NextTurn(string instruction) => "\n\n" + Block(instruction);
}
