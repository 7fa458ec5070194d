// The two [INST] formats whose turns are not simple prefix/suffix pairs: Llama 2 chat (a <<SYS>> block inside
// every [INST], the system text only in the first; assistant turns end with "</s><s>") and Mistral instruct
// (the system text joins the first user message; assistant turns end with "</s>"). Neither adds a generation
// prompt: the model answers right after [/INST].
namespace Quill.Tokenization.ChatTemplates;

/// <summary>Llama 2 chat.</summary>
public sealed class Llama2Template() : ChatTemplate("llama2-chat", ["[INST]", "[/INST]", "<<SYS>>", "<</SYS>>"])
{
    protected override List<(string Text, bool Assistant)> Segments(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        var (sys, turns) = Split(messages);
        var seg = new List<(string, bool)>();
        bool first = true;
        foreach (var m in turns)
        {
            if (m.Role == "user")
            {
                string block = first && sys != null ? "<<SYS>>\n" + sys + "\n<</SYS>>\n\n" : "<<SYS>><</SYS>>\n\n";
                seg.Add(("[INST] " + block + m.Content + " [/INST]", false));
                first = false;
            }
            else
            {
                seg.Add((" ", false));
                seg.Add((m.Content + "</s><s>", true));
            }
        }
        return seg;
    }
}

/// <summary>Mistral instruct.</summary>
public sealed class MistralTemplate() : ChatTemplate("mistral-instruct", ["[INST]", "[/INST]"])
{
    protected override List<(string Text, bool Assistant)> Segments(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        var (sys, turns) = Split(messages);
        var seg = new List<(string, bool)>();
        bool first = true;
        foreach (var m in turns)
        {
            if (m.Role == "user")
            {
                string content = first && sys != null ? sys + "\n\n" + m.Content : m.Content;
                seg.Add(("[INST] " + content + "[/INST]", false));
                first = false;
            }
            else
            {
                seg.Add((" ", false));
                seg.Add((m.Content + "</s>", true));
            }
        }
        return seg;
    }
}
