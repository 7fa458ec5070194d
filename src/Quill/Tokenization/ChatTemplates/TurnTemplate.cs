// The common shape of chat formats: each role's content is wrapped in a prefix and a suffix; the generation
// prompt opens an assistant turn. Formats without a system role (Gemma) prepend the system text to the first
// user message with a separator.
namespace Quill.Tokenization.ChatTemplates;

/// <summary>A chat template defined by per-role prefix/suffix pairs.</summary>
public sealed class TurnTemplate : ChatTemplate
{
    private readonly string[]? system;
    private readonly string[] user;
    private readonly string[] assistant;
    private readonly string generation;
    private readonly string? systemJoin;

    /// <summary>system/user/assistant are [prefix, suffix]; system null means "merge into the first user turn with systemJoin".</summary>
    public TurnTemplate(string name, string[]? system, string[] user, string[] assistant, string generation, IReadOnlyList<string> stop, string? systemJoin = null)
        : base(name, stop)
    {
        this.system = system;
        this.user = user;
        this.assistant = assistant;
        this.generation = generation;
        this.systemJoin = systemJoin;
    }

    protected override List<(string Text, bool Assistant)> Segments(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        var (sys, turns) = Split(messages);
        var seg = new List<(string, bool)>();
        if (sys != null && system != null) seg.Add((system[0] + sys + system[1], false));
        bool pendingSystem = sys != null && system == null;
        foreach (var m in turns)
        {
            if (m.Role == "user")
            {
                string content = pendingSystem ? sys + systemJoin + m.Content : m.Content;
                pendingSystem = false;
                seg.Add((user[0] + content + user[1], false));
            }
            else
            {
                seg.Add((assistant[0], false));
                seg.Add((m.Content + assistant[1], true));
            }
        }
        if (addGenerationPrompt) seg.Add((generation, false));
        return seg;
    }
}
