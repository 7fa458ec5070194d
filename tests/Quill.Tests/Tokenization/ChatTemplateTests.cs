using System.Text;
using System.Text.Json.Nodes;
using Quill.Tests.Support;
using Quill.Tokenization;
using Quill.Tokenization.ChatTemplates;

namespace Quill.Tests.Tokenization;

public class ChatTemplateTests
{
    private static Dictionary<string, List<ChatMessage>> Conversations()
    {
        var root = JsonNode.Parse(File.ReadAllText(TestData.PathOf("chat-templates/conversations.json")))!;
        var d = new Dictionary<string, List<ChatMessage>>();
        foreach (var (name, msgs) in root["cases"]!.AsObject())
            d[name] = msgs!.AsArray().Select(m => new ChatMessage(m!["role"]!.GetValue<string>(), m["content"]!.GetValue<string>())).ToList();
        return d;
    }

    [TestDataFact("chat-templates/conversations.json")]
    public void EveryExpectedRendering_MatchesByteForByte()
    {
        var conversations = Conversations();
        var dirs = Directory.GetDirectories(TestData.PathOf("chat-templates/expected"));
        Assert.Equal(20, dirs.Length);
        foreach (string dir in dirs)
        {
            var template = ChatTemplate.Get(Path.GetFileName(dir));
            foreach (string file in Directory.GetFiles(dir))
            {
                string expected = Encoding.UTF8.GetString(File.ReadAllBytes(file));
                var r = template.Render(conversations[Path.GetFileName(file)], addGenerationPrompt: true);
                Assert.True(expected == r.Text, $"{template.Name}/{Path.GetFileName(file)}:\n[{expected}]\n!=\n[{r.Text}]");
            }
        }
    }

    [TestDataFact("chat-templates/conversations.json")]
    public void AssistantSpans_CoverExactlyTheAssistantTurns()
    {
        var conv = Conversations()["system-user-assistant-user"];
        foreach (string name in ChatTemplate.Names)
        {
            var r = ChatTemplate.Get(name).Render(conv);
            var (start, length) = Assert.Single(r.AssistantSpans);
            Assert.StartsWith(conv[2].Content, r.Text.Substring(start, length), StringComparison.Ordinal);
            Assert.DoesNotContain(conv[1].Content, r.Text.Substring(start, length), StringComparison.Ordinal);
        }
    }

    [TestDataFact("tiktoken/cl100k_base.tiktoken")]
    public void RenderTokens_MasksOnlyAssistantTokens()
    {
        var tok = TokenizerFixtures.Get("cl100k");
        var msgs = new List<ChatMessage> { new("user", "Hi there"), new("assistant", "Hello! How can I help?"), new("user", "Thanks") };
        var t = ChatTemplate.Get("chatml").RenderTokens(tok, msgs);
        Assert.Equal(t.Ids.Length, t.Mask.Length);
        var assistantIds = t.Ids.Where((_, i) => t.Mask[i]).ToArray();
        Assert.Equal("Hello! How can I help?<|im_end|>\n", tok.Decode(assistantIds));
        Assert.Equal(ChatTemplate.Get("chatml").Render(msgs, false).Text, tok.Decode(t.Ids));
    }

    [TestDataFact("chat-templates/params/index.json")]
    public void FromMetadata_RecognisesOllamasTemplateIndex()
    {
        var index = JsonNode.Parse(File.ReadAllText(TestData.PathOf("chat-templates/params/index.json")))!.AsArray();
        int checkedCount = 0;
        var wrong = new List<string>();
        foreach (var entry in index)
        {
            string name = entry!["name"]!.GetValue<string>();
            if (!ChatTemplate.Names.Contains(name)) continue;
            string? got = ChatTemplate.FromMetadata(entry["template"]!.GetValue<string>())?.Name;
            if (got != name) wrong.Add($"{name} detected as {got ?? "nothing"}");
            checkedCount++;
        }
        Assert.Empty(wrong);
        Assert.True(checkedCount >= 10, $"only {checkedCount} index entries checked");
        Assert.Null(ChatTemplate.FromMetadata("{{ messages }}"));
        Assert.Equal("gemma-instruct", ChatTemplate.FromMetadata(null, "gemma")?.Name);
    }

    [Fact]
    public void BadRoles_AreOneLineErrors()
    {
        var t = ChatTemplate.Get("chatml");
        Assert.Throws<InvalidConfigException>(() => t.Render([new ChatMessage("robot", "x")]));
        Assert.Throws<InvalidConfigException>(() => t.Render([new ChatMessage("user", "x"), new ChatMessage("system", "y")]));
        Assert.Throws<InvalidConfigException>(() => ChatTemplate.Get("nope"));
    }
}
