// The storyteller's preference set and its win rate: pairs never use a held-out cast, chosen replies are the
// requested story ending with "The end.", each rejected reply has exactly its flaw, the set is deterministic and
// reads back as preference pairs; the win rate counts a reply only with the animal, the name, the ending and the stop.
using Quill.Data;
using Quill.Data.Sft;
using Quill.Evaluation;
using Quill.Tokenization;

namespace Quill.Tests.Data;

public sealed class StoryPreferencesTests
{
    [Fact]
    public void Pairs_avoid_held_out_casts_and_each_rejected_reply_has_its_flaw()
    {
        var pairs = StoryPreferences.Generate(400);
        var held = new HashSet<StoryCast>(StoryInstructions.Generate(0).HeldOutCasts);
        Assert.DoesNotContain(pairs, p => held.Contains(p.Request.Cast));
        Assert.Equal(pairs.Select(p => (p.Chosen, p.Rejected)), StoryPreferences.Generate(400).Select(p => (p.Chosen, p.Rejected)));
        Assert.Equal([200, 100, 100], new[] { StoryFlaw.NoEnding, StoryFlaw.WrongName, StoryFlaw.Rambles }.Select(f => pairs.Count(p => p.Flaw == f)));
        foreach (var p in pairs)
        {
            var c = p.Request.Cast;
            Assert.Equal(p.Request.Reply + " The end.", p.Chosen);
            Assert.True(RequestFollowing.Score(p.Request, p.Chosen, true).Followed);
            switch (p.Flaw)
            {
                case StoryFlaw.NoEnding:
                    Assert.Equal(p.Request.Reply, p.Rejected);
                    break;
                case StoryFlaw.WrongName:
                    Assert.EndsWith(" The end.", p.Rejected, StringComparison.Ordinal);
                    Assert.False(RequestFollowing.Score(p.Request, p.Rejected, true).UsesName, p.Rejected);
                    break;
                default:
                    Assert.StartsWith(p.Request.Reply + " ", p.Rejected, StringComparison.Ordinal);
                    Assert.DoesNotContain("The end.", p.Rejected, StringComparison.Ordinal);
                    Assert.True(p.Rejected.Length > p.Request.Reply.Length + 20);
                    break;
            }
        }
    }

    [Fact]
    public void The_jsonl_reads_back_as_pairs_in_the_plain_transcript()
    {
        string path = Path.Combine(Directory.CreateTempSubdirectory("quill-story-pref-").FullName, "prefs.jsonl");
        var pairs = StoryPreferences.Generate(8);
        StoryPreferences.WriteJsonl(path, pairs);
        var data = PreferenceDataset.Load(path, new SftRenderer(new ByteTokenizer(), null, false), 1024, 0);
        Assert.Equal(8, data.Train.Count);
        Assert.Equal(SftDataset.RawLayout, data.Report.Layout);
        var bytes = new ByteTokenizer();
        Assert.Equal(bytes.Encode(pairs[0].Request.Prompt + " " + pairs[0].Chosen), data.Train[0].Chosen.Ids);
        Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
    }

    [Fact]
    public void The_win_rate_needs_animal_name_ending_and_stop()
    {
        var request = StoryInstructions.Generate(0, heldOutCount: 1).HeldOut[0];
        var c = request.Cast;
        string good = $"The {c.Animal} {c.Name} found a {c.Thing}. The end.";
        var report = new RequestFollowingReport(
        [
            RequestFollowing.Score(request, good, stopped: true),                                 // wins
            RequestFollowing.Score(request, good + "  \n", stopped: true),                        // trailing space: wins
            RequestFollowing.Score(request, good, stopped: false),                                // no stop
            RequestFollowing.Score(request, $"The {c.Animal} {c.Name} found a {c.Thing}.", true), // no ending
            RequestFollowing.Score(request, $"The {c.Animal} Zed found it. The end.", true),       // wrong name
            RequestFollowing.Score(request, good + " And more.", true),                           // ending not last
        ]);
        Assert.Equal([true, true, false, false, false, false], report.Replies.Select(StoryPreferenceWinRate.Wins));
        Assert.Equal(2.0 / 6, StoryPreferenceWinRate.Of(report), 1e-12);
        Assert.Equal("2/6 (33.3%)", StoryPreferenceWinRate.Describe(report));
    }
}
