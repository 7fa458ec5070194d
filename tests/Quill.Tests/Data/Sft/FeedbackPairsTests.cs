// quill feedback export's pairing (Data.Sft.FeedbackPairs) on hand-written feedback lines in the server's format:
// answers and regenerations of the same prompt in one conversation pair up (every up with every down), a later
// rating of a reply replaces an earlier one, other conversations and one-sided prompts stay unpaired (written as
// KTO rows), unreadable lines are counted, and both layouts give pairs PreferenceDataset reads back.
using System.Text.Json;
using System.Text.Json.Nodes;
using Quill.Data.Sft;
using Quill.Tokenization;

namespace Quill.Tests.Data.Sft;

public sealed class FeedbackPairsTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("quill-feedback-export-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static string Line(string rating, string? conversation, string reply, params string[] prompt) => JsonSerializer.Serialize(new
    {
        time = "2026-12-06T10:00:00Z", model = "story", rating, conversation,
        prompt = prompt.Select((c, i) => new { role = i % 2 == 0 ? "user" : "assistant", content = c }).ToArray(), reply,
    });

    private string Feedback() => Write("feedback.jsonl",
        Line("up", "c1", "Tom the cat. The end.", "A story about Tom?"),
        Line("down", "c1", "Max the dog ran.", "A story about Tom?"),           // a regeneration rated down: pairs
        Line("down", "c1", "Tom ran ran ran.", "A story about Tom?"),           // a second regeneration: pairs too
        Line("up", "c1", "Tom ran ran ran.", "A story about Tom?"),             // ... but is re-rated up: now chosen
        Line("down", "c2", "Nope.", "A story about Tom?"),                     // another conversation: not paired with c1
        Line("up", "c1", "Yes!", "A story about Tom?", "Tom the cat. The end.", "More?"), // a later turn, alone
        Line("up", null, "Hello.", "Hi"),
        Line("down", null, "Go away.", "Hi"),                                 // old lines without an id pair by prompt
        "{\"time\": \"2026-12-06T10:0");                                       // torn last line

    private string Write(string name, params string[] lines)
    {
        string path = Path.Combine(dir, name);
        File.WriteAllText(path, string.Join('\n', lines) + "\n");
        return path;
    }

    [Fact]
    public void Ratings_of_one_prompt_in_one_conversation_pair_and_the_rest_is_counted()
    {
        string pairs = Path.Combine(dir, "pairs.jsonl"), unpaired = Path.Combine(dir, "unpaired.jsonl");
        var r = FeedbackPairs.Export([Feedback()], pairs, unpaired);
        Assert.Equal(new FeedbackExportReport(Lines: 9, Unreadable: 1, Ratings: 7, Superseded: 1, Groups: 4, Pairs: 3, Unpaired: 2), r);
        var got = File.ReadAllLines(pairs).Select(l => JsonNode.Parse(l)!).ToList();
        string Reply(JsonNode n, string f) => n[f]![0]!["content"]!.GetValue<string>();
        Assert.Equal(
            [("Tom the cat. The end.", "Max the dog ran."), ("Tom ran ran ran.", "Max the dog ran."), ("Hello.", "Go away.")],
            got.Select(n => (Reply(n, "chosen"), Reply(n, "rejected"))));
        Assert.Equal("A story about Tom?", got[0]["prompt"]![0]!["content"]!.GetValue<string>());
        var kto = File.ReadAllLines(unpaired).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal([false, true], kto.Select(n => n["label"]!.GetValue<bool>()));
        Assert.Equal("Nope.", Reply(kto[0], "completion"));
        Assert.Equal(3, kto[1]["prompt"]!.AsArray().Count);
        Assert.Contains("3 pairs, 2 replies unpaired", r.Describe());
        Assert.Contains("1 unreadable lines skipped", r.Describe());

        // the pairs file is what finetune --method dpo reads
        var data = PreferenceDataset.Load(pairs, new SftRenderer(new ByteTokenizer(), null, false), 512, 0);
        Assert.Equal(3, data.Train.Count);
    }

    [Fact]
    public void The_plain_layout_writes_the_transcript_a_quill_checkpoint_is_served_with()
    {
        string pairs = Path.Combine(dir, "plain.jsonl");
        FeedbackPairs.Export([Feedback()], pairs, null, FeedbackLayout.Plain);
        var first = JsonNode.Parse(File.ReadLines(pairs).First())!;
        Assert.Equal("User: A story about Tom?\n\nAssistant:", first["prompt"]!.GetValue<string>());
        Assert.Equal(" Tom the cat. The end.", first["chosen"]!.GetValue<string>());
        Assert.Equal(" Max the dog ran.", first["rejected"]!.GetValue<string>());
        var data = PreferenceDataset.Load(pairs, new SftRenderer(new ByteTokenizer(), null, false), 512, 0);
        Assert.Equal(SftDataset.RawLayout, data.Report.Layout);
    }

    [Fact]
    public void A_missing_file_or_one_without_ratings_is_one_line()
    {
        var e = Assert.Throws<InvalidFileException>(() => FeedbackPairs.Export([Path.Combine(dir, "none.jsonl")], Path.Combine(dir, "o.jsonl")));
        Assert.Contains("file not found", e.Message);
        string junk = Write("junk.jsonl", "{\"rating\": \"meh\"}", "[]");
        e = Assert.Throws<InvalidFileException>(() => FeedbackPairs.Export([junk], Path.Combine(dir, "o.jsonl")));
        Assert.Contains("no ratings (2 lines, 2 unreadable)", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.False(File.Exists(Path.Combine(dir, "o.jsonl")));
    }
}
